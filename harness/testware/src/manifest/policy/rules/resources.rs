//! The `resources` rule: CPU and memory requests and limits.

use super::super::*;

/// CPU and memory requests and limits on every container and init container.
pub fn resources(m: &Manifests) -> Vec<Violation> {
    resources_with(m, Limits::Required)
}

/// Whether the `resources` rule asks for limits beside requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limits {
    /// Requests and limits (the default).
    #[default]
    Required,
    /// Requests only: a team's choice to let pods burst (no CPU throttling),
    /// where requests are what the scheduler needs.
    Optional,
}

/// [`resources`], with limits required or not.
pub fn resources_with(m: &Manifests, limits: Limits) -> Vec<Violation> {
    for_each_container(m, |pod, c, _| {
        let mut missing = Vec::new();
        let res = c.resources.as_ref();
        let mut sections = vec![("requests", res.and_then(|r| r.requests.as_ref()))];
        if limits == Limits::Required {
            sections.push(("limits", res.and_then(|r| r.limits.as_ref())));
        }
        for (section, map) in sections {
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
