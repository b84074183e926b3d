//! What objects' states mean, as pure functions of the objects: workload kinds,
//! pod readiness, and when a workload has rolled out. [`crate::cluster::wait`] watches
//! until these say done; [`crate::cluster::explain`] uses them to say what is not ready.
//! No I/O here, so every judgement is unit-tested on fixtures.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;

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
}
