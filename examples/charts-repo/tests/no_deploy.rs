//! Renders the charts under `charts/` and checks them without a cluster: every
//! chart × values set against the library's policy rules and `helm lint`, plus
//! what this repository expects of its own chart.

use std::sync::Arc;

use testware::k8s_openapi::api::apps::v1::Deployment;
use testware::manifest::policy;
use testware::{cases, check_eq, CaseResult, ChartSet, RenderOptions, Suite};

fn main() -> std::process::ExitCode {
    let charts = ChartSet::new("charts");
    Suite::new("no_deploy")
        .chart_set(charts.clone())
        .cases(policy::cases(&charts))
        .cases(cases![no_deploy: replicas_follow_values, images_are_the_pinned_ones])
        .run()
}

async fn replicas_follow_values(charts: Arc<ChartSet>) -> CaseResult {
    let rendered = charts
        .render(
            "hello",
            RenderOptions::default().values("ci/two-replicas.yaml"),
        )
        .await?;
    let deployment = rendered.get::<Deployment>("test-hello")?;
    check_eq!(deployment.spec.as_ref().and_then(|s| s.replicas), Some(2));
    Ok(())
}

async fn images_are_the_pinned_ones(charts: Arc<ChartSet>) -> CaseResult {
    let rendered = charts.render("hello", RenderOptions::default()).await?;
    check_eq!(
        rendered.images(),
        [
            "localhost/hello:0.1.0",
            "localhost/testware-toolbox:0.1.0" // the `helm test` hook
        ]
    );
    Ok(())
}
