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
