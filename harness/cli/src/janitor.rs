//! `testware janitor`: deletes the test namespaces of killed runs.

use std::time::Duration;

use testware::config::HarnessArgs;
use testware::RunConfig;

/// Deletes the expired test namespaces, or every namespace of run `run`.
///
/// # Errors
/// The cluster cannot be reached (with a hint), or a deletion fails.
pub async fn janitor(run: Option<String>, kube_context: Option<String>) -> anyhow::Result<()> {
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
    Ok(())
}
