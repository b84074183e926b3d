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
    options.kube_version = check.kube_version;
    options.dependency_build = check.dependency_build;
    options.api_versions.clone_from(&check.api_versions);
    options.skip_tests = check.skip_tests;
    options.debug = check.debug;
    let mut probed = options.clone();
    probed.values.set = probe.set_args();
    // A strict values.schema.json refuses the probe values at keys it does not
    // know: then the chart is checked without them, and says which rules that left out.
    let (rendered, refused) = match charts.render(name, probed).await {
        Ok(rendered) => (rendered, None),
        Err(e) if refuses_values(&e) => (charts.render(name, options).await?, Some(e)),
        Err(e) => return Err(e),
    };
    let kube_version = check.kube_version.unwrap_or(KubeVersion::DEFAULT);
    let schemas = Schemas::shared(&crate::manifest::schema::root(charts.tools()), kube_version);
    let cx = Context {
        chart: &rendered.chart,
        release: &rendered.options.release,
        probe: refused.is_none().then_some(&probe),
        include_test_hooks: check.include_test_hooks,
        kube_version,
        schemas: schemas.as_deref().ok(),
        external_refs: &check.external_refs,
        limits: check.limits,
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
    if let Some(e) = &refused {
        let keys = &check.value_keys;
        violations.push(Violation {
            rule: Rule::Scheduling,
            severity: Severity::Warning,
            object: format!("chart {name}"),
            container: None,
            message: format!(
                "rules scheduling and storage-class not applied: the chart's values.schema.json refuses the probe values at {}, {} and {} (name the chart's own keys with --node-selector-key, --tolerations-key and --storage-class-key): {}",
                keys.node_selector.join(", "),
                keys.tolerations.join(", "),
                keys.storage_class.join(", "),
                schema_message(e)
            ),
            template: Some(format!("{name}/values.schema.json")),
        });
        violations.push(Violation {
            rule: Rule::StorageClass,
            ..violations[violations.len() - 1].clone()
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

/// helm refused the values against the chart's values.schema.json.
fn refuses_values(e: &ChartError) -> bool {
    crate::error_chain(e).contains("don't meet the specifications of the schema")
}

/// The schema's complaint: helm's lines after its "schema(s)" headline.
fn schema_message(e: &ChartError) -> String {
    let chain = crate::error_chain(e);
    let lines: Vec<&str> = chain
        .lines()
        .skip_while(|l| !l.contains("don't meet the specifications"))
        .skip(1)
        .map(str::trim)
        .filter(|l| l.starts_with('-'))
        .collect();
    if lines.is_empty() {
        "helm refused them".into()
    } else {
        lines.join(" ")
    }
}

/// What one check of the no_deploy loop does with its chart and value set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckKind {
    /// Render and run the rules ([`check_chart_with`]).
    Policy,
    /// `helm lint --strict`.
    Lint,
}

/// One check of the chart × value set × {rules, lint} loop that the suites'
/// policy cases ([`cases`]) and `testware check` both run.
#[derive(Debug, Clone)]
pub struct Check {
    /// The charts.
    pub charts: Arc<ChartSet>,
    /// The chart's name in `charts`.
    pub chart: String,
    /// The value set.
    pub values: ValueSet,
    /// Rules or lint.
    pub kind: CheckKind,
}

impl Check {
    /// `policy::<chart>::<values>` or `lint::<chart>::<values>`.
    pub fn name(&self) -> String {
        let kind = match self.kind {
            CheckKind::Policy => "policy",
            CheckKind::Lint => "lint",
        };
        format!("{kind}::{}::{}", self.chart, self.values.label)
    }

    /// Runs the check; a pass may carry a report of warnings.
    ///
    /// # Errors
    /// The check failed: the report of its errors, or why it could not run.
    pub async fn run(&self, options: &CheckOptions) -> anyhow::Result<Option<Report>> {
        match self.kind {
            CheckKind::Policy => {
                let report =
                    check_chart_with(&self.charts, &self.chart, &self.values, options).await?;
                anyhow::ensure!(report.passes(), "{report}");
                Ok((!report.violations.is_empty()).then_some(report))
            }
            CheckKind::Lint => {
                self.charts.lint(&self.chart, &self.values.values()).await?;
                Ok(None)
            }
        }
    }
}

/// The checks of `chart`: rules and lint for each of `values`, or of the
/// chart's own value sets ([`crate::HelmChart::value_sets`]) when `None`.
///
/// # Errors
/// The chart cannot be opened.
pub fn plan(
    charts: &Arc<ChartSet>,
    chart: &str,
    values: Option<Vec<ValueSet>>,
) -> Result<Vec<Check>, ChartError> {
    let sets = match values {
        Some(sets) => sets,
        None => charts.open(chart)?.value_sets(),
    };
    Ok(sets
        .into_iter()
        .flat_map(|values| {
            [CheckKind::Policy, CheckKind::Lint].map(|kind| Check {
                charts: charts.clone(),
                chart: chart.to_owned(),
                values: values.clone(),
                kind,
            })
        })
        .collect())
}

/// For every chart of `charts` × every value set of it ([`crate::HelmChart::value_sets`]):
/// a `policy::<chart>::<values>` case that fails on any violation, and a
/// `lint::<chart>::<values>` case running `helm lint --strict` ([`plan`]). A
/// chart set whose root cannot be read gives one failing case that says so.
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
    names
        .iter()
        .flat_map(|chart| plan(charts, chart, None).unwrap_or_default())
        .map(|check| {
            Case::no_deploy(check.name(), move |_| async move {
                if let Some(warnings) = check.run(&CheckOptions::default()).await? {
                    eprintln!("{warnings}");
                }
                Ok(())
            })
        })
        .collect()
}
