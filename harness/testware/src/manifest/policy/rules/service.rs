//! The `service` rule: Service selectors and target ports that reach pods of the release.

use super::super::*;

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

/// No controller's `matchLabels` selects the pods of another controller of the
/// release: both would count those pods as theirs and scale them up and down.
/// Selectors with `matchExpressions` are left alone (not decided from labels alone).
pub fn selector_overlap(m: &Manifests) -> Vec<Violation> {
    /// A controller, its selector and its pods' labels.
    struct Controller<'a> {
        object: &'a ManifestObject,
        selector: BTreeMap<String, String>,
        pods: BTreeMap<String, String>,
    }
    let controllers: Vec<Controller> = m
        .objects()
        .iter()
        .filter(|o| o.is_long_running() && o.kind != "Pod")
        .filter_map(|object| {
            let selector = object.raw.pointer("/spec/selector")?;
            if selector.get("matchExpressions").is_some() {
                return None;
            }
            let selector: BTreeMap<String, String> =
                serde_json::from_value(selector.get("matchLabels")?.clone()).ok()?;
            let pods = object.pod_template()?.labels();
            Some(Controller {
                object,
                selector,
                pods,
            })
        })
        .filter(|c| !c.selector.is_empty())
        .collect();
    let selects =
        |a: &Controller, b: &Controller| a.selector.iter().all(|(k, v)| b.pods.get(k) == Some(v));
    let mut out = Vec::new();
    for (i, a) in controllers.iter().enumerate() {
        for b in &controllers[i + 1..] {
            if selects(a, b) || selects(b, a) {
                out.push(violation(
                    Rule::SelectorOverlap,
                    a.object,
                    None,
                    format!(
                        "its selector {} and {}'s selector {} overlap: one selects the other's pods, so the two controllers fight over them (add a label that tells them apart, e.g. app.kubernetes.io/component)",
                        show_labels(&a.selector),
                        b.object.id(),
                        show_labels(&b.selector)
                    ),
                ));
            }
        }
    }
    out
}
