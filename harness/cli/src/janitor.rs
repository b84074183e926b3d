//! `testware janitor`: deletes the test namespaces and claimed cluster-scoped
//! objects of killed runs, and with
//! `--reset` returns an idle cluster to its state right after `up`.

use std::path::PathBuf;
use std::time::Duration;

use testware::config::HarnessArgs;
use testware::RunConfig;

/// Deletes the expired test namespaces, or every namespace of run `run`; then,
/// with `reset` (the baseline `up` recorded), resets the cluster to it unless a
/// live run still holds a namespace.
///
/// # Errors
/// The cluster cannot be reached (with a hint), or a deletion fails.
pub async fn janitor(
    run: Option<String>,
    kube_context: Option<String>,
    reset: Option<PathBuf>,
) -> anyhow::Result<()> {
    let options = HarnessArgs {
        kube_context,
        ..HarnessArgs::default()
    };
    let config = RunConfig::from_args(options, |key| std::env::var(key).ok())?;
    let client = testware::cluster::client(&config).await.map_err(|e| {
        anyhow::anyhow!(
            "{} (hint: set KUBECONFIG or --kube-context)",
            testware::error_chain(&e)
        )
    })?;
    let objects = match &run {
        Some(id) => testware::cluster::claims::reap_run(&client, id).await,
        None => testware::cluster::claims::reap_expired(&client).await,
    }?;
    if !objects.is_empty() {
        println!("deleted cluster-scoped objects: {}", objects.join(", "));
    }
    let names = match &run {
        Some(id) => {
            testware::namespace::delete_run_namespaces(&client, id, Duration::from_secs(120)).await
        }
        None => testware::namespace::reap_expired(&client).await,
    }?;
    if names.is_empty() {
        println!("nothing to delete");
    } else {
        println!("deleted: {}", names.join(", "));
    }
    let Some(baseline) = reset else {
        return Ok(());
    };
    // A reset deletes every namespace made since `up`: never under a live run.
    let live = testware::namespace::live_runs(&client).await?;
    let claimed = testware::cluster::claims::live(&client).await?;
    if live.is_empty() && claimed.is_empty() {
        crate::cluster::reset(&client, &baseline).await?;
    } else {
        let held: Vec<String> = live
            .iter()
            .map(|(run, namespace)| format!("{namespace} (run {run})"))
            .chain(
                claimed
                    .iter()
                    .map(|(object, holder)| format!("{object} ({holder})")),
            )
            .collect();
        println!(
            "not reset: live runs hold {} (their leases have not passed)",
            held.join(", ")
        );
    }
    Ok(())
}
