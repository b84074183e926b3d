//! What the suites of this repository share beyond the library: where its charts,
//! fixtures and images are. Everything else comes from `testware`.

use std::path::{Path, PathBuf};

pub mod containers;
pub mod efd_containers;
pub mod processes;

/// The repository root: of the checkout the suite runs in, as cargo tells the
/// running test or bench (`CARGO_MANIFEST_DIR`), not the one its binary was
/// built in — a clone elsewhere reusing a cached build reads its own files.
pub fn repo_root() -> PathBuf {
    package_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// This package's directory: cargo's at run time, else the build's.
fn package_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

/// The charts under test (for `Suite::charts` and `ChartSet::new`).
pub fn charts_dir() -> PathBuf {
    repo_root().join("charts-under-test")
}

/// `fixtures/<path>`.
pub fn fixture(path: &str) -> PathBuf {
    repo_root().join("fixtures").join(path)
}

/// Tag of the images this workspace builds (`localhost/<name>:<tag>`).
pub const IMAGE_TAG: &str = env!("CARGO_PKG_VERSION");

/// A pod of the local cluster's toolbox image (see [`cluster_addons::toolbox::pod`]).
pub use cluster_addons::toolbox::pod as toolbox_pod;

/// What every cluster benchmark starts with: the run configuration from the
/// environment (as a test run reads it) and a client of its cluster, whose
/// version is printed beside the figures.
///
/// # Errors
/// The configuration is invalid or the cluster does not answer.
pub async fn bench_cluster() -> anyhow::Result<(std::sync::Arc<testware::RunConfig>, kube::Client)>
{
    let (config, _) =
        testware::RunConfig::parse(["bench".to_owned()], |key| std::env::var(key).ok())?;
    let client = testware::cluster::client(&config).await?;
    println!("cluster: {}", client.apiserver_version().await?.git_version);
    Ok((std::sync::Arc::new(config), client))
}
