//! Failure bundles: when a case fails, everything needed to debug it without the
//! cluster, written under the artifacts directory before the namespace goes:
//!
//! ```text
//! <artifacts>/<suite>/<case>/<namespace>/
//!   summary.txt            the failure, each pod's state, each release's status, the files
//!   events.txt             every event of the namespace, oldest first
//!   pods/<pod>.yaml        the pod object with its status
//!   pods/<pod>.<container>.log            current container
//!   pods/<pod>.<container>.previous.log   the one before a restart
//!   helm/<release>.status.txt  .history.txt  .values.yaml  .manifest.yaml
//! ```
//!
//! Everything is written through a [`Redactor`] that first learns the
//! namespace's secrets (its Secrets, the releases' secret-looking values, pods'
//! secret-looking env vars): no file of a bundle holds a secret value.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};

use crate::charts::helm::Helm;
use crate::report::redact::Redactor;

/// How long each helm query of the bundle may take.
const HELM_QUERY: Duration = Duration::from_secs(30);

/// Writes the bundle of namespace `namespace` into `dir` and returns the path of
/// its `summary.txt` (`helm`: where helm is, or why it is not). Parts that cannot
/// be collected are named in the summary. `redactor` learns the namespace's
/// secrets first, and the caller can redact the failure message it reports with it.
///
/// # Errors
/// The directory or a file cannot be written.
pub async fn write_bundle(
    helm: Result<std::sync::Arc<Helm>, crate::charts::helm::HelmError>,
    client: &kube::Client,
    namespace: &str,
    failure: &str,
    dir: &Path,
    kube_context: Option<&str>,
    redactor: &mut Redactor,
) -> std::io::Result<PathBuf> {
    let pods_dir = dir.join("pods");
    let helm_dir = dir.join("helm");
    std::fs::create_dir_all(&pods_dir)?;
    std::fs::create_dir_all(&helm_dir)?;
    // Everything is read, and its secrets learnt, before anything is written.
    redactor.learn_secrets(client, namespace).await;
    let pods_api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
    let pods = pods_api.list(&Default::default()).await;
    for pod in pods.iter().flat_map(|list| &list.items) {
        redactor.learn_pod(pod);
    }
    let releases = match &helm {
        Ok(helm) => read_releases(helm, namespace, kube_context, redactor).await,
        Err(e) => Err(format!("  (helm unavailable: {e})\n")),
    };
    let mut summary = format!(
        "namespace: {namespace}\n\nfailure:\n{}\n",
        indent(&redactor.text(failure))
    );

    summary.push_str("\npods:\n");
    match pods {
        Ok(list) if list.items.is_empty() => summary.push_str("  (none)\n"),
        Ok(list) => {
            for pod in &list.items {
                let name = pod.metadata.name.clone().unwrap_or_default();
                let described = redactor.text(&crate::cluster::explain::describe_pod(pod));
                let _ = writeln!(summary, "  {name}: {described}");
                write_pod(&pods_api, pod, &pods_dir, redactor).await?;
            }
        }
        Err(e) => {
            let _ = writeln!(summary, "  (could not list pods: {e})");
        }
    }

    let events: kube::Api<Event> = kube::Api::namespaced(client.clone(), namespace);
    match events.list(&Default::default()).await {
        Ok(list) => {
            let mut items = list.items;
            items.sort_by_key(event_time);
            let text: String = items.iter().map(|e| format_event(e) + "\n").collect();
            std::fs::write(dir.join("events.txt"), redactor.text(&text))?;
            let warnings = items
                .iter()
                .filter(|e| e.type_.as_deref() == Some("Warning"))
                .count();
            let _ = writeln!(
                summary,
                "\nevents: {} ({warnings} warnings) in events.txt",
                items.len()
            );
        }
        Err(e) => {
            let _ = writeln!(summary, "\nevents: could not list them: {e}");
        }
    }

    summary.push_str("\nhelm releases:\n");
    match releases {
        Ok(releases) => summary.push_str(&write_releases(&releases, &helm_dir, redactor)?),
        Err(why) => summary.push_str(&why),
    }
    let _ = write!(
        summary,
        "\nfiles: events.txt, pods/<pod>.yaml, pods/<pod>.<container>[.previous].log, \
         helm/<release>.{{status,history,values,manifest}}\n"
    );
    if !redactor.is_enabled() {
        summary.push_str("\nredaction: OFF (--no-redact): this bundle may hold secrets\n");
    }
    let path = dir.join("summary.txt");
    std::fs::write(&path, redactor.text(&summary))?;
    Ok(path)
}

async fn write_pod(
    pods: &kube::Api<Pod>,
    pod: &Pod,
    dir: &Path,
    redactor: &mut Redactor,
) -> std::io::Result<()> {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let yaml = match serde_json::to_value(pod) {
        Ok(mut value) => {
            redactor.json(&mut value);
            serde_yaml_ng::to_string(&value)
                .unwrap_or_else(|e| format!("# not serializable: {e}\n"))
        }
        Err(e) => format!("# not serializable: {e}\n"),
    };
    std::fs::write(dir.join(format!("{name}.yaml")), redactor.text(&yaml))?;
    let statuses = pod
        .status
        .iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| {
            (
                c.name.clone(),
                c.restart_count > 0
                    || c.last_state
                        .as_ref()
                        .is_some_and(|l| l.terminated.is_some()),
            )
        });
    for (container, restarted) in statuses {
        let current = kube::api::LogParams {
            container: Some(container.clone()),
            ..Default::default()
        };
        let text = pods
            .logs(&name, &current)
            .await
            .unwrap_or_else(|e| format!("(no log: {e})\n"));
        std::fs::write(
            dir.join(format!("{name}.{container}.log")),
            redactor.text(&text),
        )?;
        if restarted {
            let previous = kube::api::LogParams {
                previous: true,
                ..current
            };
            let text = pods
                .logs(&name, &previous)
                .await
                .unwrap_or_else(|e| format!("(no log: {e})\n"));
            std::fs::write(
                dir.join(format!("{name}.{container}.previous.log")),
                redactor.text(&text),
            )?;
        }
    }
    Ok(())
}

/// What helm says about one release: (file suffix, text) pairs.
struct ReleaseFiles {
    name: String,
    files: Vec<(&'static str, String)>,
}

/// Reads status, history, values and manifest of every release in the namespace,
/// values and manifest redacted structurally (which teaches `redactor` their
/// secrets); `Err` is the summary line saying why none could be read.
async fn read_releases(
    helm: &Helm,
    namespace: &str,
    kube_context: Option<&str>,
    redactor: &mut Redactor,
) -> Result<Vec<ReleaseFiles>, String> {
    let query_argv = |mut argv: Vec<std::ffi::OsString>| {
        argv.extend(["--namespace".into(), namespace.into()]);
        if let Some(context) = kube_context {
            argv.extend(["--kube-context".into(), context.into()]);
        }
        helm.run(argv, HELM_QUERY)
    };
    let query = |args: &[&str]| query_argv(args.iter().map(Into::into).collect());
    let mut list = helm.list_every_state();
    list.push("--short".into());
    let names = match query_argv(list).await {
        Ok(out) => out.lines().map(str::to_owned).collect::<Vec<_>>(),
        Err(e) => return Err(format!("  (helm list failed: {e})\n")),
    };
    let mut releases = Vec::new();
    for name in names {
        let parts = [
            ("status.txt", vec!["status", &name]),
            ("history.txt", vec!["history", &name]),
            ("values.yaml", vec!["get", "values", "--all", &name]),
            ("manifest.yaml", vec!["get", "manifest", &name]),
        ];
        let mut files = Vec::new();
        for (suffix, args) in parts {
            let text = query(&args).await.unwrap_or_else(|e| format!("({e})\n"));
            let text = if suffix.ends_with(".yaml") {
                redactor.yaml(&text)
            } else {
                text
            };
            files.push((suffix, text));
        }
        releases.push(ReleaseFiles { name, files });
    }
    Ok(releases)
}

/// Writes the releases' files (every text redacted with all that was learnt);
/// returns the summary lines.
fn write_releases(
    releases: &[ReleaseFiles],
    dir: &Path,
    redactor: &Redactor,
) -> std::io::Result<String> {
    if releases.is_empty() {
        return Ok("  (none)\n".into());
    }
    let mut lines = String::new();
    for release in releases {
        for (suffix, text) in &release.files {
            if *suffix == "status.txt" {
                let status = text
                    .lines()
                    .find_map(|l| l.strip_prefix("STATUS: "))
                    .unwrap_or("unknown");
                let revision = text
                    .lines()
                    .find_map(|l| l.strip_prefix("REVISION: "))
                    .unwrap_or("?");
                let _ = writeln!(lines, "  {}: {status}, revision {revision}", release.name);
            }
            std::fs::write(
                dir.join(format!("{}.{suffix}", release.name)),
                redactor.text(text),
            )?;
        }
    }
    Ok(lines)
}

fn event_time(e: &Event) -> Option<k8s_openapi::jiff::Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or_else(|| e.event_time.as_ref().map(|t| t.0))
        .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

fn format_event(e: &Event) -> String {
    let object = &e.involved_object;
    format!(
        "{} {:<7} {:<20} {}/{}: {}{}",
        event_time(e).map(|t| t.to_string()).unwrap_or_default(),
        e.type_.clone().unwrap_or_default(),
        e.reason.clone().unwrap_or_default(),
        object.kind.clone().unwrap_or_default(),
        object.name.clone().unwrap_or_default(),
        e.message.clone().unwrap_or_default().trim(),
        e.count
            .filter(|c| *c > 1)
            .map(|c| format!(" (x{c})"))
            .unwrap_or_default()
    )
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
