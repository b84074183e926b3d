//! What objects' states mean, as pure functions of the objects: workload kinds,
//! pod readiness, when a workload has rolled out, and when a pod is stuck in a
//! state it cannot leave by itself (so a wait can end at once). [`crate::cluster::wait`] watches
//! until these say done; [`crate::cluster::explain`] uses them to say what is not ready.
//! No I/O here, so every judgement is unit-tested on fixtures.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use std::time::Duration;

/// What a watch-based condition makes of the object's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// The condition holds.
    Done,
    /// Not yet; the current state in words.
    Pending(String),
    /// It never will; why.
    Failed(String),
}

/// `true` when the pod's Ready condition is true.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A workload kind that rolls out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// batch/v1 Job.
    Job,
}

impl WorkloadKind {
    /// The kind as Kubernetes spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
            Self::Job => "Job",
        }
    }

    /// The kind named `kind`, if it is a workload.
    pub fn parse(kind: &str) -> Option<Self> {
        match kind {
            "Deployment" => Some(Self::Deployment),
            "StatefulSet" => Some(Self::StatefulSet),
            "DaemonSet" => Some(Self::DaemonSet),
            "Job" => Some(Self::Job),
            _ => None,
        }
    }
}

/// A Deployment has rolled out: the new generation observed, every replica updated
/// and available, no old ones left.
pub fn deployment_state(d: Option<&Deployment>) -> State {
    let Some(d) = d else {
        return State::Pending("does not exist".into());
    };
    let want = crate::cluster::versions::spec(&d.spec)
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let Some(s) = &d.status else {
        return State::Pending("no status yet".into());
    };
    let observed = s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let updated = s.updated_replicas.unwrap_or(0);
    let available = s.available_replicas.unwrap_or(0);
    let total = s.replicas.unwrap_or(0);
    if observed && updated == want && available == want && total == want {
        State::Done
    } else {
        State::Pending(format!(
            "{available} of {want} replicas available, {updated} updated, {total} in total"
        ))
    }
}

/// A StatefulSet has rolled out: every replica ready and updated, one revision.
pub fn statefulset_state(s: Option<&StatefulSet>) -> State {
    let Some(s) = s else {
        return State::Pending("does not exist".into());
    };
    let want = crate::cluster::versions::spec(&s.spec)
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    let Some(st) = &s.status else {
        return State::Pending("no status yet".into());
    };
    let observed = st.observed_generation.unwrap_or(0) >= s.metadata.generation.unwrap_or(0);
    let ready = st.ready_replicas.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    let same_revision = st.update_revision.is_none() || st.update_revision == st.current_revision;
    if observed && ready == want && updated == want && same_revision {
        State::Done
    } else {
        State::Pending(format!(
            "{ready} of {want} replicas ready, {updated} updated"
        ))
    }
}

/// A DaemonSet has rolled out: every scheduled pod available and updated.
pub fn daemonset_state(d: Option<&DaemonSet>) -> State {
    let Some(d) = d else {
        return State::Pending("does not exist".into());
    };
    let Some(s) = &d.status else {
        return State::Pending("no status yet".into());
    };
    let observed = s.observed_generation.unwrap_or(0) >= d.metadata.generation.unwrap_or(0);
    let want = s.desired_number_scheduled;
    let available = s.number_available.unwrap_or(0);
    let updated = s.updated_number_scheduled.unwrap_or(0);
    if observed && available == want && updated == want {
        State::Done
    } else {
        State::Pending(format!(
            "{available} of {want} pods available, {updated} updated"
        ))
    }
}

/// A Job has completed; a failed Job never will.
pub fn job_state(job: Option<&Job>) -> State {
    let Some(job) = job else {
        return State::Pending("does not exist".into());
    };
    let status = job.status.as_ref();
    let condition = |type_: &str| {
        status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == type_ && c.status == "True"))
    };
    if condition("Complete").is_some() {
        State::Done
    } else if let Some(failed) = condition("Failed") {
        State::Failed(format!(
            "{}: {}",
            failed.reason.clone().unwrap_or_default(),
            failed.message.clone().unwrap_or_default()
        ))
    } else {
        State::Pending(format!(
            "{} active, {} succeeded, {} failed",
            status.and_then(|s| s.active).unwrap_or(0),
            status.and_then(|s| s.succeeded).unwrap_or(0),
            status.and_then(|s| s.failed).unwrap_or(0)
        ))
    }
}

/// When a wait gives up on a pod that cannot become ready, instead of waiting
/// out its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailFast {
    /// Whether waits end early at all ([`FailFast::off`]: only at their deadline).
    pub enabled: bool,
    /// Restarts of a crash-looping container after which it counts as stuck.
    pub crash_loop_restarts: i32,
    /// How long a state that another object may still clear must last: a
    /// missing Secret, ConfigMap or key (an operator such as cert-manager may
    /// create it a moment later), a container the runtime could not create, a
    /// pod no node matches.
    pub settle: Duration,
}

impl Default for FailFast {
    /// Three restarts; twenty seconds.
    fn default() -> Self {
        Self {
            enabled: true,
            crash_loop_restarts: 3,
            settle: Duration::from_secs(20),
        }
    }
}

impl FailFast {
    /// Waits end only at their deadline, as before this existed (for comparison).
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// A pod state that does not turn into ready by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// The state, as Kubernetes names it (`ImagePullBackOff`, `CrashLoopBackOff`, …).
    pub reason: String,
    /// What is stuck and why, in words (container, image, the runtime's message).
    pub detail: String,
    /// Whether it must last [`FailFast::settle`] first (another object may clear it).
    pub settles: bool,
}

/// Why `pod` cannot become ready by itself, if it cannot: an image that cannot
/// be pulled (after the first back-off) or never will, a container crash-looping
/// past `policy`'s restarts (init containers too), a container the runtime cannot
/// create or configure, a pod without a controller that failed, or a pod no node
/// matches by selector, affinity or taints. Transient states (a first failed
/// pull, a node not ready yet, too little CPU for now) are not stuck.
pub fn stuck(pod: &Pod, policy: &FailFast) -> Option<Stuck> {
    if !policy.enabled {
        return None;
    }
    let status = pod.status.as_ref()?;
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .map(|c| ("init container", c))
        .chain(
            status
                .container_statuses
                .iter()
                .flatten()
                .map(|c| ("container", c)),
        );
    for (what, container) in containers {
        if let Some(found) = stuck_container(what, container, policy) {
            return Some(found);
        }
    }
    let controlled = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true));
    // A controller replaces or retries a failed pod (a Job up to its backoff limit).
    if status.phase.as_deref() == Some("Failed") && !controlled {
        return Some(Stuck {
            reason: status.reason.clone().unwrap_or_else(|| "Failed".into()),
            detail: format!(
                "the pod failed: {}",
                status.message.clone().unwrap_or_default()
            ),
            settles: false,
        });
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    })?;
    let message = unschedulable.message.clone().unwrap_or_default();
    no_node_matches(&message).then(|| Stuck {
        reason: "Unschedulable".into(),
        detail: format!("no node can take the pod: {message}"),
        settles: true,
    })
}

fn stuck_container(what: &str, c: &ContainerStatus, policy: &FailFast) -> Option<Stuck> {
    let waiting = c.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.clone().unwrap_or_default();
    let message = waiting.message.clone().unwrap_or_default();
    let settles = match reason.as_str() {
        "InvalidImageName" | "ErrImageNeverPull" | "ImagePullBackOff" => false,
        "CreateContainerConfigError" | "CreateContainerError" => true,
        "CrashLoopBackOff" if c.restart_count >= policy.crash_loop_restarts => false,
        _ => return None,
    };
    let exit = c
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .map(|t| {
            format!(
                ", last exit {} {}",
                t.exit_code,
                t.reason.clone().unwrap_or_default()
            )
        })
        .unwrap_or_default();
    let detail = if reason == "CrashLoopBackOff" {
        format!(
            "{what} {} restarted {} times{}",
            c.name,
            c.restart_count,
            exit.trim_end()
        )
    } else {
        format!("{what} {} (image {}): {message}", c.name, c.image)
    };
    Some(Stuck {
        reason,
        detail,
        settles,
    })
}

/// Why `claim` cannot be bound by itself, if it cannot: it names a StorageClass
/// that is not among `classes`, or names none on a cluster whose `classes` have
/// no default (Kubernetes 1.20 gives a class only when the claim is made). Both
/// settle: the release may still create the class. A claim bound, pre-bound to a
/// volume, or asking for static volumes only (`storageClassName: ""`) is not.
pub fn claim_stuck(claim: &PersistentVolumeClaim, classes: &[StorageClass]) -> Option<Stuck> {
    let phase = claim.status.as_ref().and_then(|s| s.phase.as_deref());
    let spec = crate::cluster::versions::spec(&claim.spec)?;
    if phase.is_some_and(|p| p != "Pending") || spec.volume_name.is_some() {
        return None;
    }
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    let known: Vec<&str> = classes
        .iter()
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    let detail = match spec.storage_class_name.as_deref() {
        Some("") => return None,
        Some(class) if known.contains(&class) => return None,
        Some(class) => format!(
            "claim {name} names StorageClass {class:?}, which does not exist (the cluster has: {})",
            if known.is_empty() { "none".into() } else { known.join(", ") }
        ),
        None if classes.iter().any(is_default_class) => return None,
        None => format!(
            "claim {name} names no StorageClass and the cluster has no default one: give the chart a storageClassName"
        ),
    };
    Some(Stuck {
        reason: "ProvisioningFailed".into(),
        detail,
        settles: true,
    })
}

/// Whether `class` is annotated as the cluster's default.
fn is_default_class(class: &StorageClass) -> bool {
    class
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
        .is_some_and(|v| v == "true")
}

/// The claims `pod` mounts that are not bound yet, by name, while it waits to
/// be scheduled (a pod that runs has its volumes).
pub fn unbound_claims_of(pod: &Pod) -> Vec<String> {
    let scheduled = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "PodScheduled" && c.status == "True")
        });
    if scheduled {
        return Vec::new();
    }
    crate::cluster::versions::spec(&pod.spec)
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone())
        .collect()
}

/// Whether a scheduler message says no node matches the pod for reasons only a
/// change of nodes or of the pod can fix: its node selector or affinity, or a
/// taint it does not tolerate (the node controller's own taints for a node not
/// ready or under pressure pass, and so does a shortage of resources).
fn no_node_matches(message: &str) -> bool {
    const FIXED: [&str; 3] = [
        "didn't match node selector",
        "didn't match Pod's node affinity",
        "didn't match pod's node affinity",
    ];
    if FIXED.iter().any(|m| message.contains(m)) {
        return true;
    }
    // "1 node(s) had taint {dedicated: gpu}, that the pod didn't tolerate"
    message
        .split("had taint {")
        .skip(1)
        .filter_map(|rest| rest.split(':').next())
        .any(|key| {
            !key.starts_with("node.kubernetes.io/")
                && !key.starts_with("node.cloudprovider.kubernetes.io/")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_rolled_out_needs_every_replica_updated_and_available() {
        let d = |replicas, updated, available, total| -> Deployment {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "d", "generation": 2},
                "spec": {"replicas": replicas, "selector": {}, "template": {}},
                "status": {"observedGeneration": 2, "updatedReplicas": updated,
                           "availableReplicas": available, "replicas": total}
            }))
            .unwrap()
        };
        assert_eq!(deployment_state(Some(&d(2, 2, 2, 2))), State::Done);
        assert_eq!(
            deployment_state(Some(&d(2, 2, 1, 3))),
            State::Pending("1 of 2 replicas available, 2 updated, 3 in total".into())
        );
        assert!(matches!(deployment_state(None), State::Pending(_)));
    }

    fn pod(status: serde_json::Value, owned: bool) -> Pod {
        let owners = if owned {
            serde_json::json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u", "controller": true}])
        } else {
            serde_json::json!([])
        };
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "ownerReferences": owners},
            "status": status
        }))
        .unwrap()
    }

    fn waiting(reason: &str, message: &str, restarts: i32) -> serde_json::Value {
        serde_json::json!({"phase": "Pending", "containerStatuses": [{
            "name": "app", "image": "localhost/app:9", "imageID": "", "ready": false,
            "restartCount": restarts,
            "state": {"waiting": {"reason": reason, "message": message}},
            "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}
        }]})
    }

    #[test]
    fn images_that_cannot_be_pulled_are_stuck_after_the_first_back_off() {
        let policy = FailFast::default();
        let first = pod(waiting("ErrImagePull", "rpc error: not found", 0), true);
        assert_eq!(
            stuck(&first, &policy),
            None,
            "a first failed pull may be transient"
        );
        let backoff = stuck(
            &pod(
                waiting("ImagePullBackOff", "Back-off pulling image", 0),
                true,
            ),
            &policy,
        )
        .unwrap();
        assert_eq!(backoff.reason, "ImagePullBackOff");
        assert!(!backoff.settles);
        assert_eq!(
            backoff.detail,
            "container app (image localhost/app:9): Back-off pulling image"
        );
        for reason in ["InvalidImageName", "ErrImageNeverPull"] {
            assert_eq!(
                stuck(&pod(waiting(reason, "", 0), true), &policy)
                    .unwrap()
                    .reason,
                reason
            );
        }
        let never = pod(waiting("ImagePullBackOff", "", 0), true);
        assert_eq!(stuck(&never, &FailFast::off()), None);
    }

    #[test]
    fn crash_loops_are_stuck_past_the_restarts_allowed() {
        let policy = FailFast {
            crash_loop_restarts: 3,
            ..FailFast::default()
        };
        let early = pod(waiting("CrashLoopBackOff", "back-off 10s", 2), true);
        assert_eq!(
            stuck(&early, &policy),
            None,
            "a dependency may still come up"
        );
        let looping = stuck(
            &pod(waiting("CrashLoopBackOff", "back-off 40s", 3), true),
            &policy,
        )
        .unwrap();
        assert_eq!(
            looping.detail,
            "container app restarted 3 times, last exit 2 Error"
        );
        let mut init = waiting("CrashLoopBackOff", "", 5);
        init["initContainerStatuses"] = init["containerStatuses"].take();
        assert!(stuck(&pod(init, true), &policy)
            .unwrap()
            .detail
            .starts_with("init container app"));
    }

    #[test]
    fn missing_configuration_settles_before_it_counts() {
        let found = stuck(
            &pod(
                waiting("CreateContainerConfigError", "secret \"db\" not found", 0),
                true,
            ),
            &FailFast::default(),
        )
        .unwrap();
        assert!(
            found.settles,
            "an operator may create the Secret a moment later"
        );
        assert!(found.detail.contains("secret \"db\" not found"));
    }

    #[test]
    fn failed_pods_count_only_without_a_controller_to_replace_them() {
        let failed =
            serde_json::json!({"phase": "Failed", "reason": "Evicted", "message": "low on disk"});
        assert_eq!(
            stuck(&pod(failed.clone(), true), &FailFast::default()),
            None
        );
        assert_eq!(
            stuck(&pod(failed, false), &FailFast::default())
                .unwrap()
                .reason,
            "Evicted"
        );
    }

    #[test]
    fn only_pods_no_node_can_ever_take_are_unschedulable_for_good() {
        let unscheduled = |message: &str| {
            pod(
                serde_json::json!({"phase": "Pending", "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message
                }]}),
                true,
            )
        };
        let policy = FailFast::default();
        for message in [
            "0/1 nodes are available: 1 node(s) didn't match node selector.",
            "0/2 nodes are available: 2 node(s) had taint {dedicated: gpu}, that the pod didn't tolerate.",
        ] {
            let found = stuck(&unscheduled(message), &policy).unwrap();
            assert!(found.settles && found.reason == "Unschedulable", "{message}");
        }
        for message in [
            "0/1 nodes are available: 1 node(s) had taint {node.kubernetes.io/not-ready: }, that the pod didn't tolerate.",
            "0/1 nodes are available: 1 Insufficient cpu.",
        ] {
            assert_eq!(stuck(&unscheduled(message), &policy), None, "{message}");
        }
    }

    fn claim(class: Option<&str>, phase: &str) -> PersistentVolumeClaim {
        let mut spec = serde_json::json!({"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Mi"}}});
        if let Some(class) = class {
            spec["storageClassName"] = class.into();
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "data"}, "spec": spec, "status": {"phase": phase}
        }))
        .unwrap()
    }

    fn class(name: &str, default: bool) -> StorageClass {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "annotations": {
                "storageclass.kubernetes.io/is-default-class": default.to_string()}},
            "provisioner": "testware.io/local-path"
        }))
        .unwrap()
    }

    #[test]
    fn a_claim_is_stuck_only_when_no_class_can_provision_it() {
        let local = [class("local-path", true)];
        let missing = claim_stuck(&claim(Some("fast-ssd"), "Pending"), &local).unwrap();
        assert_eq!(missing.reason, "ProvisioningFailed");
        assert!(missing.settles, "the release may still create the class");
        assert_eq!(
            missing.detail,
            "claim data names StorageClass \"fast-ssd\", which does not exist (the cluster has: local-path)"
        );
        assert_eq!(
            claim_stuck(&claim(Some("local-path"), "Pending"), &local),
            None
        );
        assert_eq!(claim_stuck(&claim(Some("fast-ssd"), "Bound"), &[]), None);
        assert_eq!(
            claim_stuck(&claim(Some(""), "Pending"), &[]),
            None,
            "a static volume may still come"
        );
        assert_eq!(claim_stuck(&claim(None, "Pending"), &local), None);
        let no_default = claim_stuck(&claim(None, "Pending"), &[class("local-path", false)]);
        assert!(no_default.unwrap().detail.contains("no default one"));
    }

    #[test]
    fn only_unscheduled_pods_wait_for_their_claims() {
        let pod = |scheduled: &str| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "app"}], "volumes": [
                    {"name": "data", "persistentVolumeClaim": {"claimName": "data-0"}},
                    {"name": "tmp", "emptyDir": {}}]},
                "status": {"phase": "Pending", "conditions": [
                    {"type": "PodScheduled", "status": scheduled}]}
            }))
            .unwrap()
        };
        assert_eq!(unbound_claims_of(&pod("False")), vec!["data-0".to_string()]);
        assert!(unbound_claims_of(&pod("True")).is_empty());
    }
}
