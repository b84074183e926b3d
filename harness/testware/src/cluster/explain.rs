//! Why something is not ready, in words: pod phase, container states, last exit
//! and log lines, conditions and warning events — what timeout errors carry.

/// Why a pod is not ready, for timeout messages: its phase, each container's
/// state (waiting reason and message, e.g. `ImagePullBackOff … localhost/x:1`;
/// the last exit code and log lines of a crashing container), the conditions that
/// are not true (e.g. `PodScheduled False: 0/1 nodes are available …`), and its
/// latest warning events.
pub async fn explain_pod(pods: &kube::Api<k8s_openapi::api::core::v1::Pod>, name: &str) -> String {
    let Ok(Some(pod)) = pods.get_opt(name).await else {
        return format!("pod {name} does not exist");
    };
    let mut text = describe_pod(&pod);
    for status in pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
    {
        // The container that exited: the current one if it is terminated, else the previous one.
        let current = status.state.as_ref().and_then(|s| s.terminated.as_ref());
        let previous = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref());
        if let Some(last) = current.or(previous) {
            let params = kube::api::LogParams {
                container: Some(status.name.clone()),
                previous: current.is_none(),
                tail_lines: Some(5),
                ..Default::default()
            };
            // The kubelet answers with an error text when that instance's log is gone.
            let gone = |logs: &str| {
                logs.trim().is_empty() || logs.starts_with("unable to retrieve container logs")
            };
            let mut logs = pods.logs(name, &params).await.unwrap_or_default();
            if gone(&logs) {
                // The kubelet may already have replaced or removed that instance: try the other one.
                let other = kube::api::LogParams {
                    previous: !params.previous,
                    ..params
                };
                logs = pods.logs(name, &other).await.unwrap_or_default();
            }
            text.push_str(&format!(
                "; container {} last exit {} ({}), last log lines: {}",
                status.name,
                last.exit_code,
                last.reason.clone().unwrap_or_default(),
                logs.trim().replace('\n', " | ")
            ));
        }
    }
    if let Some(ns) = pod.metadata.namespace.as_deref() {
        let events = events_of(&pods.clone().into_client(), ns, name, false).await;
        if !events.is_empty() {
            text.push_str("; ");
            text.push_str(&events);
        }
    }
    text
}

/// Phase and container states of a pod, for messages.
pub fn describe_pod(pod: &k8s_openapi::api::core::v1::Pod) -> String {
    let Some(status) = &pod.status else {
        return "no status".into();
    };
    let mut parts = vec![format!(
        "phase {}",
        status.phase.clone().unwrap_or_default()
    )];
    for c in status.container_statuses.iter().flatten() {
        let state = c.state.as_ref();
        let detail = if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            format!(
                "waiting: {} {}",
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default()
            )
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            format!(
                "terminated: exit {} {}",
                t.exit_code,
                t.reason.clone().unwrap_or_default()
            )
        } else {
            "running".into()
        };
        parts.push(format!("container {} {}", c.name, detail.trim()));
    }
    for cond in status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status != "True")
    {
        let message = cond.message.clone().unwrap_or_default();
        let hint = scheduling_hint(&message)
            .map(|h| format!(" (hint: {h})"))
            .unwrap_or_default();
        parts.push(format!(
            "{} {} ({}): {message}{hint}",
            cond.type_,
            cond.status,
            cond.reason.clone().unwrap_or_default(),
        ));
    }
    parts.join("; ")
}

/// The remedy for a scheduling failure the chart cannot fix: a node the kubelet
/// tainted for a resource pressure (its message names the taint).
fn scheduling_hint(message: &str) -> Option<&'static str> {
    [
        ("node.kubernetes.io/disk-pressure", "the node is short of disk space; free some where it keeps images and pod data (for kind, k3d and the local cluster: this machine's disk, see `df -h`)"),
        ("node.kubernetes.io/memory-pressure", "the node is short of memory"),
        ("node.kubernetes.io/pid-pressure", "the node runs too many processes"),
        ("node.kubernetes.io/not-ready", "the node is not Ready; see `kubectl describe node`"),
        ("node.kubernetes.io/unschedulable", "the node is cordoned (kubectl uncordon)"),
    ]
    .into_iter()
    .find(|(taint, _)| message.contains(taint))
    .map(|(_, hint)| hint)
}

/// The latest events (Warnings only, or all) about object `name` in `namespace`,
/// newest first, as `event Reason: message` parts joined by `; `.
pub async fn events_of(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    all_types: bool,
) -> String {
    use k8s_openapi::api::core::v1::Event;
    let events: kube::Api<Event> = kube::Api::namespaced(client.clone(), namespace);
    let mut selector = format!("involvedObject.name={name}");
    if !all_types {
        selector.push_str(",type=Warning");
    }
    let Ok(list) = events
        .list(&kube::api::ListParams::default().fields(&selector))
        .await
    else {
        return String::new();
    };
    let mut items = list.items;
    items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
    items
        .iter()
        .rev()
        .take(3)
        .map(|e| {
            format!(
                "event {}: {}",
                e.reason.clone().unwrap_or_default(),
                e.message.clone().unwrap_or_default().trim()
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `k=v,k=v` from a label map, for list selectors.
pub fn selector_string(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Why workload `kind/name` is not rolled out: each of its pods that is not ready
/// explained (see [`explain_pod`]), or — when it has no pods — its own warning
/// events and those of its ReplicaSets (quota, admission and similar refusals).
pub async fn explain_workload(
    client: &kube::Client,
    namespace: &str,
    kind: crate::cluster::status::WorkloadKind,
    name: &str,
) -> String {
    use crate::cluster::status::WorkloadKind;
    use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::Pod;
    let labels = match kind {
        WorkloadKind::Deployment => pod_selector::<Deployment>(client, namespace, name).await,
        WorkloadKind::StatefulSet => pod_selector::<StatefulSet>(client, namespace, name).await,
        WorkloadKind::DaemonSet => pod_selector::<DaemonSet>(client, namespace, name).await,
        WorkloadKind::Job => pod_selector::<Job>(client, namespace, name).await,
    };
    let Some(labels) = labels else {
        return format!("{} {name} does not exist", kind.as_str());
    };
    let selector = selector_string(&labels);
    let pods: kube::Api<Pod> = namespaced(client, namespace);
    let listed = pods
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let mut parts = Vec::new();
    for pod in listed.iter().filter(|p| {
        !crate::cluster::status::is_ready(p)
            && p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Succeeded")
    }) {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        parts.push(format!(
            "pod {pod_name}: {}",
            explain_pod(&pods, &pod_name).await
        ));
        if parts.len() == 3 {
            break;
        }
    }
    if listed.is_empty() {
        parts.push(format!("{} {name} has no pods", kind.as_str()));
        let own = events_of(client, namespace, name, false).await;
        parts.extend(Some(own).filter(|e| !e.is_empty()));
        if kind == WorkloadKind::Deployment {
            let sets: kube::Api<ReplicaSet> = namespaced(client, namespace);
            let owned = sets
                .list(&kube::api::ListParams::default().labels(&selector))
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            for set in owned {
                let set_name = set.metadata.name.unwrap_or_default();
                let events = events_of(client, namespace, &set_name, false).await;
                if !events.is_empty() {
                    parts.push(format!("ReplicaSet {set_name}: {events}"));
                }
            }
        }
    }
    parts.join("; ")
}

/// The `spec.selector.matchLabels` of workload `name` (every workload kind keeps
/// it there); `None` when the workload does not exist.
async fn pod_selector<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Option<std::collections::BTreeMap<String, String>>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    let object = namespaced::<K>(client, namespace)
        .get_opt(name)
        .await
        .ok()
        .flatten()?;
    let value = serde_json::to_value(object).ok()?;
    Some(
        serde_json::from_value(value["spec"]["selector"]["matchLabels"].clone())
            .unwrap_or_default(),
    )
}

/// Why a Service has no ready endpoint: the pods its selector picks, explained,
/// or that it selects none.
pub async fn explain_service(client: &kube::Client, namespace: &str, service: &str) -> String {
    use k8s_openapi::api::core::v1::{Pod, Service};
    let Ok(Some(svc)) = namespaced::<Service>(client, namespace)
        .get_opt(service)
        .await
    else {
        return format!("Service {service} does not exist");
    };
    let Some(labels) = svc.spec.and_then(|s| s.selector) else {
        return format!("Service {service} has no selector: its Endpoints are managed by hand");
    };
    let selector = selector_string(&labels);
    let pods: kube::Api<Pod> = namespaced(client, namespace);
    let listed = pods
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    if listed.is_empty() {
        return format!("no pod matches the Service's selector {selector}");
    }
    let mut parts = Vec::new();
    for pod in listed
        .iter()
        .filter(|p| !crate::cluster::status::is_ready(p))
        .take(3)
    {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        parts.push(format!(
            "pod {pod_name}: {}",
            explain_pod(&pods, &pod_name).await
        ));
    }
    parts.join("; ")
}

/// Phase and true conditions of a namespace (what content keeps it terminating).
pub fn describe_namespace(ns: &k8s_openapi::api::core::v1::Namespace) -> String {
    let Some(status) = &ns.status else {
        return "no status".into();
    };
    let mut parts = vec![format!(
        "phase {}",
        status.phase.clone().unwrap_or_default()
    )];
    for c in status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status == "True")
    {
        parts.push(format!(
            "{}: {}",
            c.type_,
            c.message.clone().unwrap_or_default().trim()
        ));
    }
    parts.join("; ")
}

fn namespaced<K>(client: &kube::Client, namespace: &str) -> kube::Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    kube::Api::namespaced(client.clone(), namespace)
}

/// Text a data-path helper adds to its timeout messages (e.g. the writer's
/// counters and last log lines), computed when the timeout happens.
pub type Explainer = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>> + Send + Sync,
>;

/// Wraps an async closure as an [`Explainer`].
pub fn explainer<F, Fut>(explain: F) -> Explainer
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = String> + Send + 'static,
{
    std::sync::Arc::new(move || Box::pin(explain()))
}

#[cfg(test)]
mod tests {
    use super::describe_pod;

    #[test]
    fn a_pod_kept_off_a_disk_pressured_node_says_so_with_a_hint() {
        let pod = serde_json::from_value(serde_json::json!({
            "status": {"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 node(s) had taint {node.kubernetes.io/disk-pressure: }, that the pod didn't tolerate.",
            }]},
        }))
        .expect("a pod");
        let text = describe_pod(&pod);
        assert!(
            text.ends_with("that the pod didn't tolerate. (hint: the node is short of disk space; free some where it keeps images and pod data (for kind, k3d and the local cluster: this machine's disk, see `df -h`))"),
            "{text}"
        );
    }

    #[test]
    fn a_pod_kept_off_by_its_own_requests_gets_no_node_hint() {
        let pod = serde_json::from_value(serde_json::json!({
            "status": {"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 Insufficient cpu.",
            }]},
        }))
        .expect("a pod");
        assert!(!describe_pod(&pod).contains("hint"));
    }
}
