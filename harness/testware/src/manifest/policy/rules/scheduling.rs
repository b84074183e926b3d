//! The `scheduling` and `storage-class` rules: the probe values reach every pod and claim.

use super::super::*;

/// Every pod carries the probe node selector and toleration.
pub fn scheduling(m: &Manifests, probe: &ProbeValues) -> Vec<Violation> {
    let (key, value) = &probe.node_selector;
    let keys = &probe.keys;
    let node_selector_keys = keys.node_selector.join(", ");
    let toleration_keys = keys.tolerations.join(", ");
    let pods: Vec<PodTemplate<'_>> = m
        .pod_templates()
        .into_iter()
        .filter(|p| !is_test_hook(p.owner))
        .collect();
    let mut out = held_to(
        Rule::Scheduling,
        &pods,
        |pod| pod.spec.node_selector.as_ref().and_then(|s| s.get(key)) == Some(value),
        (&node_selector_keys, "--node-selector-key", "pod"),
        |pod| {
            violation(
                Rule::Scheduling,
                pod.owner,
                None,
                format!(
                    "{node_selector_keys} ({key}: {value}) does not reach the pod's nodeSelector"
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
        (&toleration_keys, "--tolerations-key", "pod"),
        |pod| {
            violation(
                Rule::Scheduling,
                pod.owner,
                None,
                format!(
                    "{toleration_keys} (key {}) do not reach the pod's tolerations",
                    probe.toleration_key
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
            message: format!("no {what} takes it, so the rule was not applied (hint: if the chart has keys of its own for this, name them: `testware check {flag} KEY`, once per key, or ValueKeys in the library)"),
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
    let storage_keys = probe.keys.storage_class.join(", ");
    let mut found = Vec::new();
    for object in m.objects() {
        let claims: Vec<(String, &PersistentVolumeClaim)> =
            if let Some(pvc) = object.as_kind::<PersistentVolumeClaim>() {
                vec![("claim".into(), pvc)]
            } else if let Some(sts) = object.as_kind::<k8s_openapi::api::apps::v1::StatefulSet>() {
                crate::cluster::versions::spec(&sts.spec)
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
        (&storage_keys, "--storage-class-key", "claim"),
        |(object, what, _)| {
            violation(
                Rule::StorageClass,
                object,
                None,
                format!(
                    "{what} does not use {storage_keys} ({})",
                    probe.storage_class
                ),
            )
        },
    )
}
