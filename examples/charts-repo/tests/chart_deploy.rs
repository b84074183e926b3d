//! Installs the chart into a fresh namespace of the cluster in `KUBECONFIG`, talks
//! to it, upgrades and rolls it back. The runner deletes the namespace however a
//! case ends, after writing a failure bundle when it failed.

use std::sync::Arc;

use testware::namespace::TestNamespace;
use testware::net::http_request;
use testware::{cases, check_eq, CaseResult, ChartOptions, ChartSet, Ctx, Suite};

fn main() -> std::process::ExitCode {
    Suite::new("chart_deploy")
        .charts("charts")
        .cases(cases![chart_deploy: serves_health_through_its_service, upgrade_scales_and_rollback_restores])
        .run()
}

async fn serves_health_through_its_service(
    ctx: Ctx,
    ns: Arc<TestNamespace>,
    charts: Arc<ChartSet>,
) -> CaseResult {
    let hello = charts
        .install(&ctx, &ns, "web", "hello", ChartOptions::default())
        .await?;
    let forward = hello.port_forward("svc/web-hello", 80).await?;
    let (status, body) = http_request(forward.local_addr(), "GET", "/healthz", b"").await?;
    check_eq!((status, body.trim()), (200, "ok"));
    Ok(())
}

async fn upgrade_scales_and_rollback_restores(
    ctx: Ctx,
    ns: Arc<TestNamespace>,
    charts: Arc<ChartSet>,
) -> CaseResult {
    let hello = charts
        .install(&ctx, &ns, "web", "hello", ChartOptions::default())
        .await?;
    hello
        .upgrade(ChartOptions::default().values("ci/two-replicas.yaml"))
        .await?;
    check_eq!(hello.ready_pods().await?.len(), 2, "after the upgrade");
    hello.rollback(None).await?;
    check_eq!(hello.status().await?.revision, 3);
    Ok(())
}
