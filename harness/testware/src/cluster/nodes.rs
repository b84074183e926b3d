//! The cluster's nodes, the groups they form (by a label, as node pools and
//! node groups are marked), and where pods really run — on any cluster, so a
//! case can check that the scheduler put a release's pods where its
//! nodeSelector, tolerations and affinity say, not only that the values say so.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;

use crate::cluster::{api_error, ClusterError};

/// The label that names a node's group unless a case says another
/// (`eks.amazonaws.com/nodegroup`, `cloud.google.com/gke-nodepool`, …).
pub const GROUP_LABEL: &str = "testware.io/node-group";

/// The group of nodes without the group label.
pub const NO_GROUP: &str = "(no group)";

/// One node as a placement check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// Its group (the group label's value), or [`NO_GROUP`].
    pub group: String,
    /// Its taints as `key=value:Effect`.
    pub taints: Vec<String>,
    /// Its `Ready` condition is true.
    pub ready: bool,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
}

impl NodeInfo {
    /// `node` with its group read from `group_label`.
    pub fn of(node: &Node, group_label: &str) -> Self {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let spec = node.spec.clone().unwrap_or_default();
        Self {
            name: node.metadata.name.clone().unwrap_or_default(),
            group: labels
                .get(group_label)
                .cloned()
                .unwrap_or_else(|| NO_GROUP.to_owned()),
            taints: spec
                .taints
                .unwrap_or_default()
                .iter()
                .map(|t| match &t.value {
                    Some(value) => format!("{}={value}:{}", t.key, t.effect),
                    None => format!("{}:{}", t.key, t.effect),
                })
                .collect(),
            ready: node
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True")),
            unschedulable: spec.unschedulable.unwrap_or(false),
        }
    }
}

/// The cluster's nodes, sorted by name, grouped by `group_label`.
///
/// # Errors
/// Listing nodes fails (e.g. no RBAC to list them).
pub async fn nodes(
    client: &kube::Client,
    group_label: &str,
) -> Result<Vec<NodeInfo>, ClusterError> {
    let mut nodes: Vec<NodeInfo> = kube::Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(api_error("list nodes"))?
        .items
        .iter()
        .map(|n| NodeInfo::of(n, group_label))
        .collect();
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

/// Where pods run: per node and per group (pod names, sorted), and the pods
/// not on any node yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// Node name → its pods.
    pub by_node: BTreeMap<String, Vec<String>>,
    /// Group → its pods.
    pub by_group: BTreeMap<String, Vec<String>>,
    /// Pods the scheduler has not placed.
    pub unscheduled: Vec<String>,
    /// Each placed pod → (node, group).
    pub of_pod: BTreeMap<String, (String, String)>,
}

impl Placement {
    /// `pods` placed on `nodes` (a node not in the list counts as [`NO_GROUP`]).
    pub fn of(pods: &[Pod], nodes: &[NodeInfo]) -> Self {
        let mut placement = Self::default();
        for pod in pods {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
                placement.unscheduled.push(name);
                continue;
            };
            let group = nodes
                .iter()
                .find(|n| n.name == node)
                .map_or_else(|| NO_GROUP.to_owned(), |n| n.group.clone());
            placement
                .by_node
                .entry(node.clone())
                .or_default()
                .push(name.clone());
            placement
                .by_group
                .entry(group.clone())
                .or_default()
                .push(name.clone());
            placement.of_pod.insert(name, (node, group));
        }
        for pods in placement
            .by_node
            .values_mut()
            .chain(placement.by_group.values_mut())
        {
            pods.sort();
        }
        placement.unscheduled.sort();
        placement
    }

    /// The pods (among those whose name starts with `prefix`) that are not on a
    /// node of `group`, each as `pod on node N (group G)`; unscheduled ones too.
    pub fn outside(&self, prefix: &str, group: &str) -> Vec<String> {
        let mut wrong: Vec<String> = self
            .of_pod
            .iter()
            .filter(|(pod, (_, g))| pod.starts_with(prefix) && g != group)
            .map(|(pod, (node, g))| format!("{pod} on node {node} (group {g})"))
            .collect();
        wrong.extend(
            self.unscheduled
                .iter()
                .filter(|p| p.starts_with(prefix))
                .map(|p| format!("{p} not scheduled")),
        );
        wrong
    }
}

impl std::fmt::Display for Placement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (group, pods) in &self.by_group {
            let nodes: Vec<&str> = self
                .of_pod
                .iter()
                .filter(|(_, (_, g))| g == group)
                .map(|(_, (n, _))| n.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            writeln!(
                f,
                "group {group} (nodes {}): {}",
                nodes.join(", "),
                pods.join(", ")
            )?;
        }
        if !self.unscheduled.is_empty() {
            writeln!(f, "not scheduled: {}", self.unscheduled.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, group: Option<&str>) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            group: group.unwrap_or(NO_GROUP).into(),
            taints: vec![],
            ready: true,
            unschedulable: false,
        }
    }

    fn pod(name: &str, node: Option<&str>) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"containers": [], "nodeName": node},
        }))
        .unwrap()
    }

    #[test]
    fn pods_are_placed_by_node_and_group_and_misplaced_ones_named() {
        let nodes = [
            node("a", Some("system")),
            node("b", Some("processing")),
            node("c", None),
        ];
        let pods = [
            pod("redis-0", Some("a")),
            pod("worker-1", Some("b")),
            pod("worker-2", Some("a")),
            pod("worker-3", None),
            pod("web-1", Some("c")),
        ];
        let placement = Placement::of(&pods, &nodes);
        assert_eq!(placement.by_node["a"], ["redis-0", "worker-2"]);
        assert_eq!(placement.by_group["processing"], ["worker-1"]);
        assert_eq!(placement.by_group[NO_GROUP], ["web-1"]);
        assert_eq!(placement.unscheduled, ["worker-3"]);
        assert_eq!(
            placement.outside("worker-", "processing"),
            [
                "worker-2 on node a (group system)",
                "worker-3 not scheduled"
            ]
        );
        assert!(placement.outside("redis-", "system").is_empty());
        assert_eq!(
            placement.to_string(),
            "group (no group) (nodes c): web-1\ngroup processing (nodes b): worker-1\ngroup system (nodes a): redis-0, worker-2\nnot scheduled: worker-3\n"
        );
    }

    #[test]
    fn a_nodes_group_taints_readiness_and_cordon_are_read() {
        let node: Node = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n1", "labels": {GROUP_LABEL: "system"}},
            "spec": {"unschedulable": true, "taints": [{"key": "dedicated", "value": "system", "effect": "NoSchedule"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }))
        .unwrap();
        let info = NodeInfo::of(&node, GROUP_LABEL);
        assert_eq!(info.group, "system");
        assert_eq!(info.taints, ["dedicated=system:NoSchedule"]);
        assert!(info.ready && info.unschedulable);
        assert_eq!(NodeInfo::of(&node, "other").group, NO_GROUP);
    }
}
