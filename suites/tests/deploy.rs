//! chart_deploy cases: each chart under test installs with its offline values on
//! the cluster, every pod becomes ready and every Job completes, and the first
//! thing each system promises can be observed.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use suites::toolbox_pod;
use testware::deployment::ChartDeployment;
use testware::namespace::TestNamespace;
use testware::net::{exec, port_forward_http};
use testware::{cases, check, check_eq, Ctx, Suite};

/// How long a helper pod may take to become ready.
const POD_START: Duration = Duration::from_secs(90);

fn main() -> std::process::ExitCode {
    Suite::new("deploy")
        .charts(suites::charts_dir())
        .cases(cases![chart_deploy:
            echo_server_installs_and_serves,
            efd_installs_offline_with_topics_and_database,
            embargo_ingest_installs_offline_and_accepts_notifications,
        ])
        .run()
}

async fn all_pods_ready(ns: &TestNamespace) -> anyhow::Result<Vec<Pod>> {
    let pods: Vec<Pod> = ns.api::<Pod>().list(&Default::default()).await?.items;
    for pod in &pods {
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        check!(
            ready || phase == "Succeeded",
            "pod {} is not ready: {}",
            pod.metadata.name.clone().unwrap_or_default(),
            testware::explain::describe_pod(pod)
        );
    }
    Ok(pods)
}

fn first_pod_with(pods: &[Pod], component: &str) -> anyhow::Result<String> {
    pods.iter()
        .find(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app.kubernetes.io/component"))
                .map(String::as_str)
                == Some(component)
                && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
        })
        .and_then(|p| p.metadata.name.clone())
        .ok_or_else(|| anyhow::anyhow!("no running {component} pod"))
}

/// `helm test` passes: at least one test pod, every one Succeeded.
async fn chart_tests_pass(release: &ChartDeployment) -> anyhow::Result<()> {
    let run = release.test().await?;
    check!(!run.pods.is_empty(), "the chart has no test hook");
    check!(
        run.pods.iter().all(|p| p.phase == "Succeeded"),
        "every test pod should succeed: {run}"
    );
    Ok(())
}

async fn toolbox(ns: &TestNamespace) -> anyhow::Result<String> {
    ns.start_pod(&toolbox_pod("toolbox", None)?, POD_START)
        .await
}

async fn echo_server_installs_and_serves(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let release = ctx
        .charts()?
        .install("echo-server")
        .release("echo")
        .values("ci/two-replicas.yaml")
        .run(&ctx, &ns)
        .await?;
    let pods = all_pods_ready(&ns).await?;
    check_eq!(pods.len(), 2, "two-replicas.yaml asks for two pods");
    let tb = toolbox(&ns).await?;
    let body = exec(
        &ns.api(),
        &tb,
        &[
            "/testware-toolbox",
            "http-get",
            // Ready pods reach kube-proxy's rules a moment later: until then
            // the Service refuses connections (run 8 of this change saw it).
            "--retry-for",
            "10",
            "http://echo-echo-server:9001/healthz",
        ],
    )
    .await?;
    check_eq!(body, "ok\n");
    chart_tests_pass(&release).await
}

async fn efd_installs_offline_with_topics_and_database(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let release = ctx
        .charts()?
        .install("efd")
        .values("ci/offline.yaml")
        .run(&ctx, &ns)
        .await?;
    all_pods_ready(&ns).await?;
    let job = ns.api::<Job>().get("efd-topics").await?;
    check_eq!(
        job.status.and_then(|s| s.succeeded),
        Some(1),
        "the topic job should have completed"
    );
    let tb = toolbox(&ns).await?;
    let databases = exec(
        &ns.api(),
        &tb,
        &[
            "/testware-toolbox",
            "http-get",
            "http://efd-influxdb:8086/query?q=SHOW%20DATABASES",
        ],
    )
    .await?;
    check!(
        databases.contains("\"efd\""),
        "InfluxDB should hold database efd: {databases}"
    );
    chart_tests_pass(&release).await
}

async fn embargo_ingest_installs_offline_and_accepts_notifications(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let release = ctx
        .charts()?
        .install("embargo-ingest")
        .release("emb")
        .values("ci/offline.yaml")
        .run(&ctx, &ns)
        .await?;
    let pods = all_pods_ready(&ns).await?;
    let enqueue = first_pod_with(&pods, "enqueue")?;
    let body = r#"{"Records":[{"s3":{"bucket":{"name":"rubin-embargo"},"object":{"key":"raw/a+b.fits"}},"opaqueData":"ci-webhook-secret"},{"s3":{"bucket":{"name":"rubin-embargo"},"object":{"key":"raw/c.txt"}},"opaqueData":"ci-webhook-secret"},{"s3":{"bucket":{"name":"rubin-embargo"},"object":{"key":"raw/d.fits"}},"opaqueData":"wrong"}]}"#;
    // Ready pods can still refuse the first connection for a moment.
    let response = testware::wait::wait_until(
        format!("pod {enqueue} to answer POST /notify"),
        Duration::from_secs(10),
        || async {
            let (_, response) = port_forward_http(
                &ns.api(),
                &enqueue,
                8080,
                "POST",
                "/notify",
                body.as_bytes(),
            )
            .await
            .map_err(|e| e.to_string())?;
            if response.contains("\"accepted\"") {
                Ok(response)
            } else {
                Err(format!("answered {response:?}"))
            }
        },
    )
    .await?;
    check!(
        response.contains("\"accepted\":1"),
        "one of three records should be accepted: {response}"
    );
    check!(
        response.contains("key does not match the dataset regexp")
            && response.contains("opaqueData does not match"),
        "skips are explained: {response}"
    );
    chart_tests_pass(&release).await
}
