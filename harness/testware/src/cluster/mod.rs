//! The live cluster: the client and its probe, the case's namespaces, waits on
//! what objects do, what their states mean, why they are not ready, and the
//! ways in (exec, port-forwards).
//!
//! - [`baseline`]: the cluster right after `up`, and the reset back to it;
//! - [`mod@client`]: the client from kubeconfig/context and the probe behind the
//!   chart_deploy tier (its items are re-exported here);
//! - [`namespace`]: ephemeral test namespaces, their fast awaited deletion, the janitor;
//! - [`claims`]: cluster-scoped objects of releases, claimed cluster-wide one case at a time;
//! - [`sharing`]: the cluster shared by cases, held alone by a case that changes nodes;
//! - [`faults`], [`drain`]: the ways such a case changes nodes ([`faults::NodeFaults`]);
//! - [`holds`]: what holds a deletion up (objects left, their finalizers and owners);
//! - [`wait`]: `wait_until`, watch-based conditions, the case `Deadline`;
//! - [`status`]: what objects' states mean (workload kinds, readiness, rolled out), pure;
//! - [`explain`]: why a pod, workload or service is not ready, in words;
//! - [`versions`]: fields that changed shape between Kubernetes API versions, read alike;
//! - [`nodes`]: the nodes, their groups (by label) and where pods run;
//! - [`net`]: exec, port-forwards on free local ports, a minimal HTTP request.

pub mod baseline;
pub mod claims;
pub mod client;
pub mod drain;
pub mod explain;
pub mod faults;
pub mod holds;
pub mod namespace;
pub mod net;
pub mod nodes;
pub mod pod_security;
pub mod sharing;
pub mod status;
pub mod versions;
pub mod wait;

pub(crate) use client::api_error;
pub use client::labels;
pub use client::{client, client_config, node_problems, probe, ClusterError, ClusterUnavailable};
