//! What the suites of this repository share beyond the library: where its charts,
//! fixtures and images are. Everything else comes from `testware`.

use std::path::{Path, PathBuf};

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
