//! The `resources` rule: CPU and memory requests and limits.

use super::super::*;

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
