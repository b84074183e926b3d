//! The harness's own tests that belong to no one crate: the README's Rust
//! examples compiled as doc tests (so they cannot drift from the API), the
//! README's "use it in your repository" section held against the example
//! repository's files, and the self-test suites under `tests/` — bad input
//! (broken charts and values, missing or wrong helm, unreachable or expired
//! clusters), leaks (killed runs reaped), redaction and the runner's examples —
//! with the example programs they run as runs of their own (`src/bin/`).

use std::path::{Path, PathBuf};

/// The repository root: of the checkout the tests run in, as cargo tells the
/// running test (`CARGO_MANIFEST_DIR`, inherited by the example programs it
/// starts), not the one the binary was built in — a clone elsewhere reusing a
/// cached build reads its own files.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
}

/// The charts the self-tests install (this repository's, for the echo server).
pub fn charts_dir() -> PathBuf {
    repo_root().join("charts-under-test")
}

/// `fixtures/<path>`: the broken charts, values and payloads of the self-tests.
pub fn fixture(path: &str) -> PathBuf {
    repo_root().join("fixtures").join(path)
}

/// An install of the `stuck-pod` fixture chart as release `stuck`, with
/// `sets`, waiting as `readiness` says with `policy`, for at most `timeout`:
/// made to fail one way or another, for the fail-fast self-tests and the
/// time-to-failure bench.
pub fn stuck_pod_install(
    sets: &[(&str, &str)],
    policy: testware::status::FailFast,
    readiness: testware::Readiness,
    timeout: std::time::Duration,
) -> testware::Install {
    let mut request = testware::Install::chart(fixture("broken-charts/stuck-pod"))
        .release("stuck")
        .timeout(timeout)
        .readiness(readiness)
        .fail_fast(policy);
    for (key, value) in sets {
        request = request.set(*key, *value);
    }
    request
}

/// A run of one of this crate's example programs (`program`, from
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
            .env_remove("HARNESS_SHARD")
            .env_remove("HARNESS_SHARD_PLAN")
            .env_remove("HARNESS_CLUSTER_CLAIMS")
            .env_remove("NEXTEST_ATTEMPT")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        Self {
            run_id,
            artifacts,
            command,
        }
    }
}

/// The README's Rust examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;

#[cfg(test)]
mod readme {
    /// The README's "use it in your repository" section shows the example
    /// repository's files as they are.
    #[test]
    fn shows_the_example_repository_verbatim() {
        let root = super::repo_root();
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
        for file in ["Cargo.toml", "tests/no_deploy.rs", "tests/chart_deploy.rs"] {
            let path = root.join("examples/charts-repo").join(file);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(!text.is_empty(), "{} is missing", path.display());
            assert!(
                readme.contains(&text),
                "README.md does not show {} as it is",
                path.display()
            );
        }
    }
}
