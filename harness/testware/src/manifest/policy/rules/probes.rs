//! The `probes` rule: readiness and liveness probes on long-running containers.

use super::super::*;

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
