//! Policy checks on every chart × every values set (the chart's defaults and each
//! `ci/*.yaml`), plus `helm lint --strict` for the same combinations.
//!
//! Every render applies the probe values (`global.nodeSelector`, `global.tolerations`,
//! `global.storageClass`) so the scheduling and storage-class rules can see
//! whether the chart honours them.

use std::path::PathBuf;
use std::sync::Arc;

use harness::manifest::policy::{self, ProbeValues, Report};
use harness::{Case, HelmChart, RenderOptions, Suite};
use suites::{chart_dir, Charts, CHARTS};

/// The values sets of a chart: `None` for its defaults, then its `ci/` files.
fn value_sets(chart: &str) -> Vec<Option<PathBuf>> {
    let files = HelmChart::open(chart_dir(chart))
        .map(|c| c.ci_values_files())
        .unwrap_or_default();
    std::iter::once(None)
        .chain(files.into_iter().map(Some))
        .collect()
}

/// How a values set is named in case names and reports: `default`, a path
/// relative to the chart (`ci/offline.yaml`), or else to the repository.
fn label(chart: &str, values: &Option<PathBuf>) -> String {
    let Some(path) = values else {
        return "default".into();
    };
    let relative = path
        .strip_prefix(chart_dir(chart))
        .or_else(|_| path.strip_prefix(suites::repo_root()));
    relative.unwrap_or(path).display().to_string()
}

/// Renders `chart` with `values` and the probe values, and runs every rule.
async fn check_policies(
    charts: &Charts,
    chart: &str,
    values: &Option<PathBuf>,
) -> anyhow::Result<()> {
    let probe = ProbeValues::default();
    let mut options = RenderOptions::default();
    options.values_files.extend(values.iter().cloned());
    options.set = probe.set_args();
    let rendered = charts.render(chart, options).await?;
    let cx = policy::Context {
        chart: &rendered.chart,
        release: &rendered.options.release,
        probe: Some(&probe),
    };
    let report = Report {
        chart: chart.into(),
        values: label(chart, values),
        violations: policy::check_all(&rendered, &cx),
    };
    if !report.violations.is_empty() {
        anyhow::bail!("{report}");
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let charts = Charts::shared();
    let mut cases = Vec::new();
    for chart in CHARTS {
        for values in value_sets(chart) {
            let name = format!("{chart}::{}", label(chart, &values));
            let (c, v) = (charts.clone(), values.clone());
            cases.push(Case::no_deploy(format!("policy::{name}"), move |_| {
                let (c, v) = (c.clone(), v.clone());
                async move { check_policies(&c, chart, &v).await }
            }));
            let c = charts.clone();
            cases.push(Case::no_deploy(format!("lint::{name}"), move |_| {
                let (c, v) = (c.clone(), values.clone());
                async move {
                    let renderer = c.renderer().await?;
                    renderer
                        .helm()
                        .lint(&chart_dir(chart), &v.into_iter().collect::<Vec<_>>())
                        .await?;
                    Ok(())
                }
            }));
        }
    }
    Suite::new("policy")
        .cases(cases)
        .case(self_test_latest_image(charts.clone()))
        .case(self_test_no_resources(charts))
        .run()
}

/// The pin rule fails the real echo-server chart when a values file asks for `latest`.
fn self_test_latest_image(charts: Arc<Charts>) -> Case {
    Case::no_deploy("policy_self_test::latest_image_is_caught", move |_| {
        let charts = charts.clone();
        async move {
            let values = Some(suites::fixture("values/echo-server-latest.yaml"));
            let err = check_policies(&charts, "echo-server", &values).await.err();
            let text = err.map(|e| format!("{e:#}")).unwrap_or_default();
            let expected = "chart echo-server, values fixtures/values/echo-server-latest.yaml: Deployment/test-echo-server, container echo-server: rule image-pinned: image \"x:latest\" is not pinned";
            suites::check!(
                text.contains(expected),
                "expected a violation containing {expected:?}, got {text:?}"
            );
            Ok(())
        }
    })
}

/// The resources rule fails a copy of echo-server whose template lost `resources:`.
fn self_test_no_resources(charts: Arc<Charts>) -> Case {
    Case::no_deploy(
        "policy_self_test::missing_resources_are_caught",
        move |ctx| {
            let charts = charts.clone();
            async move {
                let copy = ctx.artifacts_dir().join("echo-server");
                copy_chart(&chart_dir("echo-server"), &copy)?;
                let template = copy.join("templates/deployment.yaml");
                let text = std::fs::read_to_string(&template)?;
                let stripped: String = text
                    .split_inclusive('\n')
                    .filter(|l| {
                        !l.trim_start().starts_with("resources:")
                            && !l.contains("toYaml .Values.resources")
                    })
                    .collect();
                suites::check!(
                    stripped != text,
                    "the template has no resources block to remove"
                );
                std::fs::write(&template, stripped)?;

                let probe = ProbeValues::default();
                let chart = HelmChart::open(&copy)?;
                let renderer = charts.renderer().await?;
                let rendered = renderer
                    .render(
                        &chart,
                        &RenderOptions {
                            set: probe.set_args(),
                            ..Default::default()
                        },
                    )
                    .await?;
                let cx = policy::Context {
                    chart: &rendered.chart,
                    release: "test",
                    probe: Some(&probe),
                };
                let report = Report {
                    chart: "echo-server".into(),
                    values: "default".into(),
                    violations: policy::check_all(&rendered, &cx),
                };
                let expected = "chart echo-server, values default: Deployment/test-echo-server, container echo-server: rule resources: missing resources requests.cpu, requests.memory, limits.cpu, limits.memory";
                suites::check!(
                    report.to_string().contains(expected),
                    "expected {expected:?} in {report}"
                );
                suites::check_eq!(
                    report.violations.len(),
                    1,
                    "only the resources rule should fail: {report}"
                );
                Ok(())
            }
        },
    )
}

fn copy_chart(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "server" {
                copy_chart(&entry.path(), &target)?;
            }
        } else {
            std::fs::create_dir_all(to)?;
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
