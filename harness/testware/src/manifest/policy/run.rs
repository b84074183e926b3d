//! Rendering a chart for the rules and the suites' policy cases: the I/O side
//! of the policy (helm, the runner); the rules themselves are pure.

use super::*;

/// Renders chart `name` of `charts` with `values` and the probe values, and runs
/// every rule.
///
/// # Errors
/// The chart does not render (the report needs a render).
pub async fn check_chart(
    charts: &ChartSet,
    name: &str,
    values: &ValueSet,
) -> Result<Report, ChartError> {
    check_chart_with(charts, name, values, &CheckOptions::default()).await
}

/// [`check_chart`] with a target release, a choice of rules and test hooks.
///
/// # Errors
/// The chart does not render (the report needs a render).
pub async fn check_chart_with(
    charts: &ChartSet,
    name: &str,
    values: &ValueSet,
    check: &CheckOptions,
) -> Result<Report, ChartError> {
    let probe = ProbeValues::at(check.value_keys.clone());
    let mut options = values.options();
    options.set = probe.set_args();
    options.kube_version = check.kube_version;
    options.dependency_build = check.dependency_build;
    options.api_versions.clone_from(&check.api_versions);
    let rendered = charts.render(name, options).await?;
    let kube_version = check.kube_version.unwrap_or(KubeVersion::DEFAULT);
    let schemas = Schemas::shared(kube_version);
    let cx = Context {
        chart: &rendered.chart,
        release: &rendered.options.release,
        probe: Some(&probe),
        include_test_hooks: check.include_test_hooks,
        kube_version,
        schemas: schemas.as_deref().ok(),
    };
    let mut violations = check_all(&rendered, &cx);
    if let Err(e) = &schemas {
        // Schemas are part of the check: missing ones fail it; a release the
        // package has none for is reported, as the rule could not run.
        let severity = match e {
            SchemaError::NoRelease { .. } => Severity::Warning,
            _ => Severity::Error,
        };
        violations.push(Violation {
            rule: Rule::Schema,
            severity,
            object: format!("chart {name}"),
            container: None,
            message: format!("objects not validated: {e}"),
            template: None,
        });
    }
    if !check.rules.is_empty() {
        violations.retain(|v| check.rules.contains(&v.rule));
    }
    if rendered.objects().is_empty() {
        violations.push(Violation {
            rule: Rule::Labels,
            severity: Severity::Warning,
            object: format!("chart {name}"),
            container: None,
            message: "renders no object with these values: nothing was checked".into(),
            template: None,
        });
    }
    Ok(Report {
        chart: name.into(),
        values: values.label.clone(),
        violations,
    })
}

/// For every chart of `charts` × every value set of it ([`crate::HelmChart::value_sets`]):
/// a `policy::<chart>::<values>` case that fails on any violation, and a
/// `lint::<chart>::<values>` case running `helm lint --strict`. A chart set whose
/// root cannot be read gives one failing case that says so.
pub fn cases(charts: &Arc<ChartSet>) -> Vec<Case> {
    let names = match charts.names() {
        Ok(names) => names,
        Err(e) => {
            let message = crate::error_chain(&e);
            return vec![Case::no_deploy("policy::charts", move |_| async move {
                anyhow::bail!("{message}")
            })];
        }
    };
    let mut cases = Vec::new();
    for chart in names {
        let sets = charts
            .open(&chart)
            .map(|c| c.value_sets())
            .unwrap_or_default();
        for values in sets {
            let name = format!("{chart}::{}", values.label);
            let (set, c, v) = (charts.clone(), chart.clone(), values.clone());
            cases.push(Case::no_deploy(
                format!("policy::{name}"),
                move |_| async move {
                    let report = check_chart(&set, &c, &v).await?;
                    anyhow::ensure!(report.passes(), "{report}");
                    if !report.violations.is_empty() {
                        eprintln!("{report}");
                    }
                    Ok(())
                },
            ));
            let (set, c) = (charts.clone(), chart.clone());
            cases.push(Case::no_deploy(
                format!("lint::{name}"),
                move |_| async move {
                    set.lint(&c, &values.options()).await?;
                    Ok(())
                },
            ));
        }
    }
    cases
}
