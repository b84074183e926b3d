//! Bad input gets a clear error, never a hang or a panic: missing or old helm,
//! a chart path that does not exist, a template that does not parse, output that
//! is not YAML, values that violate the schema, a values file that is missing.

use std::sync::Arc;

use suites::fixture;
use testware::chart::ChartError;
use testware::helm::{Helm, HelmError};
use testware::{cases, check, expect_err, ChartOptions, ChartSet, Ctx, HelmChart, Suite};

fn main() -> std::process::ExitCode {
    Suite::new("bad_input")
        .charts(suites::CHARTS_DIR)
        .cases(cases![no_deploy:
            missing_helm_is_named_with_a_hint,
            old_helm_is_refused,
            missing_chart_path_is_named,
            unparsable_template_shows_helms_error,
            output_that_is_not_yaml_is_refused,
            values_violating_the_schema_are_refused,
            missing_values_file_is_named,
        ])
        .run()
}

async fn missing_helm_is_named_with_a_hint(ctx: Ctx) -> anyhow::Result<()> {
    let empty = ctx.artifacts_dir();
    let err = expect_err(
        Helm::locate_in(None, std::ffi::OsStr::new(""), &empty).await,
        "locating helm nowhere",
    )?;
    let text = err.to_string();
    check!(matches!(err, HelmError::NotFound { .. }), "{text}");
    check!(
        text.starts_with("helm not found")
            && text.contains("hint: set HELM to a helm 3.8.0+ binary or put one on PATH"),
        "{text}"
    );
    let err = expect_err(Helm::at("/nonexistent/helm").await, "using a missing helm")?;
    check!(
        testware::error_chain(&err).starts_with("failed to start /nonexistent/helm: No such file"),
        "{}",
        testware::error_chain(&err)
    );
    Ok(())
}

async fn old_helm_is_refused(ctx: Ctx) -> anyhow::Result<()> {
    let dir = ctx.artifacts_dir();
    std::fs::create_dir_all(&dir)?;
    let fake = dir.join("helm");
    std::fs::write(&fake, "#!/bin/sh\necho v3.7.2\n")?;
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let text = expect_err(Helm::at(&fake).await, "using helm 3.7.2")?.to_string();
    check!(
        text.contains("is helm 3.7.2, but 3.8.0 or newer is needed"),
        "{text}"
    );
    Ok(())
}

async fn missing_chart_path_is_named(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let err = expect_err(charts.open("no-such-chart"), "opening a missing chart")?.to_string();
    check!(
        err.starts_with("chart not found: ")
            && err.ends_with("charts-under-test/no-such-chart has no Chart.yaml"),
        "{err}"
    );
    Ok(())
}

async fn render_error(
    charts: &ChartSet,
    chart: &HelmChart,
    options: ChartOptions,
) -> anyhow::Result<(ChartError, String)> {
    let renderer = charts.renderer().await?;
    match renderer.render(chart, &options).await {
        Ok(_) => anyhow::bail!("rendering {} should have failed", chart.dir().display()),
        Err(e) => {
            let chain = testware::error_chain(&e);
            Ok((e, chain))
        }
    }
}

async fn unparsable_template_shows_helms_error(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let chart = HelmChart::open(fixture("broken-charts/unparsable-template"))?;
    let (err, text) = render_error(&charts, &chart, ChartOptions::default()).await?;
    check!(
        matches!(
            err,
            ChartError::Helm {
                source: HelmError::Failed { .. },
                ..
            }
        ),
        "{text}"
    );
    check!(
        text.starts_with("failed to render chart unparsable-template: `"),
        "{text}"
    );
    check!(
        text.contains(" template test ") && text.contains("failed with exit status: 1"),
        "the command and status are named: {text}"
    );
    check!(
        text.contains("templates/configmap.yaml") && text.contains("parse error"),
        "helm's stderr is carried: {text}"
    );
    Ok(())
}

async fn output_that_is_not_yaml_is_refused(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let chart = HelmChart::open(fixture("broken-charts/invalid-yaml"))?;
    let (_, text) = render_error(&charts, &chart, ChartOptions::default()).await?;
    check!(
        text.starts_with("failed to render chart invalid-yaml")
            || text.starts_with("failed to parse the rendered chart invalid-yaml"),
        "{text}"
    );
    check!(
        text.contains("configmap.yaml"),
        "the template is named: {text}"
    );
    Ok(())
}

async fn values_violating_the_schema_are_refused(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let chart = charts.open("echo-server")?;
    let options = ChartOptions::default().values(fixture("values/echo-server-bad-schema.yaml"));
    let (_, text) = render_error(&charts, &chart, options).await?;
    check!(
        text.contains("values don't meet the specifications of the schema"),
        "{text}"
    );
    check!(
        text.contains("replicaCount"),
        "the offending value is named: {text}"
    );
    Ok(())
}

async fn missing_values_file_is_named(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let chart = charts.open("echo-server")?;
    let options = ChartOptions::default().values(fixture("values/no-such-file.yaml"));
    let (err, text) = render_error(&charts, &chart, options).await?;
    check!(matches!(err, ChartError::MissingValues { .. }), "{text}");
    check!(
        text.starts_with("values file ")
            && text.ends_with("fixtures/values/no-such-file.yaml does not exist"),
        "{text}"
    );
    Ok(())
}
