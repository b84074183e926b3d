//! Reusable policy checks for rendered charts. Each rule is a plain function over
//! [`Manifests`]; [`check_all`] runs every rule. A violation names the chart, the
//! values set, the object, the container and the rule.
//!
//! Charts opt out of a rule per workload with the annotation
//! `policy.testware.io/exempt-<rule>: "<reason>"` (on the workload or its pod
//! template; the reason must not be empty), and declare references to objects
//! that live outside the release with
//! `policy.testware.io/external-refs: "Secret/name, ConfigMap/name"`.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaim, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use std::sync::Arc;

use super::{ManifestObject, Manifests, PodTemplate};
use crate::chart::{ChartError, ChartMeta, ChartSet, ValueSet};
use crate::runner::Case;

use super::api_versions::{self, Deprecation, KubeVersion, Standing};
use super::schema::{SchemaError, Schemas};

/// Prefix of the exemption annotations.
pub const EXEMPT_PREFIX: &str = "policy.testware.io/exempt-";
/// Annotation listing references that are satisfied outside the release.
pub const EXTERNAL_REFS: &str = "policy.testware.io/external-refs";

/// The rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// `app.kubernetes.io/{name,instance,version,managed-by}` and `helm.sh/chart`.
    Labels,
    /// Images have a tag other than `latest`, or a digest.
    ImagePinned,
    /// CPU and memory requests and limits on every container.
    Resources,
    /// Readiness and liveness probes on long-running containers.
    Probes,
    /// `runAsNonRoot`, no privilege escalation, not privileged.
    SecurityContext,
    /// Service selectors match a workload's pods and their target ports exist.
    ServiceSelector,
    /// ConfigMap, Secret and PVC references resolve inside the release.
    References,
    /// `global.nodeSelector`/`global.tolerations` reach every pod.
    Scheduling,
    /// `global.storageClass` reaches every PVC.
    StorageClass,
    /// API versions the target Kubernetes release serves: removed ones are
    /// errors, deprecated ones warnings, each with its replacement.
    ApiVersion,
    /// Every object valid against the target release's OpenAPI schema: no
    /// unknown field, no wrong type (with the field's path).
    Schema,
}

impl Rule {
    /// Every rule, in report order.
    pub const ALL: [Rule; 11] = [
        Rule::Labels,
        Rule::ImagePinned,
        Rule::Resources,
        Rule::Probes,
        Rule::SecurityContext,
        Rule::ServiceSelector,
        Rule::References,
        Rule::Scheduling,
        Rule::StorageClass,
        Rule::ApiVersion,
        Rule::Schema,
    ];

    /// The rule with id `id`.
    ///
    /// # Errors
    /// No such rule (the message lists the ids).
    pub fn from_id(id: &str) -> Result<Rule, String> {
        Rule::ALL.into_iter().find(|r| r.id() == id).ok_or_else(|| {
            let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
            format!("no rule {id:?} (rules: {})", ids.join(", "))
        })
    }

    /// The rule's id, as used in messages and exemption annotations.
    pub fn id(self) -> &'static str {
        match self {
            Rule::Labels => "labels",
            Rule::ImagePinned => "image-pinned",
            Rule::Resources => "resources",
            Rule::Probes => "probes",
            Rule::SecurityContext => "security-context",
            Rule::ServiceSelector => "service-selector",
            Rule::References => "references",
            Rule::Scheduling => "scheduling",
            Rule::StorageClass => "storage-class",
            Rule::ApiVersion => "api-version",
            Rule::Schema => "schema",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Fails the check.
    Error,
    /// Reported, does not fail the check (numeric target ports no container
    /// declares — containers may listen without declaring —, empty renders).
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// Error or warning.
    pub severity: Severity,
    /// `Kind/name` of the object.
    pub object: String,
    /// The container, for container rules.
    pub container: Option<String>,
    /// What is wrong (several findings of one rule on one object and container
    /// are one violation, joined with `; `).
    pub message: String,
    /// The template that produced the object (`chart/templates/x.yaml`), if known.
    pub template: Option<String>,
}

/// Violations of one render, with the chart and values set they belong to.
#[derive(Debug, Clone)]
pub struct Report {
    /// Chart name.
    pub chart: String,
    /// The values set (file name, or `default`).
    pub values: String,
    /// The findings.
    pub violations: Vec<Violation>,
}

impl Report {
    /// The findings that fail the check.
    pub fn errors(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|v| v.severity == Severity::Error)
    }

    /// `true` when nothing fails the check (warnings may remain).
    pub fn passes(&self) -> bool {
        self.errors().next().is_none()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors = self.errors().count();
        writeln!(
            f,
            "{errors} policy error(s), {} warning(s) in chart {} with values {}:",
            self.violations.len() - errors,
            self.chart,
            self.values
        )?;
        for v in &self.violations {
            write!(
                f,
                "  - {}: chart {}, values {}: {}",
                v.severity, self.chart, self.values, v.object
            )?;
            if let Some(c) = &v.container {
                write!(f, ", container {c}")?;
            }
            write!(f, ": rule {}: {}", v.rule, v.message)?;
            match &v.template {
                Some(t) => writeln!(f, " [{t}]")?,
                None => writeln!(f)?,
            }
        }
        Ok(())
    }
}

/// Where a chart takes its node selector, tolerations and storage class: the
/// value keys the scheduling and storage-class rules set. The default is the
/// `global.*` convention of this repository's charts; charts with keys of their
/// own name them (`testware check --node-selector-key …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueKeys {
    /// A map of node labels (`global.nodeSelector`).
    pub node_selector: String,
    /// A list of tolerations (`global.tolerations`).
    pub tolerations: String,
    /// A storage class name (`global.storageClass`).
    pub storage_class: String,
}

impl Default for ValueKeys {
    fn default() -> Self {
        Self {
            node_selector: "global.nodeSelector".into(),
            tolerations: "global.tolerations".into(),
            storage_class: "global.storageClass".into(),
        }
    }
}

/// The values that probe whether scheduling and storage are configurable. The
/// policy suite renders every chart with them (see [`ProbeValues::set_args`]).
#[derive(Debug, Clone)]
pub struct ProbeValues {
    /// Node label key and value for the system node group.
    pub node_selector: (String, String),
    /// Toleration key (operator `Equal`, value = node selector value, effect `NoSchedule`).
    pub toleration_key: String,
    /// Storage class name.
    pub storage_class: String,
    /// The value keys they are set at.
    pub keys: ValueKeys,
}

impl Default for ProbeValues {
    fn default() -> Self {
        Self::at(ValueKeys::default())
    }
}

impl ProbeValues {
    /// The probe values, set at `keys`.
    pub fn at(keys: ValueKeys) -> Self {
        Self {
            node_selector: ("testware.io/node-group".into(), "system".into()),
            toleration_key: "testware.io/node-group".into(),
            storage_class: "testware-policy-probe".into(),
            keys,
        }
    }

    /// The `--set` pairs that apply these values at their keys.
    pub fn set_args(&self) -> Vec<(String, String)> {
        let escaped_key = self.node_selector.0.replace('.', r"\.");
        let ValueKeys {
            node_selector,
            tolerations,
            storage_class,
        } = &self.keys;
        vec![
            (
                format!("{node_selector}.{escaped_key}"),
                self.node_selector.1.clone(),
            ),
            (format!("{tolerations}[0].key"), self.toleration_key.clone()),
            (format!("{tolerations}[0].operator"), "Equal".into()),
            (
                format!("{tolerations}[0].value"),
                self.node_selector.1.clone(),
            ),
            (format!("{tolerations}[0].effect"), "NoSchedule".into()),
            (storage_class.clone(), self.storage_class.clone()),
        ]
    }
}

/// What the checks need to know beyond the objects.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The chart's metadata (for `helm.sh/chart`).
    pub chart: &'a ChartMeta,
    /// The release name the chart was rendered with.
    pub release: &'a str,
    /// The probe values, when the render applied them; otherwise the scheduling
    /// and storage-class rules are skipped.
    pub probe: Option<&'a ProbeValues>,
    /// Check `helm test` hook pods too (they run only under `helm test`, so by
    /// default they are left out).
    pub include_test_hooks: bool,
    /// The release the API-version rule checks against.
    pub kube_version: KubeVersion,
    /// That release's schemas, for the schema rule (skipped without them:
    /// [`check_chart_with`] says why in the report).
    pub schemas: Option<&'a Schemas>,
}

/// What a chart check looks at beyond the chart itself.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The Kubernetes release to render for and check API versions against
    /// (default [`KubeVersion::DEFAULT`]).
    pub kube_version: Option<KubeVersion>,
    /// Only these rules; every rule when empty.
    pub rules: Vec<Rule>,
    /// Check `helm test` hook pods too.
    pub include_test_hooks: bool,
    /// Where the chart takes its node selector, tolerations and storage class.
    pub value_keys: ValueKeys,
    /// Build the chart's dependencies before rendering (`helm dependency build`).
    pub dependency_build: bool,
    /// API versions the templates see as available (`helm template --api-versions`).
    pub api_versions: Vec<String>,
}

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

/// Runs every rule.
pub fn check_all(m: &Manifests, cx: &Context<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    out.extend(labels(m, cx));
    out.extend(image_pinned(m));
    out.extend(resources(m));
    out.extend(probes(m));
    out.extend(security_context(m));
    out.extend(service_selector(m));
    out.extend(references(m));
    out.extend(api_version(m, cx.kube_version));
    if let Some(schemas) = cx.schemas {
        out.extend(schema(m, schemas));
    }
    if let Some(probe) = cx.probe {
        out.extend(scheduling(m, probe));
        out.extend(storage_class(m, probe));
    }
    // Exemptions hold for every rule and every kind; test hooks are left out
    // unless asked for.
    out.retain(|v| {
        m.objects()
            .iter()
            .find(|o| o.id() == v.object)
            .is_none_or(|o| !exempted(o, v.rule) && (cx.include_test_hooks || !is_test_hook(o)))
    });
    merge_per_object(out)
}

/// One violation per rule, object and container, its findings joined: an
/// object missing four labels is one line, not four.
fn merge_per_object(violations: Vec<Violation>) -> Vec<Violation> {
    let mut merged: Vec<Violation> = Vec::new();
    for v in violations {
        match merged.iter_mut().find(|m| {
            m.rule == v.rule
                && m.severity == v.severity
                && m.object == v.object
                && m.container == v.container
        }) {
            Some(m) => {
                m.message.push_str("; ");
                m.message.push_str(&v.message);
            }
            None => merged.push(v),
        }
    }
    merged
}

/// `policy.testware.io/exempt-<rule>: "<reason>"` on the object or its pod
/// template, with a reason that is not empty.
fn exempted(object: &ManifestObject, rule: Rule) -> bool {
    let key = format!("{EXEMPT_PREFIX}{}", rule.id());
    let own = object
        .metadata()
        .annotations
        .as_ref()
        .and_then(|a| a.get(&key))
        .map(String::as_str);
    let pod = object.pod_template().and_then(|p| p.annotation(&key));
    own.or(pod).is_some_and(|reason| !reason.trim().is_empty())
}

/// A `helm test` hook (`helm.sh/hook: test` or `test-success`).
fn is_test_hook(object: &ManifestObject) -> bool {
    object
        .metadata()
        .annotations
        .as_ref()
        .and_then(|a| a.get("helm.sh/hook"))
        .is_some_and(|h| h.split(',').any(|p| p.trim().starts_with("test")))
}

fn violation(
    rule: Rule,
    object: &ManifestObject,
    container: Option<&str>,
    message: impl Into<String>,
) -> Violation {
    Violation {
        rule,
        severity: Severity::Error,
        object: object.id(),
        container: container.map(str::to_owned),
        message: message.into(),
        template: Some(object.source.clone()).filter(|s| !s.is_empty()),
    }
}

/// Standard labels on every object, and name/instance on every pod template.
pub fn labels(m: &Manifests, cx: &Context<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    let expected_chart = cx.chart.chart_label();
    for object in m.objects() {
        let labels = object.labels();
        let mut check = |key: &str,
                         want: Option<&str>,
                         labels: &BTreeMap<String, String>,
                         what: &str| match (labels.get(key), want) {
            (None, _) => out.push(violation(
                Rule::Labels,
                object,
                None,
                format!("{what} lacks label {key}"),
            )),
            (Some(v), _) if v.is_empty() => out.push(violation(
                Rule::Labels,
                object,
                None,
                format!("{what} has empty label {key}"),
            )),
            (Some(v), Some(w)) if v != w => out.push(violation(
                Rule::Labels,
                object,
                None,
                format!("{what} label {key} is {v:?}, expected {w:?}"),
            )),
            _ => {}
        };
        check("app.kubernetes.io/name", None, &labels, "object");
        check(
            "app.kubernetes.io/instance",
            Some(cx.release),
            &labels,
            "object",
        );
        check("app.kubernetes.io/version", None, &labels, "object");
        check(
            "app.kubernetes.io/managed-by",
            Some("Helm"),
            &labels,
            "object",
        );
        check("helm.sh/chart", Some(&expected_chart), &labels, "object");
        if let Some(pod) = object.pod_template() {
            let pod_labels = pod.labels();
            check("app.kubernetes.io/name", None, &pod_labels, "pod template");
            check(
                "app.kubernetes.io/instance",
                Some(cx.release),
                &pod_labels,
                "pod template",
            );
        }
    }
    out
}

/// `true` when `image` names a tag other than `latest`, or a digest.
pub fn is_pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => !tag.is_empty() && !MOVING_TAGS.contains(&tag),
        None => false,
    }
}

/// Tags that name a branch or a channel, not a release: they move, so an image
/// with one is not pinned unless a digest is given.
pub const MOVING_TAGS: [&str; 6] = ["latest", "master", "main", "develop", "stable", "edge"];

/// Every container image is pinned.
pub fn image_pinned(m: &Manifests) -> Vec<Violation> {
    for_each_container(m, |pod, c, _| {
        match c.image.as_deref() {
        None | Some("") => vec![violation(
            Rule::ImagePinned,
            pod.owner,
            Some(&c.name),
            "no image",
        )],
        Some(image) if !is_pinned(image) => vec![violation(
            Rule::ImagePinned,
            pod.owner,
            Some(&c.name),
            format!(
                "image {image:?} is not pinned (use a version tag or a digest, not a moving tag such as latest or master, nor none)"
            ),
        )],
        _ => vec![],
    }
    })
}

/// CPU and memory requests and limits on every container and init container.
pub fn resources(m: &Manifests) -> Vec<Violation> {
    for_each_container(m, |pod, c, _| {
        let mut missing = Vec::new();
        let res = c.resources.as_ref();
        for (section, map) in [
            ("requests", res.and_then(|r| r.requests.as_ref())),
            ("limits", res.and_then(|r| r.limits.as_ref())),
        ] {
            for resource in ["cpu", "memory"] {
                if !map.is_some_and(|m| m.contains_key(resource)) {
                    missing.push(format!("{section}.{resource}"));
                }
            }
        }
        if missing.is_empty() {
            vec![]
        } else {
            vec![violation(
                Rule::Resources,
                pod.owner,
                Some(&c.name),
                format!("missing resources {}", missing.join(", ")),
            )]
        }
    })
}

/// Readiness and liveness probes on the regular containers of long-running workloads.
pub fn probes(m: &Manifests) -> Vec<Violation> {
    for_each_container(m, |pod, c, init| {
        if init || !pod.owner.is_long_running() {
            return vec![];
        }
        let mut missing = Vec::new();
        if c.readiness_probe.is_none() {
            missing.push("readinessProbe");
        }
        if c.liveness_probe.is_none() {
            missing.push("livenessProbe");
        }
        if missing.is_empty() {
            vec![]
        } else {
            vec![violation(
                Rule::Probes,
                pod.owner,
                Some(&c.name),
                format!("long-running container lacks {}", missing.join(" and ")),
            )]
        }
    })
}

/// Non-root, no privilege escalation, not privileged.
pub fn security_context(m: &Manifests) -> Vec<Violation> {
    for_each_container(m, |pod, c, _| {
        let pod_non_root = pod
            .spec
            .security_context
            .as_ref()
            .and_then(|s| s.run_as_non_root);
        let sc = c.security_context.as_ref();
        let mut problems = Vec::new();
        if sc.and_then(|s| s.run_as_non_root).or(pod_non_root) != Some(true) {
            problems.push("runAsNonRoot is not true");
        }
        if sc.and_then(|s| s.allow_privilege_escalation) != Some(false) {
            problems.push("allowPrivilegeEscalation is not false");
        }
        if sc.and_then(|s| s.privileged) == Some(true) {
            problems.push("container is privileged");
        }
        if problems.is_empty() {
            vec![]
        } else {
            vec![violation(
                Rule::SecurityContext,
                pod.owner,
                Some(&c.name),
                problems.join("; "),
            )]
        }
    })
}

/// Every Service with a selector selects the pods of some workload in the
/// release, and each target port exists on those pods.
pub fn service_selector(m: &Manifests) -> Vec<Violation> {
    let mut out = Vec::new();
    let pods: Vec<PodTemplate<'_>> = m
        .pod_templates()
        .into_iter()
        .filter(|p| p.owner.is_long_running() || p.owner.kind == "Pod")
        .collect();
    for object in m.objects() {
        let Some(service) = object.as_kind::<Service>() else {
            continue;
        };
        let Some(spec) = &service.spec else { continue };
        let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let matched: Vec<&PodTemplate<'_>> = pods
            .iter()
            .filter(|p| {
                let labels = p.labels();
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect();
        if matched.is_empty() {
            out.push(violation(
                Rule::ServiceSelector,
                object,
                None,
                format!(
                    "selector {} matches no pod template of a long-running workload in the release",
                    show_labels(selector)
                ),
            ));
            continue;
        }
        for port in spec.ports.iter().flatten() {
            let target = port
                .target_port
                .clone()
                .unwrap_or(IntOrString::Int(port.port));
            let found = matched
                .iter()
                .flat_map(|p| p.ports())
                .any(|cp| match &target {
                    IntOrString::Int(n) => cp.container_port == *n,
                    IntOrString::String(name) => cp.name.as_deref() == Some(name.as_str()),
                });
            if !found {
                let owners: Vec<String> = matched.iter().map(|p| p.owner.id()).collect();
                let mut finding = violation(
                    Rule::ServiceSelector,
                    object,
                    None,
                    format!(
                        "targetPort {} of port {} is not a container port of {}",
                        show(&target),
                        port.port,
                        owners.join(", ")
                    ),
                );
                // A container may listen on a port it does not declare; a name
                // must be declared to mean anything.
                if matches!(target, IntOrString::Int(_)) {
                    finding.severity = Severity::Warning;
                }
                out.push(finding);
            }
        }
    }
    out
}

fn show_labels(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn show(port: &IntOrString) -> String {
    match port {
        IntOrString::Int(n) => n.to_string(),
        IntOrString::String(s) => format!("{s:?}"),
    }
}

/// ConfigMap, Secret and PVC references of every pod resolve inside the release
/// (keys included) or are declared external.
pub fn references(m: &Manifests) -> Vec<Violation> {
    let mut out = Vec::new();
    for pod in m.pod_templates() {
        let external: Vec<String> = pod
            .annotation(EXTERNAL_REFS)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut check = |kind: &str,
                         name: &str,
                         key: Option<&str>,
                         optional: bool,
                         container: Option<&str>,
                         via: &str| {
            if optional || external.iter().any(|e| *e == format!("{kind}/{name}")) {
                return;
            }
            let Some(target) = m.find(kind, name) else {
                out.push(violation(Rule::References, pod.owner, container, format!("{via} refers to {kind}/{name}, which is not in the release and not declared in {EXTERNAL_REFS}")));
                return;
            };
            if let Some(key) = key {
                let data = match kind {
                    "ConfigMap" => m.config_map_data(name).ok(),
                    _ => m.secret_data(name).ok(),
                };
                if data.is_some_and(|d| !d.contains_key(key)) {
                    out.push(violation(
                        Rule::References,
                        pod.owner,
                        container,
                        format!(
                            "{via} refers to key {key:?} of {}, which has no such key",
                            target.id()
                        ),
                    ));
                }
            }
        };
        for v in pod.volumes() {
            if let Some(c) = &v.config_map {
                check(
                    "ConfigMap",
                    &c.name,
                    None,
                    c.optional == Some(true),
                    None,
                    &format!("volume {}", v.name),
                );
            }
            if let Some(s) = &v.secret {
                check(
                    "Secret",
                    s.secret_name.as_deref().unwrap_or_default(),
                    None,
                    s.optional == Some(true),
                    None,
                    &format!("volume {}", v.name),
                );
            }
            if let Some(p) = &v.persistent_volume_claim {
                check(
                    "PersistentVolumeClaim",
                    &p.claim_name,
                    None,
                    false,
                    None,
                    &format!("volume {}", v.name),
                );
            }
            for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
                if let Some(c) = &source.config_map {
                    check(
                        "ConfigMap",
                        &c.name,
                        None,
                        c.optional == Some(true),
                        None,
                        &format!("volume {}", v.name),
                    );
                }
                if let Some(s) = &source.secret {
                    check(
                        "Secret",
                        &s.name,
                        None,
                        s.optional == Some(true),
                        None,
                        &format!("volume {}", v.name),
                    );
                }
            }
        }
        for (c, _) in pod.all_containers() {
            for from in c.env_from.iter().flatten() {
                if let Some(r) = &from.config_map_ref {
                    check(
                        "ConfigMap",
                        &r.name,
                        None,
                        r.optional == Some(true),
                        Some(&c.name),
                        "envFrom",
                    );
                }
                if let Some(r) = &from.secret_ref {
                    check(
                        "Secret",
                        &r.name,
                        None,
                        r.optional == Some(true),
                        Some(&c.name),
                        "envFrom",
                    );
                }
            }
            for var in c.env.iter().flatten() {
                let Some(from) = &var.value_from else {
                    continue;
                };
                let via = format!("env {}", var.name);
                if let Some(r) = &from.config_map_key_ref {
                    check(
                        "ConfigMap",
                        &r.name,
                        Some(&r.key),
                        r.optional == Some(true),
                        Some(&c.name),
                        &via,
                    );
                }
                if let Some(r) = &from.secret_key_ref {
                    check(
                        "Secret",
                        &r.name,
                        Some(&r.key),
                        r.optional == Some(true),
                        Some(&c.name),
                        &via,
                    );
                }
            }
        }
    }
    out
}

/// Every pod carries the probe node selector and toleration.
pub fn scheduling(m: &Manifests, probe: &ProbeValues) -> Vec<Violation> {
    let (key, value) = &probe.node_selector;
    let keys = &probe.keys;
    let pods: Vec<PodTemplate<'_>> = m
        .pod_templates()
        .into_iter()
        .filter(|p| !is_test_hook(p.owner))
        .collect();
    let mut out = held_to(
        Rule::Scheduling,
        &pods,
        |pod| pod.spec.node_selector.as_ref().and_then(|s| s.get(key)) == Some(value),
        (&keys.node_selector, "--node-selector-key", "pod"),
        |pod| {
            violation(
                Rule::Scheduling,
                pod.owner,
                None,
                format!(
                    "{} ({key}: {value}) does not reach the pod's nodeSelector",
                    keys.node_selector
                ),
            )
        },
    );
    out.extend(held_to(
        Rule::Scheduling,
        &pods,
        |pod| {
            pod.spec
                .tolerations
                .iter()
                .flatten()
                .any(|t| t.key.as_deref() == Some(probe.toleration_key.as_str()))
        },
        (&keys.tolerations, "--tolerations-key", "pod"),
        |pod| {
            violation(
                Rule::Scheduling,
                pod.owner,
                None,
                format!(
                    "{} (key {}) do not reach the pod's tolerations",
                    keys.tolerations, probe.toleration_key
                ),
            )
        },
    ));
    out
}

/// Holds `items` to a probe value set at a value key (`key`, `flag`, `what`):
/// when none of them takes it, the chart does not use that key — one warning
/// naming it and how to name the chart's own, instead of guessing; otherwise each
/// item it does not reach is an error (`blame`).
fn held_to<T>(
    rule: Rule,
    items: &[T],
    reaches: impl Fn(&T) -> bool,
    (key, flag, what): (&str, &str, &str),
    blame: impl Fn(&T) -> Violation,
) -> Vec<Violation> {
    if items.is_empty() {
        return Vec::new();
    }
    if !items.iter().any(&reaches) {
        return vec![Violation {
            rule,
            severity: Severity::Warning,
            object: format!("value {key}"),
            container: None,
            message: format!("no {what} takes it, so the rule was not applied (hint: if the chart has a key of its own for this, name it: ValueKeys, or `testware check {flag} KEY`)"),
            template: None,
        }];
    }
    items.iter().filter(|i| !reaches(i)).map(blame).collect()
}

/// Every PVC and volume claim template uses the probe storage class.
pub fn storage_class(m: &Manifests, probe: &ProbeValues) -> Vec<Violation> {
    let wrong = |pvc: &PersistentVolumeClaim| {
        pvc.spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref())
            != Some(probe.storage_class.as_str())
    };
    let mut found = Vec::new();
    for object in m.objects() {
        let claims: Vec<(String, &PersistentVolumeClaim)> =
            if let Some(pvc) = object.as_kind::<PersistentVolumeClaim>() {
                vec![("claim".into(), pvc)]
            } else if let Some(sts) = object.as_kind::<k8s_openapi::api::apps::v1::StatefulSet>() {
                crate::versions::spec(&sts.spec)
                    .into_iter()
                    .flat_map(|s| s.volume_claim_templates.iter().flatten())
                    .map(|t| {
                        (
                            format!(
                                "volumeClaimTemplate {}",
                                t.metadata.name.as_deref().unwrap_or_default()
                            ),
                            t,
                        )
                    })
                    .collect()
            } else {
                vec![]
            };
        found.extend(claims.into_iter().map(|(what, pvc)| (object, what, pvc)));
    }
    held_to(
        Rule::StorageClass,
        &found,
        |(_, _, pvc)| !wrong(pvc),
        (&probe.keys.storage_class, "--storage-class-key", "claim"),
        |(object, what, _)| {
            violation(
                Rule::StorageClass,
                object,
                None,
                format!(
                    "{what} does not use {} ({})",
                    probe.keys.storage_class, probe.storage_class
                ),
            )
        },
    )
}

/// Kinds the harness types in one version that Kubernetes also serves in another.
const ALSO_SERVED: &[(&str, &str)] = &[("autoscaling/v1", "HorizontalPodAutoscaler")];

/// API versions against `target`: a removed one is an error, a deprecated one a
/// warning, each naming its replacement; an object of a kind the harness types, in
/// a version that is neither that one nor in the deprecation table, is an error
/// too — no other rule could read it, so it must not pass unseen.
pub fn api_version(m: &Manifests, target: KubeVersion) -> Vec<Violation> {
    let mut out = Vec::new();
    for o in m.objects() {
        let (api, kind) = (o.api_version.as_str(), o.kind.as_str());
        let instead = |d: &Deprecation| match d.replacement {
            Some(r) => format!("use {r}"),
            None => "it has no replacement".to_owned(),
        };
        match api_versions::standing(api, kind, target) {
            Standing::Removed(d) => out.push(violation(
                Rule::ApiVersion,
                o,
                None,
                format!(
                    "{api} {kind} is not served since Kubernetes 1.{} (target {target}): {}",
                    d.removed_in,
                    instead(d)
                ),
            )),
            Standing::Deprecated(d) => out.push(Violation {
                severity: Severity::Warning,
                ..violation(
                    Rule::ApiVersion,
                    o,
                    None,
                    format!(
                        "{api} {kind} is deprecated (target {target}; removed in 1.{}): {}",
                        d.removed_in,
                        instead(d)
                    ),
                )
            }),
            Standing::Current => {
                let typed = crate::manifest::typed_api_version(kind);
                let unknown = typed.is_some_and(|t| t != api)
                    && api_versions::deprecation(api, kind).is_none()
                    && !ALSO_SERVED.contains(&(api, kind));
                if let (true, Some(typed)) = (unknown, typed) {
                    out.push(violation(
                        Rule::ApiVersion,
                        o,
                        None,
                        format!("{api} is not an API version of {kind} (expected {typed}): no other rule could read this object"),
                    ));
                }
            }
        }
    }
    out
}

/// Each object against the release's schema: every unknown field and wrong type
/// with its path. An object the release has no schema for is a warning — unless
/// the api-version rule already speaks for it (a removed or unknown version of a
/// kind the harness reads).
pub fn schema(m: &Manifests, schemas: &Schemas) -> Vec<Violation> {
    let mut out = Vec::new();
    for o in m.objects() {
        match schemas.validate(&o.raw) {
            Ok(Some(problems)) => out.extend(
                problems
                    .into_iter()
                    .map(|p| violation(Rule::Schema, o, None, p)),
            ),
            Ok(None) => {
                let spoken_for = api_versions::deprecation(&o.api_version, &o.kind).is_some()
                    || crate::manifest::typed_api_version(&o.kind).is_some();
                if !spoken_for {
                    out.push(Violation {
                        severity: Severity::Warning,
                        ..violation(
                            Rule::Schema,
                            o,
                            None,
                            format!(
                                "Kubernetes {} has no schema for {} {}: not validated (a custom resource is validated by its CRD)",
                                schemas.version(),
                                o.api_version,
                                o.kind
                            ),
                        )
                    });
                }
            }
            Err(e) => out.push(violation(Rule::Schema, o, None, e.to_string())),
        }
    }
    out
}

fn for_each_container(
    m: &Manifests,
    mut f: impl FnMut(&PodTemplate<'_>, &Container, bool) -> Vec<Violation>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for pod in m.pod_templates() {
        for (c, init) in pod.all_containers() {
            out.extend(f(&pod, c, init));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn load(name: &str) -> Manifests {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/policy")
            .join(name);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Manifests::parse(&text).unwrap()
    }

    fn chart() -> ChartMeta {
        ChartMeta {
            name: "demo".into(),
            version: "1.2.3".into(),
            app_version: Some("1.2.3".into()),
        }
    }

    fn run(m: &Manifests) -> Vec<Violation> {
        let meta = chart();
        let probe = ProbeValues::default();
        check_all(
            m,
            &Context {
                chart: &meta,
                release: "rel",
                probe: Some(&probe),
                include_test_hooks: false,
                kube_version: KubeVersion::DEFAULT,
                schemas: None,
            },
        )
    }

    #[test]
    fn the_good_fixture_passes_every_rule() {
        let violations = run(&load("good.yaml"));
        assert!(violations.is_empty(), "{violations:#?}");
    }

    #[rstest]
    #[case(
        Rule::Labels,
        "bad-labels.yaml",
        "Deployment/demo",
        None,
        "object label app.kubernetes.io/instance is \"other\", expected \"rel\""
    )]
    #[case(
        Rule::Labels,
        "bad-labels.yaml",
        "Deployment/demo",
        None,
        "object label helm.sh/chart is \"demo-0.0.1\", expected \"demo-1.2.3\""
    )]
    #[case(
        Rule::ImagePinned,
        "bad-image.yaml",
        "Deployment/demo",
        Some("web"),
        "image \"localhost/demo:latest\" is not pinned"
    )]
    #[case(
        Rule::ImagePinned,
        "bad-image.yaml",
        "Deployment/demo",
        Some("init"),
        "image \"busybox\" is not pinned"
    )]
    #[case(
        Rule::Resources,
        "bad-resources.yaml",
        "Deployment/demo",
        Some("web"),
        "missing resources limits.cpu, limits.memory"
    )]
    #[case(
        Rule::Probes,
        "bad-probes.yaml",
        "Deployment/demo",
        Some("web"),
        "long-running container lacks livenessProbe"
    )]
    #[case(
        Rule::SecurityContext,
        "bad-security.yaml",
        "Deployment/demo",
        Some("web"),
        "runAsNonRoot is not true; allowPrivilegeEscalation is not false; container is privileged"
    )]
    #[case(Rule::ServiceSelector, "bad-service.yaml", "Service/demo", None, "selector app.kubernetes.io/instance=rel,app.kubernetes.io/name=dmeo matches no pod template")]
    #[case(
        Rule::ServiceSelector,
        "bad-service.yaml",
        "Service/demo-metrics",
        None,
        "targetPort \"metrics\" of port 9090 is not a container port of Deployment/demo"
    )]
    #[case(
        Rule::References,
        "bad-references.yaml",
        "Deployment/demo",
        Some("web"),
        "env PASSWORD refers to Secret/demo-auth, which is not in the release"
    )]
    #[case(
        Rule::References,
        "bad-references.yaml",
        "Deployment/demo",
        Some("web"),
        "env MODE refers to key \"mode\" of ConfigMap/demo-config, which has no such key"
    )]
    #[case(
        Rule::References,
        "bad-references.yaml",
        "Deployment/demo",
        None,
        "volume data refers to PersistentVolumeClaim/demo-data, which is not in the release"
    )]
    #[case(
        Rule::Scheduling,
        "bad-scheduling.yaml",
        "Deployment/demo",
        None,
        "global.nodeSelector (testware.io/node-group: system) does not reach"
    )]
    #[case(
        Rule::Scheduling,
        "bad-scheduling.yaml",
        "Deployment/demo",
        None,
        "global.tolerations (key testware.io/node-group) do not reach"
    )]
    #[case(
        Rule::StorageClass,
        "bad-storage.yaml",
        "StatefulSet/demo-db",
        None,
        "volumeClaimTemplate data does not use global.storageClass"
    )]
    #[case(
        Rule::StorageClass,
        "bad-storage.yaml",
        "PersistentVolumeClaim/demo-cache",
        None,
        "claim does not use global.storageClass"
    )]
    #[case(
        Rule::ApiVersion,
        "bad-api-removed.yaml",
        "Deployment/demo",
        None,
        "extensions/v1beta1 Deployment is not served since Kubernetes 1.16 (target 1.33): use apps/v1"
    )]
    fn each_bad_fixture_is_caught_by_its_rule(
        #[case] rule: Rule,
        #[case] fixture: &str,
        #[case] object: &str,
        #[case] container: Option<&str>,
        #[case] message: &str,
    ) {
        let violations = run(&load(fixture));
        let hit = violations.iter().any(|v| {
            v.rule == rule
                && v.object == object
                && v.container.as_deref() == container
                && (v.message.starts_with(message)
                    || v.message.split("; ").any(|m| m.starts_with(message)))
        });
        assert!(
            hit,
            "no {rule} violation on {object} {container:?} starting {message:?} in {violations:#?}"
        );
        let others: Vec<&Violation> = violations.iter().filter(|v| v.rule != rule).collect();
        assert!(
            others.is_empty(),
            "{fixture} should break only {rule}: {others:#?}"
        );
    }

    #[test]
    fn values_no_pod_or_claim_takes_are_reported_once_not_blamed_on_every_object() {
        let violations = run(&load("keys-not-taken.yaml"));
        let seen: Vec<(Rule, Severity, &str)> = violations
            .iter()
            .map(|v| (v.rule, v.severity, v.object.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    Rule::Scheduling,
                    Severity::Warning,
                    "value global.nodeSelector"
                ),
                (
                    Rule::Scheduling,
                    Severity::Warning,
                    "value global.tolerations"
                ),
                (
                    Rule::StorageClass,
                    Severity::Warning,
                    "value global.storageClass"
                ),
            ],
            "{violations:#?}"
        );
        assert!(violations[0]
            .message
            .contains("testware check --node-selector-key KEY"));
    }

    #[test]
    fn a_known_kind_in_an_unknown_version_is_never_skipped_silently() {
        let violations = run(&load("bad-api-unknown.yaml"));
        let api: Vec<&str> = violations
            .iter()
            .filter(|v| v.rule == Rule::ApiVersion && v.object == "Deployment/demo")
            .map(|v| v.message.as_str())
            .collect();
        assert_eq!(
            api,
            vec!["apps/v2 is not an API version of Deployment (expected apps/v1): no other rule could read this object"]
        );
    }

    #[test]
    fn deprecated_versions_warn_and_removed_ones_fail_at_the_target_release() {
        let m = Manifests::parse(
            "---\n# Source: demo/templates/hpa.yaml\napiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: demo}\nspec: {scaleTargetRef: {kind: Deployment, name: demo}, maxReplicas: 2}\n---\napiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: plain}\nspec: {scaleTargetRef: {kind: Deployment, name: demo}, maxReplicas: 2}\n",
        )
        .unwrap();
        let at = |minor| {
            api_version(&m, KubeVersion { minor })
                .into_iter()
                .map(|v| (v.severity, v.object, v.message))
                .collect::<Vec<_>>()
        };
        assert_eq!(at(22), vec![]);
        assert_eq!(
            at(23),
            vec![(
                Severity::Warning,
                "HorizontalPodAutoscaler/demo".to_owned(),
                "autoscaling/v2beta2 HorizontalPodAutoscaler is deprecated (target 1.23; removed in 1.26): use autoscaling/v2".to_owned()
            )]
        );
        assert_eq!(
            at(26),
            vec![(
                Severity::Error,
                "HorizontalPodAutoscaler/demo".to_owned(),
                "autoscaling/v2beta2 HorizontalPodAutoscaler is not served since Kubernetes 1.26 (target 1.26): use autoscaling/v2".to_owned()
            )]
        );
    }

    #[test]
    fn exemptions_need_a_reason_and_external_refs_are_honoured() {
        let violations = run(&load("exempt.yaml"));
        let ids: Vec<(Rule, &str)> = violations
            .iter()
            .map(|v| (v.rule, v.object.as_str()))
            .collect();
        assert_eq!(
            ids,
            [(Rule::SecurityContext, "Deployment/no-reason"); 2],
            "{violations:#?}"
        );
    }

    #[rstest]
    #[case("redis:7.0.15", true)]
    #[case("localhost:5000/redis:7", true)]
    #[case("localhost:5000/redis", false)]
    #[case("redis", false)]
    #[case("redis:latest", false)]
    #[case("redis@sha256:abcd", true)]
    #[case("ska/tango:master", false)]
    #[case("rubin/app:main", false)]
    #[case("x:develop", false)]
    #[case("x:stable", false)]
    #[case("x:edge", false)]
    #[case("x:master@sha256:abcd", true)]
    #[case("x:1.2.3-main", true)]
    fn pinned_images(#[case] image: &str, #[case] pinned: bool) {
        assert_eq!(is_pinned(image), pinned);
    }

    #[test]
    fn report_names_chart_values_object_container_and_rule() {
        let meta = chart();
        let m = load("bad-resources.yaml");
        let report = Report {
            chart: meta.name.clone(),
            values: "ci/small.yaml".into(),
            violations: resources(&m),
        };
        assert!(report.to_string().contains(
            "chart demo, values ci/small.yaml: Deployment/demo, container web: rule resources: missing resources limits.cpu, limits.memory"
        ), "{report}");
    }

    /// A Deployment without probes or resources, exempted from both with reasons
    /// (one on the object, one on the pod template), one exemption without a
    /// reason, a Service exempted from service-selector, and a test hook.
    const EXEMPTIONS_AND_HOOKS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    policy.testware.io/exempt-resources: "sized by the operator at runtime"
    policy.testware.io/exempt-image-pinned: ""
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations:
        policy.testware.io/exempt-probes: "a batch worker polls a queue; no port"
    spec:
      containers:
      - name: web
        image: web:latest
---
apiVersion: v1
kind: Service
metadata:
  name: operated
  annotations:
    policy.testware.io/exempt-service-selector: "pods created by the operator"
spec:
  selector: {app: operated}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata:
  name: web-test
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers:
  - name: check
    image: tool:latest
"#;

    #[test]
    fn exemptions_hold_for_every_rule_and_kind_and_test_hooks_are_left_out() {
        let m = Manifests::parse(EXEMPTIONS_AND_HOOKS).unwrap();
        let meta = chart();
        let check = |include_test_hooks| {
            check_all(
                &m,
                &Context {
                    chart: &meta,
                    release: "rel",
                    probe: None,
                    include_test_hooks,
                    kube_version: KubeVersion::DEFAULT,
                    schemas: None,
                },
            )
        };
        let hits = |violations: &[Violation], rule: Rule, object: &str| {
            violations
                .iter()
                .any(|v| v.rule == rule && v.object == object)
        };
        let violations = check(false);
        assert!(
            !hits(&violations, Rule::Resources, "Deployment/web"),
            "{violations:#?}"
        );
        assert!(
            !hits(&violations, Rule::Probes, "Deployment/web"),
            "{violations:#?}"
        );
        assert!(
            hits(&violations, Rule::ImagePinned, "Deployment/web"),
            "an exemption without a reason does not count: {violations:#?}"
        );
        assert!(
            !hits(&violations, Rule::ServiceSelector, "Service/operated"),
            "{violations:#?}"
        );
        assert!(
            !violations.iter().any(|v| v.object == "Pod/web-test"),
            "{violations:#?}"
        );
        let with_hooks = check(true);
        assert!(
            hits(&with_hooks, Rule::ImagePinned, "Pod/web-test"),
            "{with_hooks:#?}"
        );
    }

    #[test]
    fn an_undeclared_numeric_target_port_is_a_warning_and_does_not_fail() {
        let m = Manifests::parse(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: web:1.0
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 9999}, {port: 81, targetPort: metrics}]
"#,
        )
        .unwrap();
        let meta = chart();
        let violations = check_all(
            &m,
            &Context {
                chart: &meta,
                release: "rel",
                probe: None,
                include_test_hooks: false,
                kube_version: KubeVersion::DEFAULT,
                schemas: None,
            },
        );
        let of_service: Vec<(Severity, &str)> = violations
            .iter()
            .filter(|v| v.rule == Rule::ServiceSelector)
            .map(|v| (v.severity, v.message.as_str()))
            .collect();
        assert_eq!(
            of_service,
            [
                (
                    Severity::Warning,
                    "targetPort 9999 of port 80 is not a container port of Deployment/web"
                ),
                (
                    Severity::Error,
                    "targetPort \"metrics\" of port 81 is not a container port of Deployment/web"
                ),
            ],
            "{violations:#?}"
        );
        let warnings_only = Report {
            chart: "demo".into(),
            values: "default".into(),
            violations: violations
                .into_iter()
                .filter(|v| v.severity == Severity::Warning)
                .collect(),
        };
        assert!(warnings_only.passes());
        let text = warnings_only.to_string();
        assert!(
            text.starts_with("0 policy error(s), 1 warning(s)"),
            "{text}"
        );
        assert!(
            text.contains("  - warning: chart demo, values default: Service/web"),
            "{text}"
        );
    }
}
