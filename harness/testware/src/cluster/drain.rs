//! Cordon, uncordon and drain a node as `kubectl drain` does, on any cluster:
//! the node marked unschedulable, then each of its pods evicted through the
//! eviction API, so PodDisruptionBudgets are honoured — an eviction a budget
//! refuses is retried until the budget allows it or the drain's time is up, and
//! then the drain fails naming each pod still there and the budget that holds it.
//! DaemonSet pods and static (mirror) pods stay, as with `kubectl drain
//! --ignore-daemonsets`. Cases reach these through
//! [`crate::cluster::faults::NodeFaults`], given only to a case that holds the
//! cluster alone.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{EvictParams, ListParams, Patch, PatchParams};

use crate::cluster::{api_error, ClusterError};

/// Marks node `name` unschedulable: running pods stay, new ones go elsewhere.
///
/// # Errors
/// The node cannot be patched (missing, or no RBAC).
pub(crate) async fn cordon(client: &kube::Client, name: &str) -> Result<(), ClusterError> {
    set_unschedulable(client, name, true).await
}

/// Makes node `name` schedulable again.
///
/// # Errors
/// The node cannot be patched (missing, or no RBAC).
pub(crate) async fn uncordon(client: &kube::Client, name: &str) -> Result<(), ClusterError> {
    set_unschedulable(client, name, false).await
}

async fn set_unschedulable(
    client: &kube::Client,
    name: &str,
    on: bool,
) -> Result<(), ClusterError> {
    kube::Api::<Node>::all(client.clone())
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"unschedulable": on}})),
        )
        .await
        .map_err(api_error(format!(
            "{} node {name}",
            if on { "cordon" } else { "uncordon" }
        )))?;
    Ok(())
}

/// What a finished drain did.
#[derive(Debug, Clone)]
pub struct Drained {
    /// The pods evicted, `namespace/name`, in eviction order.
    pub evicted: Vec<String>,
    /// Evictions a disruption budget refused before it allowed them.
    pub refusals: usize,
    /// From cordon to the last evicted pod gone.
    pub took: Duration,
}

/// A pod a drain could not move, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockedPod {
    /// `namespace/name`.
    pub pod: String,
    /// The API server's refusal, with the budget that holds the pod.
    pub reason: String,
}

/// Why a drain did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// A request failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Pods were still on the node when the time was up.
    #[error("drain of node {node} not done after {waited:?}: {}", describe(.blocked))]
    Blocked {
        /// The node.
        node: String,
        /// How long it tried.
        waited: Duration,
        /// The pods still there.
        blocked: Vec<BlockedPod>,
    },
}

fn describe(blocked: &[BlockedPod]) -> String {
    blocked
        .iter()
        .map(|b| format!("{} ({})", b.pod, b.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The pods a drain moves: on `node`, not owned by a DaemonSet, not a static
/// pod's mirror, not finished.
pub fn to_evict(pods: &[Pod]) -> Vec<&Pod> {
    pods.iter()
        .filter(|p| {
            let owned_by_daemonset = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "DaemonSet");
            let mirror = p
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
            let finished = p
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|phase| phase == "Succeeded" || phase == "Failed");
            !owned_by_daemonset && !mirror && !finished
        })
        .collect()
}

/// Cordons node `name` and evicts its pods (see the module), waiting until each
/// is gone. A pod whose disruption budget allows no disruption now is not
/// evicted but counted as refused and tried again a second later, until
/// `timeout` (the client's own retries of a refused eviction would hide both).
///
/// # Errors
/// A request fails, or pods remain after `timeout` ([`DrainError::Blocked`]).
pub(crate) async fn drain(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> Result<Drained, DrainError> {
    let started = Instant::now();
    cordon(client, name).await?;
    let pods_api = kube::Api::<Pod>::all(client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={name}"));
    let listed = pods_api
        .list(&on_node)
        .await
        .map_err(api_error(format!("list the pods of node {name}")))?;
    let mut pending: BTreeMap<(String, String), String> = to_evict(&listed.items)
        .into_iter()
        .map(|p| {
            let key = (
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
            );
            (key, String::new())
        })
        .collect();
    let mut evicted = Vec::new();
    let mut refusals = 0;
    let deadline = started + timeout;
    // Evict each pod; those a budget refuses again a second later.
    while !pending.is_empty() {
        let keys: Vec<(String, String)> = pending.keys().cloned().collect();
        for (ns, pod) in keys {
            let budgets = budgets_of(client, &ns, &pod).await;
            if let Ok(held) = &budgets {
                if held.iter().any(|b| allowed(b) == 0) {
                    refusals += 1;
                    pending.insert((ns, pod), describe_budgets(held));
                    continue;
                }
            }
            let api = kube::Api::<Pod>::namespaced(client.clone(), &ns);
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(evicted_now) =
                tokio::time::timeout(left, api.evict(&pod, &EvictParams::default())).await
            else {
                break;
            };
            match evicted_now {
                Ok(_) => {
                    pending.remove(&(ns.clone(), pod.clone()));
                    evicted.push(format!("{ns}/{pod}"));
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    pending.remove(&(ns, pod));
                }
                // Its namespace is being deleted, and the pod with it: as
                // `kubectl drain`, no eviction; the wait below sees it go.
                Err(kube::Error::Api(status))
                    if status.code == 403 && status.message.contains("being terminated") =>
                {
                    pending.remove(&(ns, pod));
                }
                Err(kube::Error::Api(status)) if status.code == 429 => {
                    refusals += 1;
                    pending.insert((ns, pod), status.message.clone());
                }
                Err(e) => {
                    return Err(api_error(format!("evict pod {ns}/{pod}"))(e).into());
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let mut blocked = Vec::new();
            for ((ns, pod), refusal) in &pending {
                let reason = match budgets_of(client, ns, pod).await {
                    Ok(held) => describe_budgets(&held),
                    Err(e) if refusal.is_empty() => e,
                    Err(_) => refusal.clone(),
                };
                blocked.push(BlockedPod {
                    pod: format!("{ns}/{pod}"),
                    reason: format!("eviction refused: {reason}"),
                });
            }
            return Err(DrainError::Blocked {
                node: name.to_owned(),
                waited: started.elapsed(),
                blocked,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Evicted pods are deleted gracefully: wait until none is left on the node.
    loop {
        let left: Vec<String> = to_evict(
            &pods_api
                .list(&on_node)
                .await
                .map_err(api_error(format!("list the pods of node {name}")))?
                .items,
        )
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap_or_default(),
                p.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            return Err(DrainError::Blocked {
                node: name.to_owned(),
                waited: started.elapsed(),
                blocked: left
                    .into_iter()
                    .map(|pod| BlockedPod {
                        pod,
                        reason: "evicted but still terminating".to_owned(),
                    })
                    .collect(),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Drained {
        evicted,
        refusals,
        took: started.elapsed(),
    })
}

/// The disruption budgets selecting pod `ns/pod`.
async fn budgets_of(
    client: &kube::Client,
    ns: &str,
    pod: &str,
) -> Result<Vec<PodDisruptionBudget>, String> {
    let labels = kube::Api::<Pod>::namespaced(client.clone(), ns)
        .get(pod)
        .await
        .map_err(|e| format!("its budgets could not be read ({e})"))?
        .metadata
        .labels
        .unwrap_or_default();
    // policy/v1 where served, else v1beta1: the same fields.
    let budgets = match list_budgets(client, ns, "policy/v1").await {
        Ok(b) => b,
        Err(_) => list_budgets(client, ns, "policy/v1beta1")
            .await
            .map_err(|e| format!("its budgets could not be listed ({e})"))?,
    };
    Ok(budgets
        .into_iter()
        .filter(|b| selects(b, &labels))
        .collect())
}

/// A field of `budget`'s status as a number (0 when unset). Read through JSON:
/// k8s-openapi's types for these fields differ between API versions.
fn status_count(budget: &PodDisruptionBudget, field: &str) -> i64 {
    serde_json::to_value(&budget.status)
        .ok()
        .and_then(|status| status.get(field).and_then(serde_json::Value::as_i64))
        .unwrap_or(0)
}

/// Disruptions `budget` allows now.
fn allowed(budget: &PodDisruptionBudget) -> i64 {
    status_count(budget, "disruptionsAllowed")
}

/// The budgets holding a pod, with what each allows now.
fn describe_budgets(budgets: &[PodDisruptionBudget]) -> String {
    let holding: Vec<String> = budgets
        .iter()
        .map(|b| {
            let spec = b.spec.clone().unwrap_or_default();
            let rule = match (spec.min_available, spec.max_unavailable) {
                (Some(min), _) => format!("minAvailable {}", int_or_string(&min)),
                (None, Some(max)) => format!("maxUnavailable {}", int_or_string(&max)),
                (None, None) => "no limit".to_owned(),
            };
            format!(
                "PodDisruptionBudget {} ({rule}: {} healthy of {} desired, {} disruption(s) allowed)",
                b.metadata.name.as_deref().unwrap_or_default(),
                status_count(b, "currentHealthy"),
                status_count(b, "desiredHealthy"),
                allowed(b)
            )
        })
        .collect();
    if holding.is_empty() {
        "no PodDisruptionBudget selects it".to_owned()
    } else {
        format!(
            "held by {} (hint: more healthy replicas elsewhere, or a budget that allows one down)",
            holding.join(", ")
        )
    }
}

async fn list_budgets(
    client: &kube::Client,
    ns: &str,
    api_version: &str,
) -> Result<Vec<PodDisruptionBudget>, kube::Error> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = kube::discovery::ApiResource {
        group: group.to_owned(),
        version: version.to_owned(),
        api_version: api_version.to_owned(),
        kind: "PodDisruptionBudget".to_owned(),
        plural: "poddisruptionbudgets".to_owned(),
    };
    let listed =
        kube::Api::<kube::api::DynamicObject>::namespaced_with(client.clone(), ns, &resource)
            .list(&ListParams::default())
            .await?;
    Ok(listed
        .items
        .into_iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect())
}

fn selects(budget: &PodDisruptionBudget, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = budget.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let by_labels = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expressions = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    by_labels && by_expressions
}

fn int_or_string(value: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString) -> String {
    match value {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_drain_leaves_daemonset_mirror_and_finished_pods() {
        let pods = vec![
            pod(serde_json::json!({"metadata": {"name": "web-1"}})),
            pod(
                serde_json::json!({"metadata": {"name": "agent", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "uid": "u"}]}}),
            ),
            pod(serde_json::json!({"metadata": {"name": "static",
                "annotations": {"kubernetes.io/config.mirror": "x"}}})),
            pod(
                serde_json::json!({"metadata": {"name": "job-1"}, "status": {"phase": "Succeeded"}}),
            ),
            pod(
                serde_json::json!({"metadata": {"name": "worker", "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "w", "uid": "u"}]}}),
            ),
        ];
        let names: Vec<_> = to_evict(&pods)
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["web-1", "worker"]);
    }

    #[test]
    fn budgets_select_by_labels_and_expressions() {
        let budget: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["front"]}]}}
        }))
        .unwrap();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert!(selects(
            &budget,
            &labels(&[("app", "web"), ("tier", "front")])
        ));
        assert!(!selects(&budget, &labels(&[("app", "web")])));
        assert!(!selects(
            &budget,
            &labels(&[("app", "db"), ("tier", "front")])
        ));
        let blocked = DrainError::Blocked {
            node: "n2".into(),
            waited: Duration::from_secs(3),
            blocked: vec![BlockedPod {
                pod: "ns/web-1".into(),
                reason: "eviction refused: budget".into(),
            }],
        };
        assert_eq!(
            blocked.to_string(),
            "drain of node n2 not done after 3s: ns/web-1 (eviction refused: budget)"
        );
    }
}
