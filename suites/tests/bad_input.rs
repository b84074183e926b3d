//! Bad input gets a clear error, never a hang or a panic: missing or old helm,
//! a chart path that does not exist, a template that does not parse, output that
//! is not YAML, values that violate the schema, a values file that is missing.

use std::sync::Arc;

use harness::chart::ChartError;
use harness::helm::{Helm, HelmError};
use harness::{Case, HelmChart, RenderOptions, Suite};
use suites::{chart_case, chart_dir, check, expect_err, fixture, Charts};

fn main() -> std::process::ExitCode {
    let c = Charts::shared();
    Suite::new("bad_input")
        .case(Case::no_deploy(
            "missing_helm_is_named_with_a_hint",
            |ctx| async move {
                let empty = ctx.artifacts_dir();
                let err = expect_err(
                    Helm::locate_in(None, std::ffi::OsStr::new(""), &empty).await,
                    "locating helm nowhere",
                )?;
                let text = err.to_string();
                check!(matches!(err, HelmError::NotFound { .. }), "{text}");
                check!(
                    text.starts_with("helm not found")
                        && text.contains("hint: run `ci/install-helm` or set HELM"),
                    "{text}"
                );
                let err = expect_err(Helm::at("/nonexistent/helm").await, "using a missing helm")?;
                check!(
                    harness::error_chain(&err)
                        .starts_with("failed to start /nonexistent/helm: No such file"),
                    "{}",
                    harness::error_chain(&err)
                );
                Ok(())
            },
        ))
        .case(Case::no_deploy("old_helm_is_refused", |ctx| async move {
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
        }))
        .case(chart_case(
            &c,
            "missing_chart_path_is_named",
            missing_chart_path,
        ))
        .case(chart_case(
            &c,
            "unparsable_template_shows_helms_error",
            unparsable_template,
        ))
        .case(chart_case(
            &c,
            "output_that_is_not_yaml_is_refused",
            output_that_is_not_yaml,
        ))
        .case(chart_case(
            &c,
            "values_violating_the_schema_are_refused",
            values_violating_the_schema,
        ))
        .case(chart_case(
            &c,
            "missing_values_file_is_named",
            missing_values_file,
        ))
        .run()
}

async fn missing_chart_path(_: Arc<Charts>) -> anyhow::Result<()> {
    let err = expect_err(
        HelmChart::open(chart_dir("no-such-chart")),
        "opening a missing chart",
    )?
    .to_string();
    check!(
        err.starts_with("chart not found: ")
            && err.ends_with("charts-under-test/no-such-chart has no Chart.yaml"),
        "{err}"
    );
    Ok(())
}

async fn render_error(
    charts: &Charts,
    chart: &HelmChart,
    options: RenderOptions,
) -> anyhow::Result<(ChartError, String)> {
    let renderer = charts.renderer().await?;
    match renderer.render(chart, &options).await {
        Ok(_) => anyhow::bail!("rendering {} should have failed", chart.dir().display()),
        Err(e) => {
            let chain = harness::error_chain(&e);
            Ok((e, chain))
        }
    }
}

async fn unparsable_template(charts: Arc<Charts>) -> anyhow::Result<()> {
    let chart = HelmChart::open(fixture("broken-charts/unparsable-template"))?;
    let (err, text) = render_error(&charts, &chart, RenderOptions::default()).await?;
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

async fn output_that_is_not_yaml(charts: Arc<Charts>) -> anyhow::Result<()> {
    let chart = HelmChart::open(fixture("broken-charts/invalid-yaml"))?;
    let (_, text) = render_error(&charts, &chart, RenderOptions::default()).await?;
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

async fn values_violating_the_schema(charts: Arc<Charts>) -> anyhow::Result<()> {
    let chart = HelmChart::open(chart_dir("echo-server"))?;
    let options = RenderOptions::default().values(fixture("values/echo-server-bad-schema.yaml"));
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

async fn missing_values_file(charts: Arc<Charts>) -> anyhow::Result<()> {
    let chart = HelmChart::open(chart_dir("echo-server"))?;
    let options = RenderOptions::default().values(fixture("values/no-such-file.yaml"));
    let (err, text) = render_error(&charts, &chart, options).await?;
    check!(matches!(err, ChartError::MissingValues { .. }), "{text}");
    check!(
        text.starts_with("values file ")
            && text.ends_with("fixtures/values/no-such-file.yaml does not exist"),
        "{text}"
    );
    Ok(())
}
