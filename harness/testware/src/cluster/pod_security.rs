//! Pod Security Admission as production clusters run it: the level the
//! harness's namespaces enforce (`pod-security.kubernetes.io/enforce`), one
//! setting per run (`HARNESS_POD_SECURITY`, default `baseline`, as most
//! managed clusters and Rancher default to), or per namespace request.

use std::fmt;
use std::str::FromStr;

/// The label that makes the API server refuse pods that violate a level.
pub const ENFORCE: &str = "pod-security.kubernetes.io/enforce";
/// The label that pins the level's version; `latest` is the server's own.
pub const ENFORCE_VERSION: &str = "pod-security.kubernetes.io/enforce-version";
/// The label that makes the API server warn (on apply, in helm's output) of
/// what the level would refuse.
pub const WARN: &str = "pod-security.kubernetes.io/warn";

/// A Pod Security Standard level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodSecurity {
    /// Anything goes (host namespaces, privileged containers, hostPath).
    Privileged,
    /// Known privilege escalations refused: privileged containers, host
    /// namespaces and ports, hostPath volumes, added capabilities beyond the
    /// default set. The run's default.
    #[default]
    Baseline,
    /// Hardened: non-root, no privilege escalation, all capabilities
    /// dropped, a seccomp profile, only the volume types a pod needs.
    Restricted,
}

impl PodSecurity {
    /// The level as the labels spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::Baseline => "baseline",
            Self::Restricted => "restricted",
        }
    }

    /// The namespace labels that enforce this level (and warn of it).
    pub fn labels(self) -> [(&'static str, String); 3] {
        [
            (ENFORCE, self.as_str().to_owned()),
            (ENFORCE_VERSION, "latest".to_owned()),
            (WARN, self.as_str().to_owned()),
        ]
    }
}

impl fmt::Display for PodSecurity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PodSecurity {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "privileged" => Ok(Self::Privileged),
            "baseline" => Ok(Self::Baseline),
            "restricted" => Ok(Self::Restricted),
            other => Err(format!(
                "{other:?} is not a Pod Security level (privileged, baseline or restricted)"
            )),
        }
    }
}

/// The message of an event in which a controller says the API server refused
/// one of its pods for a Pod Security violation, if `message` is one:
/// `pods "web-5d9c-x" is forbidden: violates PodSecurity "baseline:latest": …`.
/// Such a pod is never created, so it can never become ready.
pub fn refusal(message: &str) -> Option<&str> {
    message
        .contains("violates PodSecurity")
        .then_some(message.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_label_namespaces() {
        assert_eq!("restricted".parse(), Ok(PodSecurity::Restricted));
        assert_eq!(PodSecurity::default(), PodSecurity::Baseline);
        assert!("strict".parse::<PodSecurity>().is_err());
        let labels = PodSecurity::Restricted.labels();
        assert!(labels.contains(&(ENFORCE, "restricted".to_owned())));
        assert!(labels.contains(&(ENFORCE_VERSION, "latest".to_owned())));
    }

    #[test]
    fn only_pod_security_refusals_count() {
        let refused = r#"Error creating: pods "web-5d9c-x" is forbidden: violates PodSecurity "baseline:latest": privileged (container "app" must not set securityContext.privileged=true)"#;
        assert_eq!(refusal(refused), Some(refused));
        // A ServiceAccount made in the same install is a race that resolves.
        assert_eq!(
            refusal(
                r#"Error creating: pods "web-x" is forbidden: error looking up service account t/web: serviceaccount "web" not found"#
            ),
            None
        );
    }
}
