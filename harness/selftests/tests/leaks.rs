//! chart_deploy cases about cleanup: cases that panic, time out or fail, and runs
//! that are interrupted or killed, leave no namespace, Helm release or volume
//! behind (a killed run's after the next run's janitor). Each runs the
//! `leak-examples` binary as a separate run with its own run id.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume};
use kube::api::ListParams;
use testware::cluster::labels;
use testware::{cases, check, check_eq, Ctx, Suite};
use testware_selftests::ExampleRun;
use tokio::io::AsyncBufReadExt as _;

fn main() -> std::process::ExitCode {
    Suite::new("leaks")
        .cases(cases![chart_deploy:
            panicking_timed_out_and_failing_cases_leave_nothing_behind,
            sigterm_mid_case_deletes_the_runs_namespaces,
            sigkilled_run_is_reaped_by_the_next_runs_janitor,
        ])
        .run()
}

/// A run of `leak-examples`; `filter` selects its cases by substring of their names.
fn example_run(ctx: &Ctx, filter: &str, lease: Option<u64>) -> ExampleRun {
    let mut run = ExampleRun::new(
        env!("CARGO_BIN_EXE_leak-examples"),
        "leak",
        &ctx.artifacts_dir(),
    );
    run.command.args(["--test-threads", "4", filter]);
    if let Some(seconds) = lease {
        run.command
            .env("HARNESS_NAMESPACE_LEASE", seconds.to_string());
    }
    run
}

/// Namespaces of run `run_id` (terminating ones included).
async fn namespaces_of(client: &kube::Client, run_id: &str) -> anyhow::Result<Vec<String>> {
    let selector = format!("{}={run_id}", labels::RUN_ID);
    Ok(kube::Api::<Namespace>::all(client.clone())
        .list_metadata(&ListParams::default().labels(&selector))
        .await?
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect())
}

/// Persistent volumes whose claims lived in namespaces of run `run_id`.
async fn volumes_of(client: &kube::Client, run_id: &str) -> anyhow::Result<Vec<String>> {
    let prefix = format!("test-{run_id}-");
    Ok(kube::Api::<PersistentVolume>::all(client.clone())
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|pv| {
            pv.spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .and_then(|c| c.namespace.as_deref())
                .is_some_and(|ns| ns.starts_with(&prefix))
        })
        .filter_map(|pv| pv.metadata.name)
        .collect())
}

/// Helm releases (in any namespace) installed by run `run_id`.
async fn releases_of(run_id: &str) -> anyhow::Result<Vec<String>> {
    let helm = testware::Helm::locate(&testware::config::Tools::from_process()).await?;
    let prefix = format!("test-{run_id}-");
    let mut list = helm.list_every_state();
    list.extend(["--all-namespaces", "-o", "json"].map(Into::into));
    let namespaces = helm.run(list, Duration::from_secs(30)).await?;
    let parsed: Vec<serde_json::Value> = serde_json::from_str(&namespaces)?;
    Ok(parsed
        .iter()
        .filter(|r| {
            r["namespace"]
                .as_str()
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .map(|r| format!("{}/{}", r["namespace"], r["name"]))
        .collect())
}

async fn nothing_left(client: &kube::Client, run_id: &str) -> anyhow::Result<()> {
    let namespaces = namespaces_of(client, run_id).await?;
    check!(
        namespaces.is_empty(),
        "namespaces of run {run_id} remain: {namespaces:?}"
    );
    let volumes = volumes_of(client, run_id).await?;
    check!(
        volumes.is_empty(),
        "volumes of run {run_id} remain: {volumes:?}"
    );
    let releases = releases_of(run_id).await?;
    check!(
        releases.is_empty(),
        "releases of run {run_id} remain: {releases:?}"
    );
    Ok(())
}

async fn panicking_timed_out_and_failing_cases_leave_nothing_behind(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    // panics_after_deploying, times_out_after_deploying, fails_after_deploying
    let mut run = example_run(&ctx, "_after_deploying", None);
    let output = run.command.output().await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let all = format!("{stdout}\n{stderr}");
    check_eq!(
        output.status.code(),
        Some(101),
        "three failing cases: {all}"
    );
    check!(
        all.contains("case panicked: deliberate panic after deploying"),
        "{all}"
    );
    check!(all.contains("case timed out after 45s"), "{all}");
    check!(all.contains("deliberate failure after deploying"), "{all}");
    check!(all.contains("3 failed"), "{all}");
    nothing_left(&client, &run.run_id).await?;

    // Each failure left a bundle, and the JUnit entry points to it.
    let junit = std::fs::read_to_string(run.artifacts.join("junit.xml"))?;
    let bundles: Vec<&str> = junit
        .split("name=\"failure_bundle\" value=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    check_eq!(bundles.len(), 3, "one bundle per failed case in {junit}");
    for summary in bundles {
        let text = std::fs::read_to_string(summary)?;
        check!(
            text.contains("echo: deployed, revision 1"),
            "helm status in {summary}: {text}"
        );
        check!(
            text.contains("holder: phase Running"),
            "pod states in {summary}: {text}"
        );
        let dir = std::path::Path::new(summary)
            .parent()
            .unwrap_or(std::path::Path::new("."));
        let events = std::fs::read_to_string(dir.join("events.txt"))?;
        check!(
            events.contains("Scheduled"),
            "events in {}: {events}",
            dir.display()
        );
        // The case's timeline: the helm install it ran, with its duration.
        let timeline = std::fs::read_to_string(dir.join("timeline.txt"))?;
        check!(
            timeline.contains("helm ran") && timeline.contains("install"),
            "timeline in {}: {timeline}",
            dir.display()
        );
        check!(
            dir.join("helm/echo.values.yaml").is_file(),
            "helm values in {}",
            dir.display()
        );
        check!(
            dir.join("pods/holder.yaml").is_file(),
            "pod object in {}",
            dir.display()
        );
    }
    Ok(())
}

/// Starts the `waits_to_be_killed` example and returns it once its namespace is ready.
async fn start_victim(
    ctx: &Ctx,
    lease: Option<u64>,
) -> anyhow::Result<(tokio::process::Child, String, String)> {
    let mut run = example_run(ctx, "waits_to_be_killed", lease);
    let mut child = run
        .command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    let stderr = child
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let wait = ctx.deadline().cap(Duration::from_secs(180));
    let namespace = tokio::time::timeout(wait, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(ns) = line.strip_prefix("READY-TO-BE-KILLED ") {
                return Ok(ns.to_owned());
            }
        }
        anyhow::bail!("the example ended before it was ready")
    })
    .await
    .map_err(|_| anyhow::anyhow!("the example was not ready within {wait:?}"))??;
    // Keep draining its stderr so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, run.run_id, namespace))
}

async fn sigterm_mid_case_deletes_the_runs_namespaces(ctx: Ctx) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let (mut child, run_id, namespace) = start_victim(&ctx, None).await?;
    let pid = child.id().ok_or_else(|| anyhow::anyhow!("no pid"))?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid)?),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    check_eq!(status.code(), Some(143), "exit after SIGTERM");
    check!(
        namespaces_of(&client, &run_id).await?.is_empty(),
        "namespace {namespace} should be deleted before the run exits"
    );
    nothing_left(&client, &run_id).await
}

async fn sigkilled_run_is_reaped_by_the_next_runs_janitor(ctx: Ctx) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let lease = 8;
    let (mut child, run_id, namespace) = start_victim(&ctx, Some(lease)).await?;
    child.kill().await?; // SIGKILL: no cleanup can run
    check_eq!(
        namespaces_of(&client, &run_id).await?,
        vec![namespace.clone()],
        "a killed run leaves its namespace until the janitor comes"
    );
    // The next run's janitor: nothing is reaped before the lease expires...
    let early = testware::namespace::reap_expired(&client).await?;
    check!(
        !early.contains(&namespace),
        "reaped before its lease ran out: {early:?}"
    );
    tokio::time::sleep(Duration::from_secs(lease + 1)).await;
    // ... and the killed run's namespace is reaped after it.
    let reaped = testware::namespace::reap_expired(&client).await?;
    // Every case process of a parallel run starts with the janitor, so another
    // one may have been first: then the namespace is already being deleted.
    let deleting = kube::Api::<Namespace>::all(client.clone())
        .get_opt(&namespace)
        .await?
        .is_none_or(|n| n.metadata.deletion_timestamp.is_some());
    check!(
        reaped.contains(&namespace) || deleting,
        "the janitor should reap {namespace}: it reaped {reaped:?}, and the namespace is not being deleted"
    );
    testware::wait::namespace_gone(
        &client,
        &namespace,
        ctx.deadline().cap(Duration::from_secs(120)),
    )
    .await?;
    testware::wait::wait_until(
        format!("the volumes of run {run_id} to be deleted"),
        ctx.deadline().cap(Duration::from_secs(60)),
        || async {
            match volumes_of(&client, &run_id).await {
                Ok(v) if v.is_empty() => Ok(()),
                Ok(v) => Err(format!("{v:?} remain")),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await?;
    nothing_left(&client, &run_id).await
}
