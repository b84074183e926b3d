//! Why something is not ready, in words: pod phase, container states, last exit
//! and log lines, conditions and warning events — what timeout errors carry.

/// Why a pod is not ready, for timeout messages: its phase, each container's
/// state (waiting reason and message, e.g. `ImagePullBackOff … localhost/x:1`;
/// the last exit code and log lines of a crashing container), the conditions that
/// are not true (e.g. `PodScheduled False: 0/1 nodes are available …`), and its
/// latest warning events.
pub async fn explain_pod(pods: &kube::Api<k8s_openapi::api::core::v1::Pod>, name: &str) -> String {
    use k8s_openapi::api::core::v1::Event;
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
            let mut logs = pods.logs(name, &params).await.unwrap_or_default();
            if logs.trim().is_empty() {
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
        let events: kube::Api<Event> = kube::Api::namespaced(pods.clone().into_client(), ns);
        let selector = format!("involvedObject.name={name},type=Warning");
        if let Ok(list) = events
            .list(&kube::api::ListParams::default().fields(&selector))
            .await
        {
            let mut items = list.items;
            items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
            for e in items.iter().rev().take(3) {
                text.push_str(&format!(
                    "; event {}: {}",
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default().trim()
                ));
            }
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
        parts.push(format!(
            "{} {} ({}): {}",
            cond.type_,
            cond.status,
            cond.reason.clone().unwrap_or_default(),
            cond.message.clone().unwrap_or_default()
        ));
    }
    parts.join("; ")
}
