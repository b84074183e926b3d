//! Which binaries the cluster runs: those of a release built into the cache,
//! official ones from a directory (`--bin-dir`), and the record of what the
//! running cluster was started with.

use std::path::{Path, PathBuf};

use crate::components::{is_executable, write_file};
use crate::layout::Layout;
use crate::release::{self, Kubernetes, DEFAULT_KUBERNETES};

/// Where the binaries come from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Binaries {
    /// Directory with kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy.
    pub kube: PathBuf,
    /// The etcd server.
    pub etcd: PathBuf,
    /// Their minor version (flags differ between releases).
    pub minor: u32,
}

/// The control-plane and node programs the cluster runs from [`Binaries::kube`].
pub const KUBE_PROGRAMS: [&str; 5] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
];

impl Binaries {
    /// The binaries of `release` and of the pinned etcd as
    /// `assets/build-go-release.sh` caches them under `cache` (see
    /// [`crate::provision::ensure_release`]).
    pub fn cached(cache: &Path, release: Kubernetes) -> Self {
        Self {
            kube: release.bin_dir(cache),
            etcd: release::etcd_binary(cache),
            minor: release.minor,
        }
    }

    /// The binaries the running cluster was started with (recorded at `up`),
    /// else those of the default release in `cache`.
    pub fn of_running(layout: &Layout, cache: &Path) -> Self {
        Self::recorded(layout).unwrap_or_else(|| Self::cached(cache, DEFAULT_KUBERNETES))
    }

    /// The binaries recorded at `up` in `layout`, if any (see [`Binaries::record`]).
    pub fn recorded(layout: &Layout) -> Option<Self> {
        let bytes = std::fs::read(layout.binaries()).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records these as the running cluster's binaries (see [`Binaries::of_running`]).
    ///
    /// # Errors
    /// The record cannot be written.
    pub fn record(&self, layout: &Layout) -> anyhow::Result<()> {
        write_file(
            &layout.binaries(),
            &serde_json::to_string_pretty(self)?,
            0o644,
        )
    }

    /// Every program of [`KUBE_PROGRAMS`] and etcd is there and executable.
    pub fn complete(&self) -> bool {
        KUBE_PROGRAMS.iter().all(|p| is_executable(&self.kube(p))) && is_executable(&self.etcd)
    }

    /// The Kubernetes binaries in `kube` (such as an official release's) with
    /// `etcd`; reads their version from `kube-apiserver --version` (the default
    /// release's when it cannot be read: the prerequisite check reports missing
    /// binaries).
    pub fn new(kube: PathBuf, etcd: PathBuf) -> Self {
        let minor = std::process::Command::new(kube.join("kube-apiserver"))
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| parse_minor(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or(DEFAULT_KUBERNETES.minor);
        Self { kube, etcd, minor }
    }

    /// The Kubernetes program `name` (one of [`KUBE_PROGRAMS`]).
    pub fn kube(&self, name: &str) -> PathBuf {
        self.kube.join(name)
    }
}

/// The minor version from `Kubernetes v1.37.2`.
pub fn parse_minor(text: &str) -> Option<u32> {
    let version = text.split_whitespace().find(|w| w.starts_with("v1."))?;
    version
        .trim_start_matches("v1.")
        .split('.')
        .next()?
        .parse()
        .ok()
}
