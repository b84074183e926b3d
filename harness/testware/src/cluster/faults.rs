//! Faults on nodes, for clusters that can have them: a node *lost* (its
//! kubelet, runtime and containers stopped, as a reclaimed spot instance) or
//! *cut off* (its network down while its pods keep running). The cluster says
//! how, in its kubeconfig: the extension [`NODE_CONTROL_EXTENSION`] names a
//! command that takes `lose NODE`, `cut-off NODE` and `restore NODE` — the
//! embedded cluster's is `testware cluster node`. A fault is undone when its
//! [`NodeFault`] is restored or dropped, so a failing case leaves no node down.
//!
//! Cases change nodes through [`NodeFaults`] — lose, cut off, cordon, drain —
//! which only a case holding the cluster exclusively gets
//! ([`crate::cluster::sharing`]): a node changed under other cases evicts or
//! loses their pods, and their budgets refuse its drain.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::drain::{self, DrainError, Drained};
use crate::cluster::sharing::{ClusterHold, HoldKind};
use crate::cluster::ClusterError;
use crate::config::RunConfig;

/// The mark of a case that changes nodes: the runner holds the cluster
/// exclusively for it ([`crate::cluster::sharing`]).
pub const EXCLUSIVE_MARK: &str = "exclusive";

/// The ways to change nodes — lose, cut off, cordon, drain — for as long as
/// the cluster is held exclusively: a case marked [`EXCLUSIVE_MARK`] gets them
/// from `Ctx::node_faults`, a tool from [`NodeFaults::under`].
#[derive(Clone)]
pub struct NodeFaults {
    client: kube::Client,
    config: Arc<RunConfig>,
    _hold: Option<Arc<ClusterHold>>,
}

impl std::fmt::Debug for NodeFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeFaults").finish_non_exhaustive()
    }
}

impl NodeFaults {
    /// The node faults of `hold`'s holder.
    ///
    /// # Errors
    /// The hold is shared ([`FaultError::NotExclusive`]).
    pub fn under(
        hold: Arc<ClusterHold>,
        client: kube::Client,
        config: Arc<RunConfig>,
    ) -> Result<Self, FaultError> {
        match hold.kind() {
            HoldKind::Exclusive => Ok(Self::new(Some(hold), client, config)),
            HoldKind::Shared => Err(FaultError::NotExclusive {
                case: "this holder".into(),
            }),
        }
    }

    /// For a case marked exclusive: its hold (none with holds off).
    pub(crate) fn new(
        hold: Option<Arc<ClusterHold>>,
        client: kube::Client,
        config: Arc<RunConfig>,
    ) -> Self {
        Self {
            client,
            config,
            _hold: hold,
        }
    }

    /// Injects `fault` on `node` through the cluster's node-control command
    /// (see [`NodeControl::inject`]).
    ///
    /// # Errors
    /// The cluster cannot lose or cut off nodes, or the command fails.
    pub fn inject(&self, node: &str, fault: Fault) -> Result<NodeFault, FaultError> {
        node_control(&self.config)?.inject(node, fault)
    }

    /// Marks `node` unschedulable (`kubectl cordon`).
    ///
    /// # Errors
    /// The node cannot be patched.
    pub async fn cordon(&self, node: &str) -> Result<(), ClusterError> {
        drain::cordon(&self.client, node).await
    }

    /// Makes `node` schedulable again (`kubectl uncordon`).
    ///
    /// # Errors
    /// The node cannot be patched.
    pub async fn uncordon(&self, node: &str) -> Result<(), ClusterError> {
        drain::uncordon(&self.client, node).await
    }

    /// Cordons `node` and evicts its pods as `kubectl drain` does ([`drain`]).
    ///
    /// # Errors
    /// A request fails, or pods remain after `timeout`.
    pub async fn drain(&self, node: &str, timeout: Duration) -> Result<Drained, DrainError> {
        drain::drain(&self.client, node, timeout).await
    }
}

/// The kubeconfig cluster extension naming the node-control command.
pub const NODE_CONTROL_EXTENSION: &str = "testware.dev/node-control";

/// The content of the [`NODE_CONTROL_EXTENSION`] extension.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct NodeControl {
    /// The command; `lose|cut-off|restore NODE` is appended.
    pub command: Vec<String>,
}

/// Which fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Kubelet, runtime and every container of the node stopped.
    Lost,
    /// The node's network down; its pods keep running, unreachable.
    CutOff,
}

impl Fault {
    fn verb(self) -> &'static str {
        match self {
            Self::Lost => "lose",
            Self::CutOff => "cut-off",
        }
    }
}

/// Why a fault could not be injected or undone.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The cluster's kubeconfig names no node-control command.
    #[error("the cluster of context {context:?} cannot lose or cut off a node: its kubeconfig has no {NODE_CONTROL_EXTENSION} extension (hint: the embedded cluster has one: `testware cluster up --nodes 3`; on kind, stop the node's container)")]
    Unsupported {
        /// The kube context.
        context: String,
    },
    /// The extension is not `{command: [...]}`.
    #[error("extension {NODE_CONTROL_EXTENSION} of context {context:?} is not {{command: [..]}}: {detail}")]
    Malformed {
        /// The kube context.
        context: String,
        /// The parse error.
        detail: String,
    },
    /// A case that does not hold the cluster exclusively asked to change nodes.
    #[error("{case} changes nodes but does not hold the cluster alone: its drains, lost and cut-off nodes would evict other cases' pods, and their budgets refuse its evictions (hint: mark the case `{EXCLUSIVE_MARK}` — `cases![chart_deploy({EXCLUSIVE_MARK}): ...]` or `Case::mark(\"{EXCLUSIVE_MARK}\")` — and the runner holds the cluster for it alone, the other cases waiting)")]
    NotExclusive {
        /// The case.
        case: String,
    },
    /// The command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Exit status and stderr.
        detail: String,
    },
}

/// The node-control command of the run's cluster.
///
/// # Errors
/// The kubeconfig names none, or not as `{command: [...]}`.
pub fn node_control(config: &RunConfig) -> Result<NodeControl, FaultError> {
    let (context, extension) =
        crate::containers::images::cluster_extension(config, NODE_CONTROL_EXTENSION);
    let value = extension.ok_or_else(|| FaultError::Unsupported {
        context: context.clone(),
    })?;
    let control: NodeControl =
        serde_json::from_value(value).map_err(|e| FaultError::Malformed {
            context: context.clone(),
            detail: e.to_string(),
        })?;
    if control.command.is_empty() {
        return Err(FaultError::Malformed {
            context,
            detail: "the command is empty".to_owned(),
        });
    }
    Ok(control)
}

impl NodeControl {
    fn run(&self, verb: &str, node: &str) -> Result<(), FaultError> {
        let line = format!("{} {verb} {node}", self.command.join(" "));
        let out = Command::new(&self.command[0])
            .args(&self.command[1..])
            .args([verb, node])
            .output()
            .map_err(|e| FaultError::Command {
                command: line.clone(),
                detail: e.to_string(),
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(FaultError::Command {
                command: line,
                detail: format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })
        }
    }

    /// Injects `fault` on `node`; the fault lasts until the returned guard is
    /// restored or dropped.
    ///
    /// # Errors
    /// The command fails (e.g. the node is the control plane's, or unknown).
    pub(crate) fn inject(&self, node: &str, fault: Fault) -> Result<NodeFault, FaultError> {
        tracing::info!(node, fault = fault.verb(), "node fault");
        let guard = NodeFault {
            control: self.clone(),
            node: node.to_owned(),
            fault,
            restored: false,
        };
        self.run(fault.verb(), node)?;
        Ok(guard)
    }
}

/// A fault in force on a node: [`NodeFault::restore`] undoes it and says
/// whether that worked; dropping it undoes it too (errors then printed).
#[derive(Debug)]
pub struct NodeFault {
    control: NodeControl,
    node: String,
    fault: Fault,
    restored: bool,
}

impl NodeFault {
    /// The node.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The fault.
    pub fn fault(&self) -> Fault {
        self.fault
    }

    /// Undoes the fault: the node's link up, its daemons running and healthy.
    ///
    /// # Errors
    /// The command fails.
    pub fn restore(mut self) -> Result<(), FaultError> {
        self.restored = true;
        self.control.run("restore", &self.node)
    }
}

impl Drop for NodeFault {
    fn drop(&mut self) {
        if !self.restored {
            if let Err(e) = self.control.run("restore", &self.node) {
                eprintln!("node {}: undoing the fault failed: {e}", self.node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_undone_when_dropped_and_failures_name_the_command() {
        let dir = std::env::temp_dir().join(format!("node-control-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("calls");
        let control = NodeControl {
            command: vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "echo \"$1 $2\" >> {}; [ \"$2\" != bad ] || {{ echo no such node >&2; exit 3; }}",
                    log.display()
                ),
                "node-control".into(),
            ],
        };
        {
            let fault = control.inject("n2", Fault::Lost).unwrap();
            assert_eq!(fault.node(), "n2");
        }
        control
            .inject("n3", Fault::CutOff)
            .unwrap()
            .restore()
            .unwrap();
        let calls = std::fs::read_to_string(&log).unwrap();
        assert_eq!(calls, "lose n2\nrestore n2\ncut-off n3\nrestore n3\n");
        let err = control.inject("bad", Fault::Lost).unwrap_err().to_string();
        assert!(
            err.contains("lose bad") && err.contains("no such node"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
