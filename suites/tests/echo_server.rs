//! no_deploy cases for the echo-server chart.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use testware::{cases, check, check_eq, ChartSet, RenderOptions, Suite};

const CHART: &str = "echo-server";
const NAME: &str = "test-echo-server";

fn main() -> std::process::ExitCode {
    Suite::new("echo_server")
        .charts(suites::charts_dir())
        .cases(cases![no_deploy:
            renders_one_deployment_and_one_service,
            image_defaults_to_the_app_version,
            image_can_be_overridden,
            service_targets_the_http_port,
            replicas_and_port_follow_values,
            probes_use_healthz,
            test_hook_gets_healthz_through_the_service,
        ])
        .run()
}

async fn renders_one_deployment_and_one_service(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts.render(CHART, RenderOptions::default()).await?;
    let (hooks, objects): (Vec<_>, Vec<_>) = r.objects().iter().partition(|o| o.is_hook());
    let ids = |objects: Vec<&testware::manifest::ManifestObject>| -> Vec<String> {
        objects.iter().map(|o| o.id()).collect()
    };
    check_eq!(
        ids(objects),
        [format!("Service/{NAME}"), format!("Deployment/{NAME}")]
    );
    check_eq!(
        ids(hooks),
        [format!("Pod/{NAME}-test-healthz")],
        "one `helm test` hook"
    );
    Ok(())
}

/// The `helm test` hook GETs /healthz through the Service, whatever its port,
/// and is not selected by the Service itself.
async fn test_hook_gets_healthz_through_the_service(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts
        .render(
            CHART,
            RenderOptions::default().values("ci/two-replicas.yaml"),
        )
        .await?;
    let hook = r.pod_template("Pod", &format!("{NAME}-test-healthz"))?;
    let args = hook
        .container("healthz")
        .and_then(|c| c.args.clone())
        .unwrap_or_default();
    check_eq!(
        args,
        [
            "http-get",
            "--retry-for",
            "10",
            "http://test-echo-server:9001/healthz"
        ],
        "the hook follows service.port"
    );
    let service = r.get::<Service>(NAME)?;
    let selector = service
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let labels = hook.labels();
    check!(
        !selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
        "the Service must not select the test pod: selector {selector:?}, labels {labels:?}"
    );
    Ok(())
}

async fn image_defaults_to_the_app_version(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts.render(CHART, RenderOptions::default()).await?;
    let expected = format!(
        "localhost/echo-server:{}",
        r.chart.app_version.clone().unwrap_or_default()
    );
    let pod = r.pod_template("Deployment", NAME)?;
    let images: Vec<_> = pod
        .all_containers()
        .filter_map(|(c, _)| c.image.clone())
        .collect();
    check_eq!(images, [expected]);
    let pod = r.pod_template("Deployment", NAME)?;
    let container = pod
        .container("echo-server")
        .ok_or_else(|| anyhow::anyhow!("no echo-server container"))?;
    check_eq!(
        container.image_pull_policy.as_deref(),
        Some("IfNotPresent"),
        "local images must never be pulled"
    );
    Ok(())
}

async fn image_can_be_overridden(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let options = RenderOptions::default()
        .set("image.repository", "registry.example.org/echo")
        .set("image.tag", "2.0.1");
    let r = charts.render(CHART, options).await?;
    let pod = r.pod_template("Deployment", NAME)?;
    let images: Vec<_> = pod
        .all_containers()
        .filter_map(|(c, _)| c.image.clone())
        .collect();
    check_eq!(images, ["registry.example.org/echo:2.0.1"]);
    Ok(())
}

async fn service_targets_the_http_port(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts.render(CHART, RenderOptions::default()).await?;
    let service = r.get::<Service>(NAME)?;
    let port = &service
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default()[0];
    check_eq!(port.port, 80);
    check_eq!(port.target_port, Some(IntOrString::String("http".into())));
    let pod = r.pod_template("Deployment", NAME)?;
    let http = pod
        .ports()
        .into_iter()
        .find(|p| p.name.as_deref() == Some("http"));
    check_eq!(http.map(|p| p.container_port), Some(8080));
    Ok(())
}

async fn replicas_and_port_follow_values(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts
        .render(
            CHART,
            RenderOptions::default().values("ci/two-replicas.yaml"),
        )
        .await?;
    let deployment = r.get::<Deployment>(NAME)?;
    check_eq!(deployment.spec.as_ref().and_then(|s| s.replicas), Some(2));
    let pod = r.pod_template("Deployment", NAME)?;
    check_eq!(pod.ports()[0].container_port, 9001);
    let args = pod
        .container("echo-server")
        .and_then(|c| c.args.clone())
        .unwrap_or_default();
    check_eq!(
        args,
        ["--listen", "0.0.0.0:9001"],
        "the server must listen on the port the pod declares"
    );
    let service = r.get::<Service>(NAME)?;
    check_eq!(
        service
            .spec
            .as_ref()
            .and_then(|s| s.ports.clone())
            .unwrap_or_default()[0]
            .port,
        9001
    );
    Ok(())
}

async fn probes_use_healthz(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts.render(CHART, RenderOptions::default()).await?;
    let pod = r.pod_template("Deployment", NAME)?;
    let c = pod
        .container("echo-server")
        .ok_or_else(|| anyhow::anyhow!("no echo-server container"))?;
    for (which, probe) in [
        ("readiness", &c.readiness_probe),
        ("liveness", &c.liveness_probe),
    ] {
        let path = probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone());
        check!(
            path.as_deref() == Some("/healthz"),
            "{which} probe should GET /healthz, has {path:?}"
        );
    }
    Ok(())
}
