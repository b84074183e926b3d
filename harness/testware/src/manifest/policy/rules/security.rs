//! The `security` rule: non-root, no privilege escalation, not privileged.

use super::super::*;

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
