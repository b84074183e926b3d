//! Installs the chart into a fresh namespace of the cluster in `KUBECONFIG`, talks
//! to it, upgrades and rolls it back. The runner deletes the namespace however a
//! case ends, after writing a failure bundle when it failed.

use std::sync::Arc;
use std::time::Duration;

use testware::echo::EchoServer;
use testware::namespace::TestNamespace;
use testware::net::http_request;
use testware::{cases, check_eq, CaseResult, ChartSet, Ctx, Suite, Upgrade};

fn main() -> std::process::ExitCode {
    Suite::new("chart_deploy")
        .charts("charts")
        .cases(cases![chart_deploy:
            serves_health_through_its_service_and_passes_helm_test,
            upgrade_scales_and_rollback_restores,
            echo_server_from_the_library_prints_what_it_is_sent,
        ])
        .run()
}

async fn serves_health_through_its_service_and_passes_helm_test(
    ctx: Ctx,
    ns: Arc<TestNamespace>,
    charts: Arc<ChartSet>,
) -> CaseResult {
    let hello = charts
        .install("hello")
        .release("web")
        .run(&ctx, &ns)
        .await?;
    let forward = hello.port_forward("svc/web-hello", 80).await?;
    let (status, body) = http_request(forward.local_addr(), "GET", "/healthz", b"").await?;
    check_eq!((status, body.trim()), (200, "ok"));
    let run = hello.test().await?; // the chart's `helm test` hooks, with their logs
    check_eq!(run.pods.len(), 1, "{run}");
    check_eq!(run.pods[0].phase.as_str(), "Succeeded", "{run}");
    Ok(())
}

async fn upgrade_scales_and_rollback_restores(
    ctx: Ctx,
    ns: Arc<TestNamespace>,
    charts: Arc<ChartSet>,
) -> CaseResult {
    let hello = charts
        .install("hello")
        .release("web")
        .run(&ctx, &ns)
        .await?;
    hello
        .upgrade(Upgrade::default().values("ci/two-replicas.yaml"))
        .await?;
    check_eq!(hello.ready_pods().await?.len(), 2, "after the upgrade");
    hello.rollback(None).await?;
    check_eq!(hello.status().await?.revision, 3);
    Ok(())
}

/// The library's log-pipeline helper, chart included: POST a line, read it back
/// from the pod's log.
async fn echo_server_from_the_library_prints_what_it_is_sent(
    ctx: Ctx,
    ns: Arc<TestNamespace>,
) -> CaseResult {
    let echo = EchoServer::deploy_bundled(&ctx, &ns).await?;
    echo.print_to_stdout("hello from the charts repository")
        .await?;
    echo.wait_printed("hello from the charts repository", Duration::from_secs(10))
        .await?;
    Ok(())
}
