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
use crate::charts::chart::{ChartError, ChartMeta, ChartSet, ValueSet};
use crate::runner::Case;

use super::api_versions::{self, Deprecation, KubeVersion, Standing};
use super::schema::{SchemaError, Schemas};

mod probe;
pub mod rules;
mod run;
#[cfg(test)]
mod tests;

pub use probe::{ProbeValues, ValueKeys};
pub use rules::api_version::api_version;
pub use rules::image::{image_pinned, is_pinned, MOVING_TAGS};
pub use rules::labels::labels;
pub use rules::probes::probes;
pub use rules::references::{references, references_with};
pub use rules::resources::{resources, resources_with, Limits};
pub use rules::scheduling::{scheduling, storage_class};
pub use rules::schema::schema;
pub use rules::security::security_context;
pub use rules::service::{selector_overlap, service_selector};
pub use run::{cases, check_chart, check_chart_with, plan, Check, CheckKind};

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
    /// No two controllers of the release select one another's pods (they would
    /// fight over them).
    SelectorOverlap,
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
    pub const ALL: [Rule; 12] = [
        Rule::Labels,
        Rule::ImagePinned,
        Rule::Resources,
        Rule::Probes,
        Rule::SecurityContext,
        Rule::ServiceSelector,
        Rule::SelectorOverlap,
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
            Rule::SelectorOverlap => "selector-overlap",
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
    /// Objects provided outside the release for every pod (`Kind/name`), beside
    /// the pods' own [`EXTERNAL_REFS`] annotations.
    pub external_refs: &'a [String],
    /// Whether the resources rule asks for limits.
    pub limits: Limits,
    /// That release's schemas, for the schema rule (skipped without them:
    /// [`check_chart_with`] says why in the report).
    pub schemas: Option<&'a Schemas>,
}

impl<'a> Context<'a> {
    /// A chart's release with the defaults: no probe values, test hooks left
    /// out, [`KubeVersion::DEFAULT`], no schemas, nothing external, limits
    /// required. Change fields with `Context { probe: Some(&p), ..Context::new(…) }`.
    pub fn new(chart: &'a ChartMeta, release: &'a str) -> Self {
        Self {
            chart,
            release,
            probe: None,
            include_test_hooks: false,
            kube_version: KubeVersion::DEFAULT,
            external_refs: &[],
            limits: Limits::Required,
            schemas: None,
        }
    }
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
    /// Objects provided outside the release (`Kind/name`, e.g. a Secret an
    /// operator of the cluster writes), for charts that cannot be annotated.
    pub external_refs: Vec<String>,
    /// Whether the resources rule asks for limits beside requests.
    pub limits: Limits,
    /// Render without `helm test` hooks (`helm template --skip-tests`).
    pub skip_tests: bool,
    /// Render with helm's debug log (`--debug`), which a failed render's error carries.
    pub debug: bool,
}

/// Runs every rule.
pub fn check_all(m: &Manifests, cx: &Context<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    out.extend(labels(m, cx));
    out.extend(image_pinned(m));
    out.extend(resources_with(m, cx.limits));
    out.extend(probes(m));
    out.extend(security_context(m));
    out.extend(service_selector(m));
    out.extend(selector_overlap(m));
    out.extend(references_with(m, cx.external_refs));
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
