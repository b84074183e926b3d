//! `ChartOptions`: what a chart is rendered, linted, installed or upgraded with —
//! one type, one rule for relative values paths (taken from the chart directory).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How an install or upgrade decides that the release is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Readiness {
    /// helm applies the objects without `--wait`; the harness then watches every
    /// workload of the release until it has rolled out and every Job has completed
    /// (explaining a timeout). Charts with post-install or post-upgrade hooks get
    /// helm's wait instead, because such hooks expect ready resources.
    #[default]
    Watch,
    /// helm's own `--wait --wait-for-jobs` (it polls every 2 s).
    Helm,
    /// Return as soon as helm has applied the objects.
    Applied,
}

/// Values and settings for `helm template`, `helm lint`, `helm install` and
/// `helm upgrade`.
///
/// Relative values paths are taken from the chart directory, for every command
/// alike (`ci/offline.yaml` is the chart's own `ci/offline.yaml`).
///
/// ```
/// use testware::ChartOptions;
/// let options = ChartOptions::default()
///     .values("ci/offline.yaml")
///     .set("replicaCount", "2");
/// assert_eq!(options.values_files.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChartOptions {
    /// Values files, in order (later ones win).
    pub values_files: Vec<PathBuf>,
    /// `--set key=value` pairs, applied after the files.
    pub set: Vec<(String, String)>,
    /// Render only: the release name the templates see (default `test`; an
    /// install names its release itself).
    pub release: String,
    /// Render only: the namespace the templates see (default `default`; an
    /// install uses its test namespace).
    pub namespace: String,
    /// Install and upgrade: caps the time to be up (always capped by the case's
    /// deadline).
    pub timeout: Option<Duration>,
    /// Install and upgrade: how readiness is decided.
    pub readiness: Readiness,
    /// Render only: the Kubernetes release the templates see
    /// (`helm template --kube-version`, for `.Capabilities.KubeVersion`) and the
    /// target of the policy's API-version checks (default
    /// [`KubeVersion::DEFAULT`](crate::manifest::api_versions::KubeVersion::DEFAULT)).
    pub kube_version: Option<crate::manifest::api_versions::KubeVersion>,
    /// Render only: build the chart's dependencies first (`helm dependency build
    /// --skip-refresh`, which writes them into its `charts/` directory).
    pub dependency_build: bool,
    /// Render only: API versions the templates see as available
    /// (`helm template --api-versions`, for `.Capabilities.APIVersions.Has`).
    pub api_versions: Vec<String>,
    /// Render only: leave out `helm test` hooks (`--skip-tests`).
    pub skip_tests: bool,
    /// Render only: `--debug`: helm's debug log goes to stderr, which a failed
    /// render's error carries.
    pub debug: bool,
}

impl Default for ChartOptions {
    fn default() -> Self {
        Self {
            values_files: Vec::new(),
            set: Vec::new(),
            release: "test".into(),
            namespace: "default".into(),
            timeout: None,
            readiness: Readiness::default(),
            kube_version: None,
            dependency_build: false,
            api_versions: Vec::new(),
            skip_tests: false,
            debug: false,
        }
    }
}

impl ChartOptions {
    /// Renders for Kubernetes release `version` (see [`ChartOptions::kube_version`]).
    pub fn kube_version(mut self, version: crate::manifest::api_versions::KubeVersion) -> Self {
        self.kube_version = Some(version);
        self
    }

    /// Adds an API version the templates see as available (see [`ChartOptions::api_versions`]).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_versions.push(version.into());
        self
    }

    /// Builds the chart's dependencies before rendering (see [`ChartOptions::dependency_build`]).
    pub fn dependency_build(mut self) -> Self {
        self.dependency_build = true;
        self
    }

    /// Adds a values file (`--values`); a relative path is taken from the chart directory.
    pub fn values(mut self, file: impl Into<PathBuf>) -> Self {
        self.values_files.push(file.into());
        self
    }

    /// Adds a `--set key=value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set.push((key.into(), value.into()));
        self
    }

    /// Sets the release name a render uses.
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = release.into();
        self
    }

    /// Sets the namespace a render uses.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Caps the time an install or upgrade may take.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Chooses how an install or upgrade decides the release is up.
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.readiness = readiness;
        self
    }

    /// Returns as soon as helm has applied the objects (no wait at all).
    pub fn no_wait(self) -> Self {
        self.readiness(Readiness::Applied)
    }

    /// The values files with relative paths taken from `chart_dir`.
    pub fn values_paths(&self, chart_dir: &Path) -> Vec<PathBuf> {
        self.values_files
            .iter()
            .map(|f| {
                if f.is_relative() {
                    chart_dir.join(f)
                } else {
                    f.clone()
                }
            })
            .collect()
    }

    /// `--values <file>…` then `--set <key=value>…`, files resolved against `chart_dir`.
    pub fn values_args(&self, chart_dir: &Path) -> Vec<OsString> {
        let mut args = Vec::new();
        for file in self.values_paths(chart_dir) {
            args.push("--values".into());
            args.push(file.into());
        }
        for (key, value) in &self.set {
            args.push("--set".into());
            args.push(format!("{key}={value}").into());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_values_are_taken_from_the_chart_and_absolute_ones_kept() {
        let options = ChartOptions::default()
            .values("ci/a.yaml")
            .values("/abs/b.yaml")
            .set("x.y", "1");
        let args: Vec<String> = options
            .values_args(Path::new("/charts/web"))
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--values",
                "/charts/web/ci/a.yaml",
                "--values",
                "/abs/b.yaml",
                "--set",
                "x.y=1"
            ]
        );
    }
}
