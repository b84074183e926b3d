//! The local provider: a real Kubernetes from host binaries (etcd and
//! the Kubernetes components built from the Go module proxy, containerd +
//! runc, the CNI bridge), the addons it installs, and the pipeline that builds the images of
//! the charts under test and loads them into a cluster.
//!
//! The processes that run *inside* the cluster (DNS, volume provisioner, pause,
//! toolbox) are the crate `cluster-addons`; this crate is the host side.
//! The `testware` command (`testware cluster`, `testware images`) is the
//! interface; `ci/cluster` and `ci/images` are this repository's thin wrappers.

pub mod addons;
pub mod binaries;
pub mod cluster;
pub mod components;
pub mod images;
pub mod kubeconfig;
pub mod layout;
pub mod network;
pub mod node;
pub mod pki;
pub mod process;
pub mod provision;
pub mod release;
pub mod shape;
