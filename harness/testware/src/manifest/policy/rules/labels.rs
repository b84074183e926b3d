//! The `labels` rule: the standard labels on every object.

use super::super::*;

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
