//! Pod Security Admission as production clusters run it: the level the
//! harness's namespaces enforce (`pod-security.kubernetes.io/enforce`), one
//! setting per run (`HARNESS_POD_SECURITY`, default `baseline`, as most
//! managed clusters and Rancher default to), or per namespace request; and
//! the watch that ends a rollout wait at once when the API server refuses a
//! workload's pods for a violation.

use std::fmt;
use std::str::FromStr;

use futures::StreamExt as _;

use crate::cluster::status::WorkloadKind;

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

/// Watches the namespace's events until one says that the controller of
/// workload `kind/name` (for a Deployment, one of its ReplicaSets) could not
/// create a pod because it violates the namespace's Pod Security level
/// ([`refusal`]), and returns that message. Such a pod never
/// exists, so the stuck-pod watch cannot see it; never ends while none is.
pub async fn first_refused_pod(
    client: &kube::Client,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
) -> String {
    use k8s_openapi::api::core::v1::Event;
    use kube::runtime::watcher::{self, Event as Change};
    use kube::runtime::WatchStreamExt as _;
    let events: kube::Api<Event> = kube::Api::namespaced(client.clone(), namespace);
    let replica_sets = format!("{name}-");
    let from_workload = |e: &Event| {
        let object = &e.involved_object;
        let object_name = object.name.as_deref().unwrap_or_default();
        match (kind, object.kind.as_deref()) {
            (WorkloadKind::Deployment, Some("ReplicaSet")) => {
                object_name.starts_with(&replica_sets)
            }
            (_, Some(k)) => k == kind.as_str() && object_name == name,
            _ => false,
        }
    };
    let stream = watcher::watcher(
        events,
        watcher::Config::default().fields("reason=FailedCreate"),
    )
    .default_backoff();
    futures::pin_mut!(stream);
    while let Some(change) = stream.next().await {
        if let Ok(Change::Apply(e) | Change::InitApply(e)) = change {
            if from_workload(&e) {
                if let Some(message) = e.message.as_deref().and_then(refusal) {
                    return message.to_owned();
                }
            }
        }
    }
    std::future::pending().await
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
