//! A case that fails with secrets planted everywhere a failure bundle looks: a
//! release value, a Secret, a pod's literal env var and a `secretKeyRef`, a log
//! line, and the failure message itself. The `redaction` suite runs this binary
//! and checks that none of them reaches a file the run writes. Not part of any
//! test run by itself; the planted values come from the environment.

use std::sync::Arc;
use std::time::Duration;

use cluster_addons::toolbox::pod as toolbox_pod;
use k8s_openapi::api::core::v1::{Pod, Secret};
use testware::namespace::TestNamespace;
use testware::status::State;
use testware::{cases, CaseResult, ChartSet, Ctx, Suite};

fn main() -> std::process::ExitCode {
    Suite::new("redaction_example")
        .charts(testware_selftests::charts_dir())
        .cases(cases![chart_deploy: fails_with_secrets_everywhere])
        .run()
}

fn planted(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .map_err(|_| anyhow::anyhow!("{name} is not set (the redaction suite sets it)"))
}

async fn fails_with_secrets_everywhere(
    ctx: Ctx,
    ns: Arc<TestNamespace>,
    charts: Arc<ChartSet>,
) -> CaseResult {
    let in_values = planted("PLANTED_IN_VALUES")?;
    let in_secret = planted("PLANTED_IN_SECRET")?;
    let in_env = planted("PLANTED_IN_ENV")?;
    // A release value under a secret-looking key (it reaches the pod's annotations).
    charts
        .install("echo-server")
        .release("web")
        .set("podAnnotations.apiToken", &in_values)
        .run(&ctx, &ns)
        .await?;
    // A Secret, read by a pod through secretKeyRef; the pod also has a literal
    // secret env var and prints the Secret's value in its log.
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db"},
        "stringData": {"password": in_secret}
    }))?;
    ns.api::<Secret>()
        .create(&Default::default(), &secret)
        .await?;
    let mut pod = serde_json::to_value(toolbox_pod("client", None)?)?;
    pod["spec"]["restartPolicy"] = "Never".into();
    pod["spec"]["containers"][0]["args"] =
        serde_json::json!(["echo", "connecting with", in_secret]);
    pod["spec"]["containers"][0]["env"] = serde_json::json!([
        {"name": "DB_PASSWORD", "value": in_env},
        {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    ]);
    let pod: Pod = serde_json::from_value(pod)?;
    let pods = ns.api::<Pod>();
    pods.create(&Default::default(), &pod).await?;
    // Watched until it has printed its line and ended.
    testware::wait::watch_until(
        &pods,
        "client",
        "pod client to print its line".into(),
        Duration::from_secs(60),
        |pod: Option<&Pod>| {
            let phase = pod
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.as_deref());
            match phase {
                Some("Succeeded") => State::Done,
                Some("Failed") => State::Failed("the pod failed".into()),
                other => State::Pending(format!("phase {other:?}")),
            }
        },
        || async { String::new() },
    )
    .await?;
    anyhow::bail!("login failed with password {in_secret} (token {in_values}, env {in_env})")
}
