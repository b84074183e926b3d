//! The cluster's shape: how many nodes, in which groups, with which taints.
//!
//! The first node is this machine's own network namespace and runs the control
//! plane, as the single-node cluster always did. Every further node is a host of
//! its own: a network namespace joined to this machine by a veth pair, with its
//! own containerd, kubelet and kube-proxy (see [`crate::node`]). Addresses are
//! fixed by the node's index, so `down` finds everything again from the record
//! `up` writes (`shape.json` in the state directory).

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

use crate::layout::{Layout, NODE_IP, NODE_NAME, POD_CIDR};

/// The node label naming a node's group (the testware library's
/// `cluster::nodes::GROUP_LABEL`).
pub const GROUP_LABEL: &str = "testware.io/node-group";

/// Most nodes a cluster may have: the transit and pod ranges are numbered by index.
pub const MAX_NODES: usize = 8;

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Position, from 1 (the control-plane node).
    pub index: u8,
    /// Node name.
    pub name: String,
    /// Its group (the value of [`GROUP_LABEL`]), if the cluster has groups.
    pub group: Option<String>,
    /// Whether the node is tainted `GROUP_LABEL=<group>:NoSchedule`, so only pods
    /// tolerating its group run there.
    pub tainted: bool,
}

/// The nodes of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shape {
    /// In index order; never empty.
    pub nodes: Vec<NodeSpec>,
}

/// A node group as given on the command line: `NAME=COUNT` or `NAME=COUNT:taint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupArg {
    /// The group's name.
    pub name: String,
    /// How many nodes.
    pub count: usize,
    /// Tainted `NoSchedule` for pods not tolerating the group.
    pub tainted: bool,
}

impl std::str::FromStr for GroupArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || {
            format!("`{text}`: a node group is NAME=COUNT or NAME=COUNT:taint, e.g. system=1:taint")
        };
        let (name, rest) = text.split_once('=').ok_or_else(usage)?;
        let (count, flag) = match rest.split_once(':') {
            Some((count, "taint")) => (count, true),
            Some(_) => return Err(usage()),
            None => (rest, false),
        };
        let valid_name = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid_name {
            return Err(format!(
                "`{name}` is not a valid label value for a node group (letters, digits, '-', '_', '.')"
            ));
        }
        let count: usize = count.parse().map_err(|_| usage())?;
        if count == 0 {
            return Err(format!("node group `{name}` has no nodes"));
        }
        Ok(Self {
            name: name.to_owned(),
            count,
            tainted: flag,
        })
    }
}

impl Shape {
    /// One node, no groups: the default.
    pub fn single() -> Self {
        Self::of_groups(1, &[]).expect("one node is a valid shape")
    }

    /// `nodes` nodes, or the groups' nodes in the order given (the first group's
    /// first node is the control-plane node). `nodes` must match the groups' sum
    /// when both are given.
    ///
    /// # Errors
    /// No nodes, more than [`MAX_NODES`], or a count that disagrees with the groups.
    pub fn of_groups(nodes: usize, groups: &[GroupArg]) -> anyhow::Result<Self> {
        let grouped: usize = groups.iter().map(|g| g.count).sum();
        let total = if groups.is_empty() { nodes } else { grouped };
        if !groups.is_empty() && nodes != 1 && nodes != grouped {
            bail!("--nodes {nodes} disagrees with the node groups, which have {grouped} nodes (hint: leave out --nodes)");
        }
        if total == 0 || total > MAX_NODES {
            bail!("a local cluster has 1 to {MAX_NODES} nodes, not {total}");
        }
        let mut names = std::collections::BTreeSet::new();
        if !groups.iter().all(|g| names.insert(g.name.as_str())) {
            bail!("a node group is named twice");
        }
        let slots: Vec<Option<&GroupArg>> = if groups.is_empty() {
            vec![None; total]
        } else {
            groups
                .iter()
                .flat_map(|g| std::iter::repeat_n(Some(g), g.count))
                .collect()
        };
        let nodes = slots
            .into_iter()
            .enumerate()
            .map(|(i, group)| {
                let index = u8::try_from(i + 1).expect("at most MAX_NODES");
                NodeSpec {
                    index,
                    name: if index == 1 {
                        NODE_NAME.to_owned()
                    } else {
                        format!("{NODE_NAME}-{index}")
                    },
                    group: group.map(|g| g.name.clone()),
                    tainted: group.is_some_and(|g| g.tainted),
                }
            })
            .collect();
        Ok(Self { nodes })
    }

    /// More than one node.
    pub fn is_multi_node(&self) -> bool {
        self.nodes.len() > 1
    }

    /// The control-plane node.
    pub fn first(&self) -> &NodeSpec {
        &self.nodes[0]
    }

    /// The nodes after the first: each a network namespace of its own.
    pub fn extra(&self) -> &[NodeSpec] {
        &self.nodes[1..]
    }

    /// The node called `name`.
    ///
    /// # Errors
    /// No such node (naming those there are).
    pub fn node(&self, name: &str) -> anyhow::Result<&NodeSpec> {
        self.nodes.iter().find(|n| n.name == name).with_context(|| {
            format!(
                "the local cluster has no node {name} (its nodes: {})",
                self.nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }

    /// Pod range of `node`: the whole pod range on a single node, a /24 of it per
    /// node otherwise (routed between the nodes).
    pub fn pod_cidr(&self, node: &NodeSpec) -> String {
        if self.is_multi_node() {
            format!("10.244.{}.0/24", node.index - 1)
        } else {
            POD_CIDR.to_owned()
        }
    }

    /// The record `up` writes; a single node when there is none (a cluster
    /// started before shapes existed, or none at all).
    pub fn load(layout: &Layout) -> Self {
        std::fs::read_to_string(layout.shape())
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_else(Self::single)
    }

    /// Writes the record.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, layout: &Layout) -> anyhow::Result<()> {
        let path = layout.shape();
        std::fs::write(&path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }
}

impl NodeSpec {
    /// The control-plane node (this machine's own network namespace).
    pub fn is_first(&self) -> bool {
        self.index == 1
    }

    /// The node's address: for the first on `lo`, for the others on their end of
    /// the veth pair (172.31.254.4i+2/30; this machine's end is 4i+1).
    pub fn ip(&self) -> IpAddr {
        if self.is_first() {
            NODE_IP
        } else {
            IpAddr::V4(Ipv4Addr::new(172, 31, 254, 4 * self.index + 2))
        }
    }

    /// This machine's end of the node's veth pair (its default gateway).
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(172, 31, 254, 4 * self.index + 1)
    }

    /// The node's network namespace (`ip netns`).
    pub fn netns(&self) -> String {
        format!("testware-node-{}", self.index)
    }

    /// This machine's end of the node's veth pair.
    pub fn veth(&self) -> String {
        format!("testware-n{}", self.index)
    }

    /// The `--node-labels` of its kubelet.
    pub fn labels(&self) -> Option<String> {
        self.group.as_ref().map(|g| format!("{GROUP_LABEL}={g}"))
    }

    /// The `--register-with-taints` of its kubelet.
    pub fn taint(&self) -> Option<String> {
        self.group
            .as_ref()
            .filter(|_| self.tainted)
            .map(|g| format!("{GROUP_LABEL}={g}:NoSchedule"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_fill_nodes_in_order_and_bad_arguments_are_refused() {
        let groups: Vec<GroupArg> = ["system=1:taint", "processing=2"]
            .iter()
            .map(|g| g.parse().unwrap())
            .collect();
        let shape = Shape::of_groups(1, &groups).unwrap();
        let names: Vec<_> = shape.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["testware", "testware-2", "testware-3"]);
        assert_eq!(
            shape.first().taint().as_deref(),
            Some("testware.io/node-group=system:NoSchedule")
        );
        assert_eq!(
            shape.nodes[2].labels().as_deref(),
            Some("testware.io/node-group=processing")
        );
        assert_eq!(shape.nodes[2].taint(), None);
        assert_eq!(shape.nodes[2].ip().to_string(), "172.31.254.14");
        assert_eq!(shape.nodes[2].gateway().to_string(), "172.31.254.13");
        assert_eq!(shape.pod_cidr(&shape.nodes[2]), "10.244.2.0/24");
        assert_eq!(Shape::single().pod_cidr(Shape::single().first()), POD_CIDR);
        assert!(Shape::of_groups(4, &groups).is_err());
        assert!(Shape::of_groups(3, &groups).is_ok());
        assert!(Shape::of_groups(MAX_NODES + 1, &[]).is_err());
        for bad in [
            "system",
            "system=0",
            "system=x",
            "system=1:drain",
            "=1",
            "a b=1",
        ] {
            assert!(bad.parse::<GroupArg>().is_err(), "{bad}");
        }
        assert!(Shape::of_groups(1, &[groups[1].clone(), groups[1].clone()]).is_err());
        assert!(shape.node("testware-9").is_err());
    }
}
