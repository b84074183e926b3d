//! The `labels` rule: the standard labels on every object.
//!
//! What a chart can be asked for depends on where an object comes from: a
//! subchart's objects carry the subchart's `helm.sh/chart`; CRDs from a chart's
//! `crds/` directory are not templated, so they cannot carry release labels;
//! and a chart without `appVersion` is told so once, not once per object.

use super::super::*;

const VERSION: &str = "app.kubernetes.io/version";

/// Standard labels on every object, and name/instance on every pod template.
pub fn labels(m: &Manifests, cx: &Context<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    let parent_label = cx.chart.chart_label();
    let no_app_version = cx.chart.app_version.as_deref().is_none_or(str::is_empty);
    let mut unversioned = 0;
    for object in m.objects() {
        let origin = Origin::of(&object.source);
        if origin == Origin::Crds {
            continue;
        }
        let labels = object.labels();
        let mut check = |key: &str,
                         want: Want<'_>,
                         labels: &BTreeMap<String, String>,
                         what: &str| {
            let problem = match (labels.get(key), want) {
                (None, _) => format!("{what} lacks label {key}"),
                (Some(v), _) if v.is_empty() => format!("{what} has empty label {key}"),
                (Some(v), Want::Exactly(w)) if v != w => {
                    format!("{what} label {key} is {v:?}, expected {w:?}")
                }
                (Some(v), Want::Chart(sub)) if !v.starts_with(&format!("{sub}-")) => format!(
                    "{what} label {key} is {v:?}, expected the subchart's own \"{sub}-<its version>\""
                ),
                _ => return,
            };
            out.push(violation(Rule::Labels, object, None, problem));
        };
        check("app.kubernetes.io/name", Want::Any, &labels, "object");
        check(
            "app.kubernetes.io/instance",
            Want::Exactly(cx.release),
            &labels,
            "object",
        );
        if no_app_version && origin == Origin::Parent && !labels.contains_key(VERSION) {
            unversioned += 1;
        } else {
            check(VERSION, Want::Any, &labels, "object");
        }
        check(
            "app.kubernetes.io/managed-by",
            Want::Exactly("Helm"),
            &labels,
            "object",
        );
        let chart = match origin {
            Origin::Subchart(sub) => Want::Chart(sub),
            _ => Want::Exactly(&parent_label),
        };
        check("helm.sh/chart", chart, &labels, "object");
        if let Some(pod) = object.pod_template() {
            let pod_labels = pod.labels();
            check(
                "app.kubernetes.io/name",
                Want::Any,
                &pod_labels,
                "pod template",
            );
            check(
                "app.kubernetes.io/instance",
                Want::Exactly(cx.release),
                &pod_labels,
                "pod template",
            );
        }
    }
    if unversioned > 0 {
        out.push(Violation {
            rule: Rule::Labels,
            severity: Severity::Error,
            object: format!("chart {}", cx.chart.name),
            container: None,
            message: format!(
                "Chart.yaml has no appVersion, and {unversioned} object(s) lack label {VERSION} (set appVersion)"
            ),
            template: Some(format!("{}/Chart.yaml", cx.chart.name)),
        });
    }
    out
}

/// What a label must be.
#[derive(Debug, Clone, Copy)]
enum Want<'a> {
    /// Present and not empty.
    Any,
    /// This value.
    Exactly(&'a str),
    /// `helm.sh/chart` of the named subchart: `<name>-<version>`.
    Chart(&'a str),
}

/// Where an object was rendered from, by its `# Source:` path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin<'a> {
    /// The chart's own templates.
    Parent,
    /// A subchart's templates (the innermost subchart's name, or its alias).
    Subchart(&'a str),
    /// A `crds/` directory: applied as is, not templated.
    Crds,
}

impl<'a> Origin<'a> {
    fn of(source: &'a str) -> Self {
        let parts: Vec<&str> = source.split('/').collect();
        // helm writes `# Source: crds/x.yaml` (no chart prefix) for them.
        if parts.len() >= 2 && parts[parts.len() - 2] == "crds" && !parts.contains(&"templates") {
            return Origin::Crds;
        }
        let templates = parts
            .iter()
            .position(|p| *p == "templates")
            .unwrap_or(parts.len());
        match parts[..templates].iter().rposition(|p| *p == "charts") {
            Some(i) if i + 1 < templates => Origin::Subchart(parts[i + 1]),
            _ => Origin::Parent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn origins_from_source_paths() {
        assert_eq!(Origin::of("web/templates/deploy.yaml"), Origin::Parent);
        assert_eq!(Origin::of("web/templates/charts/x.yaml"), Origin::Parent);
        assert_eq!(
            Origin::of("web/charts/db/templates/sts.yaml"),
            Origin::Subchart("db")
        );
        assert_eq!(
            Origin::of("web/charts/db/charts/common/templates/a.yaml"),
            Origin::Subchart("common")
        );
        assert_eq!(Origin::of("crds/crd.yaml"), Origin::Crds);
        assert_eq!(Origin::of("web/crds/crd.yaml"), Origin::Crds);
        assert_eq!(Origin::of("web/charts/op/crds/crd.yaml"), Origin::Crds);
        assert_eq!(Origin::of("(unknown template)"), Origin::Parent);
    }
}
