//! chart_deploy cases of the echo-server chart through the harness API: the echo
//! round trip through the pod log, upgrade / rollback / uninstall, and installs
//! that cannot succeed, whose errors must say why.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use testware::deployment::ChartDeployment;
use testware::echo::EchoServer;
use testware::images::Provision;
use testware::namespace::TestNamespace;
use testware::{cases, check, check_eq, expect_err, Case, ChartSet, Ctx, Install, Suite, Upgrade};

fn main() -> std::process::ExitCode {
    Suite::new("echo_deploy")
        .charts(suites::charts_dir())
        .cases(cases![chart_deploy:
            echoed_line_is_read_back_from_the_pod_log,
            upgrade_scales_rollback_restores_uninstall_removes,
            helm_test_passes_and_fails_when_the_service_has_no_pods,
        ])
        .cases(failing_installs())
        .run()
}

async fn echoed_line_is_read_back_from_the_pod_log(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let echo = EchoServer::deploy_bundled(&ctx, &ns).await?;
    // The library built (or found) the server's image and the pod runs it.
    let (image, provision) = EchoServer::bundled_image(&ctx).await?;
    check_eq!(
        provision,
        Provision::AlreadyThere,
        "asked again, the image is not imported again"
    );
    let pods: kube::Api<Pod> = echo.deployment().api();
    let pod = pods.get(echo.pod()).await?;
    let running: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|spec| &spec.containers)
        .filter_map(|c| c.image.clone())
        .collect();
    check_eq!(running, vec![image], "the pod runs the on-demand image");
    let line = format!("echo-check {}", testware::config::random_suffix(10));
    echo.print_to_stdout(&line).await?;
    echo.wait_printed(&line, Duration::from_secs(10)).await?;
    let printed = echo.printed().await?;
    check!(
        printed.contains(&line),
        "the pod log should hold {line:?} as a line of its own: {printed:?}"
    );
    // A line that was never sent is not found: the wait fails and says what it saw.
    let missing = expect_err(
        echo.wait_printed("never sent", Duration::from_millis(1500))
            .await,
        "waiting for a line that was never printed",
    )?;
    let text = missing.to_string();
    check!(
        text.contains("to print \"never sent\"") && text.contains(&line),
        "the timeout names the line and the last line seen: {text}"
    );
    Ok(())
}

async fn upgrade_scales_rollback_restores_uninstall_removes(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let chart = ctx.charts()?.dir("echo-server");
    let release = Install::chart(&chart).release("web").run(&ctx, &ns).await?;
    let status = release.status().await?;
    check_eq!((status.status.as_str(), status.revision), ("deployed", 1));
    check_eq!(
        release.ready_pods().await?.len(),
        1,
        "one replica by default"
    );
    check_eq!(
        release.workloads().await?,
        vec![(
            testware::status::WorkloadKind::Deployment,
            "web-echo-server".to_owned()
        )]
    );

    release
        .upgrade(Upgrade::default().set("replicaCount", "2"))
        .await?;
    let pods = ready_pods_settled(&release, 2).await?;
    for pod in &pods {
        let forward = release.port_forward(&format!("pod/{pod}"), 8080).await?;
        let (code, body) =
            testware::net::http_request(forward.local_addr(), "GET", "/healthz", b"").await?;
        check_eq!(
            (code, body.as_str()),
            (200, "ok\n"),
            "pod {pod} should serve"
        );
    }
    let via_service = release.port_forward("svc/web-echo-server", 80).await?;
    let (code, _) =
        testware::net::http_request(via_service.local_addr(), "GET", "/healthz", b"").await?;
    check_eq!(code, 200, "the Service forwards too");

    release.rollback(None).await?;
    let history = release.history().await?;
    let summary: Vec<(u32, &str)> = history
        .iter()
        .map(|r| (r.revision, r.status.as_str()))
        .collect();
    check_eq!(
        summary,
        vec![(1, "superseded"), (2, "superseded"), (3, "deployed")]
    );
    check!(
        history[2].description.contains("Rollback to 1"),
        "{history:?}"
    );
    ready_pods_settled(&release, 1).await?;
    check_eq!(release.values().await?["replicaCount"].as_u64(), Some(1));

    release.uninstall().await?;
    // Every pod in the namespace, not the release's view: the release is gone.
    let pods = ns
        .api::<k8s_openapi::api::core::v1::Pod>()
        .list(&Default::default())
        .await?;
    check!(
        pods.items.is_empty(),
        "no pods after uninstall: {:?}",
        pods.items
            .iter()
            .map(|p| p.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    let services = ns
        .api::<k8s_openapi::api::core::v1::Service>()
        .list(&Default::default())
        .await?;
    check!(
        services.items.is_empty(),
        "no services after uninstall: {:?}",
        services.items.len()
    );
    let gone = expect_err(release.status().await, "helm status after uninstall")?;
    check!(gone.to_string().contains("release: not found"), "{gone}");
    Ok(())
}

/// Waits until exactly `count` pods of the release are ready and none is terminating.
async fn ready_pods_settled(
    release: &ChartDeployment,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let pods = testware::wait::wait_until(
        format!("{count} ready pods of release {}", release.release()),
        Duration::from_secs(60),
        || async {
            let all = release.pods().await.map_err(|e| e.to_string())?;
            let ready = release.ready_pods().await.map_err(|e| e.to_string())?;
            if ready.len() == count && all.len() == count {
                Ok(ready)
            } else {
                Err(format!("{} ready of {} pods", ready.len(), all.len()))
            }
        },
    )
    .await?;
    Ok(pods)
}

/// A failing install: case name, `--set` values, what its error must mention.
type FailingInstall = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [&'static str],
);

/// Installs that cannot become ready: the error must name the cause.
fn failing_installs() -> Vec<Case> {
    let cases: [FailingInstall; 3] = [
        (
            "install_explains_a_missing_image",
            &[("image.tag", "no-such-tag")],
            &[
                "Deployment broken-echo-server",
                "localhost/echo-server:no-such-tag",
                "ImagePull",
            ],
        ),
        (
            "install_explains_a_crashing_container",
            // Port 80 needs privileges the non-root server does not have.
            &[("containerPort", "80")],
            &[
                "Deployment broken-echo-server",
                "last exit 1",
                "failed to listen on 0.0.0.0:80",
            ],
        ),
        (
            "install_explains_an_unschedulable_pod",
            &[("global.nodeSelector.testware-no-such-node", "x")],
            // "0/N nodes are available", N the cluster's nodes.
            &[
                "Unschedulable",
                "nodes are available",
                "didn't match Pod's node affinity/selector",
            ],
        ),
    ];
    cases
        .into_iter()
        .map(|(name, sets, expected)| {
            Case::chart_deploy(name, move |ctx| async move {
                let ns = ctx.create_namespace().await?;
                let mut install = ctx
                    .charts()?
                    .install("echo-server")
                    .release("broken")
                    .timeout(Duration::from_secs(25));
                for (key, value) in sets {
                    install = install.set(*key, *value);
                }
                let result = install.run(&ctx, &ns).await;
                let text = expect_err(result, "an install that cannot become ready")?.to_string();
                check!(text.contains("install of release broken failed"), "{text}");
                for want in expected {
                    check!(
                        text.contains(want),
                        "the explanation should mention {want:?}: {text}"
                    );
                }
                Ok(())
            })
        })
        .collect()
}

/// `helm test` runs the chart's test hook (GET /healthz through the Service) and
/// reports its pod's phase and log; with the Deployment scaled to zero the same
/// hook fails, and the error carries the hook's log.
async fn helm_test_passes_and_fails_when_the_service_has_no_pods(
    ctx: Ctx,
    ns: Arc<TestNamespace>,
    charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    let release = charts
        .install("echo-server")
        .release("web")
        .run(&ctx, &ns)
        .await?;
    let run = release.test().await?;
    check_eq!(run.pods.len(), 1, "one test hook: {run}");
    check_eq!(run.pods[0].name.as_str(), "web-echo-server-test-healthz");
    check_eq!(run.pods[0].phase.as_str(), "Succeeded", "{run}");
    check!(
        run.pods[0].log.ends_with("ok\n"),
        "the hook prints the body (after retries while the Service starts routing): {run}"
    );

    release
        .upgrade(Upgrade::default().set("replicaCount", "0"))
        .await?;
    let err = expect_err(
        release.test().await,
        "helm test with no pod behind the Service",
    )?;
    let text = err.to_string();
    check!(
        text.starts_with("helm test of release web failed")
            && text.contains("test pod web-echo-server-test-healthz (Failed):\n  | ")
            && text.contains("still failing after 10 s"),
        "the failure names the hook and shows its log: {text}"
    );
    Ok(())
}
