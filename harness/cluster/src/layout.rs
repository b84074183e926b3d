//! Where the local cluster keeps its state, and its fixed network settings.
//!
//! Everything the cluster writes lives under one state directory (default
//! `/var/lib/testware-cluster`, `HARNESS_CLUSTER_DIR` to change), so `down` can
//! remove it whole. Binaries and images are cached elsewhere, keyed by version.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// Name of the single node.
pub const NODE_NAME: &str = "testware";
/// The node's address: added to `lo` at `up`, so every listener stays on this
/// machine (kubelet refuses 127.0.0.0/8, and no other interface is needed).
pub const NODE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(172, 31, 255, 254));
/// Pod addresses (the CNI bridge's host-local range).
pub const POD_CIDR: &str = "10.244.0.0/16";
/// Service addresses.
pub const SERVICE_CIDR: &str = "10.96.0.0/24";
/// The `kubernetes` Service's address (first of the range): in the API server's certificate.
pub const SERVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 96, 0, 1));
/// The cluster DNS Service's address (kubelet `clusterDNS`).
pub const DNS_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10));
/// The CNI bridge.
pub const BRIDGE: &str = "testware0";
/// API server port on the node address.
pub const APISERVER_PORT: u16 = 6443;
/// etcd client and peer ports on loopback (not the defaults, to stay clear of a system etcd).
pub const ETCD_CLIENT_PORT: u16 = 23790;
/// See [`ETCD_CLIENT_PORT`].
pub const ETCD_PEER_PORT: u16 = 23800;

/// Paths under the state directory.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The state directory.
    pub root: PathBuf,
}

impl Layout {
    /// The layout under `HARNESS_CLUSTER_DIR` or `/var/lib/testware-cluster`.
    pub fn from_env() -> Self {
        let root = std::env::var_os("HARNESS_CLUSTER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib/testware-cluster"));
        Self { root }
    }

    /// `<root>/<rel>`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// PKI files.
    pub fn pki(&self) -> PathBuf {
        self.path("pki")
    }
    /// Pid files and sockets.
    pub fn run(&self) -> PathBuf {
        self.path("run")
    }
    /// Component logs.
    pub fn logs(&self) -> PathBuf {
        self.path("logs")
    }
    /// The admin kubeconfig.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.path("kubeconfigs/admin.conf")
    }
    /// containerd's socket.
    pub fn containerd_socket(&self) -> PathBuf {
        self.path("run/containerd.sock")
    }
    /// Host directory under which the local-path provisioner creates volumes.
    pub fn volumes(&self) -> PathBuf {
        self.path("volumes")
    }
    /// The cluster's shape ([`crate::shape::Shape`]), written at `up`.
    pub fn shape(&self) -> PathBuf {
        self.path("shape.json")
    }
    /// The binaries the cluster runs ([`crate::binaries::Binaries`]), written at `up`.
    pub fn binaries(&self) -> PathBuf {
        self.path("binaries.json")
    }
    /// The state of node `name` beyond the first (its containerd, kubelet, configs).
    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.path("nodes").join(name)
    }
    /// Record of what existed before `up` (so `down` removes only what the cluster made).
    pub fn before_up(&self) -> PathBuf {
        self.path("before-up.json")
    }
}

/// The API server URL.
pub fn apiserver_url() -> String {
    format!("https://{NODE_IP}:{APISERVER_PORT}")
}

/// Mount points under `root` (deepest first), from `/proc/self/mountinfo`.
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mount_path)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(root))
        .collect();
    mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    mounts.dedup();
    mounts
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}
