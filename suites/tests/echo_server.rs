//! no_deploy cases for the echo-server chart.

use std::sync::Arc;

use harness::{RenderOptions, Suite};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use suites::{chart_case, check, check_eq, Charts};

const CHART: &str = "echo-server";
const NAME: &str = "test-echo-server";

fn main() -> std::process::ExitCode {
    let c = Charts::shared();
    Suite::new("echo_server")
        .case(chart_case(
            &c,
            "renders_one_deployment_and_one_service",
            renders_one_deployment_and_one_service,
        ))
        .case(chart_case(
            &c,
            "image_defaults_to_the_app_version",
            image_defaults_to_the_app_version,
        ))
        .case(chart_case(
            &c,
            "image_can_be_overridden",
            image_can_be_overridden,
        ))
        .case(chart_case(
            &c,
            "service_targets_the_http_port",
            service_targets_the_http_port,
        ))
        .case(chart_case(
            &c,
            "replicas_and_port_follow_values",
            replicas_and_port_follow_values,
        ))
        .case(chart_case(&c, "probes_use_healthz", probes_use_healthz))
        .run()
}

async fn renders_one_deployment_and_one_service(charts: Arc<Charts>) -> anyhow::Result<()> {
    let r = charts.render_ci(CHART, None).await?;
    let kinds: Vec<String> = r.objects().iter().map(|o| o.id()).collect();
    check_eq!(
        kinds,
        [format!("Service/{NAME}"), format!("Deployment/{NAME}")]
    );
    Ok(())
}

async fn image_defaults_to_the_app_version(charts: Arc<Charts>) -> anyhow::Result<()> {
    let r = charts.render_ci(CHART, None).await?;
    let expected = format!(
        "localhost/echo-server:{}",
        r.chart.app_version.clone().unwrap_or_default()
    );
    check_eq!(r.images(), [expected]);
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

async fn image_can_be_overridden(charts: Arc<Charts>) -> anyhow::Result<()> {
    let options = RenderOptions::default()
        .set("image.repository", "registry.example.org/echo")
        .set("image.tag", "2.0.1");
    let r = charts.render(CHART, options).await?;
    check_eq!(r.images(), ["registry.example.org/echo:2.0.1"]);
    Ok(())
}

async fn service_targets_the_http_port(charts: Arc<Charts>) -> anyhow::Result<()> {
    let r = charts.render_ci(CHART, None).await?;
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

async fn replicas_and_port_follow_values(charts: Arc<Charts>) -> anyhow::Result<()> {
    let r = charts.render_ci(CHART, Some("two-replicas")).await?;
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

async fn probes_use_healthz(charts: Arc<Charts>) -> anyhow::Result<()> {
    let r = charts.render_ci(CHART, None).await?;
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
