//! What the suites of this repository share beyond the library: where its charts,
//! fixtures and images are. Everything else comes from `testware`.

use std::path::{Path, PathBuf};

pub mod containers;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The charts under test (for `Suite::charts` and `ChartSet::new`).
pub const CHARTS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts-under-test");

/// `fixtures/<path>`.
pub fn fixture(path: &str) -> PathBuf {
    repo_root().join("fixtures").join(path)
}

/// Tag of the images this workspace builds (`localhost/<name>:<tag>`).
pub const IMAGE_TAG: &str = env!("CARGO_PKG_VERSION");

/// A pod of the `testware-toolbox` image that sleeps until deleted, optionally
/// with the claim `volume_claim` mounted at `/data`.
///
/// # Errors
/// Never in practice (the JSON is fixed); kept a `Result` for `?` in cases.
pub fn toolbox_pod(
    name: &str,
    volume_claim: Option<&str>,
) -> anyhow::Result<k8s_openapi::api::core::v1::Pod> {
    let mut spec = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "toolbox",
                "image": format!("localhost/testware-toolbox:{IMAGE_TAG}"),
                "imagePullPolicy": "IfNotPresent",
                "args": ["sleep"],
                "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false}
            }]
        }
    });
    if let Some(claim) = volume_claim {
        spec["spec"]["containers"][0]["volumeMounts"] =
            serde_json::json!([{"name": "data", "mountPath": "/data"}]);
        spec["spec"]["volumes"] =
            serde_json::json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]);
    }
    Ok(serde_json::from_value(spec)?)
}

/// A run of one of this crate's example binaries (`program`, from
/// `env!("CARGO_BIN_EXE_…")`) as a run of its own, not a case of the calling
/// one: its own run id (`<prefix><random>`), artifacts directory under
/// `artifacts_root` and JUnit file, the cluster required.
pub struct ExampleRun {
    /// The run id it labels everything with.
    pub run_id: String,
    /// Its artifacts directory (bundles) and `junit.xml`.
    pub artifacts: PathBuf,
    /// The command, ready to add arguments and environment and start.
    pub command: tokio::process::Command,
}

impl ExampleRun {
    /// Prepares the run; see [`ExampleRun`].
    pub fn new(program: &str, prefix: &str, artifacts_root: &Path) -> Self {
        let run_id = format!("{prefix}{}", testware::config::random_suffix(8));
        let artifacts = artifacts_root.join(&run_id);
        let mut command = tokio::process::Command::new(program);
        command
            .env("HARNESS_RUN_ID", &run_id)
            .env("HARNESS_ARTIFACTS", &artifacts)
            .env("HARNESS_JUNIT", artifacts.join("junit.xml"))
            .env("HARNESS_REQUIRE_CLUSTER", "1")
            .env_remove("NEXTEST")
            .env_remove("CI_JOB_ID")
            .env_remove("HARNESS_MARK")
            .env_remove("HARNESS_KEEP_NAMESPACE")
            .env_remove("HARNESS_TEST_NAMESPACE")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        Self {
            run_id,
            artifacts,
            command,
        }
    }
}

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
