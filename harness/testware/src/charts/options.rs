//! What a chart is given, per action: [`Values`] (values files and `--set` pairs,
//! which every helm action takes) and [`RenderOptions`] for `helm template`.
//! Installs and upgrades are requests of their own
//! ([`Install`](crate::Install), [`Upgrade`](crate::Upgrade)), so an option that
//! only one action understands cannot be handed to another and ignored there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

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

/// Values files and `--set` pairs, the part of a chart's configuration that every
/// helm action (template, lint, install, upgrade) takes.
///
/// Relative values paths are taken from the chart directory, for every action
/// alike (`ci/offline.yaml` is the chart's own `ci/offline.yaml`).
///
/// ```
/// use testware::Values;
/// let values = Values::default().file("ci/offline.yaml").set("replicaCount", "2");
/// assert_eq!(values.files.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Values {
    /// Values files, in order (later ones win).
    pub files: Vec<PathBuf>,
    /// `--set key=value` pairs, applied after the files.
    pub set: Vec<(String, String)>,
}

impl Values {
    /// Adds a values file (`--values`); a relative path is taken from the chart directory.
    pub fn file(mut self, file: impl Into<PathBuf>) -> Self {
        self.files.push(file.into());
        self
    }

    /// Adds a `--set key=value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set.push((key.into(), value.into()));
        self
    }

    /// The values files with relative paths taken from `chart_dir`.
    pub fn paths(&self, chart_dir: &Path) -> Vec<PathBuf> {
        self.files
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
    pub fn args(&self, chart_dir: &Path) -> Vec<OsString> {
        let mut args = Vec::new();
        for file in self.paths(chart_dir) {
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

/// What `helm template` renders a chart with: its [`Values`] and what the
/// templates see of the release and the cluster.
///
/// ```
/// use testware::RenderOptions;
/// let options = RenderOptions::default()
///     .values("ci/offline.yaml")
///     .set("replicaCount", "2")
///     .release("web");
/// assert_eq!(options.values.files.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenderOptions {
    /// Values files and `--set` pairs.
    pub values: Values,
    /// The release name the templates see (default `test`).
    pub release: String,
    /// The namespace the templates see (default `default`).
    pub namespace: String,
    /// The Kubernetes release the templates see (`helm template --kube-version`,
    /// for `.Capabilities.KubeVersion`) and the target of the policy's
    /// API-version checks (default
    /// [`KubeVersion::DEFAULT`](crate::manifest::api_versions::KubeVersion::DEFAULT)).
    pub kube_version: Option<crate::manifest::api_versions::KubeVersion>,
    /// Build the chart's dependencies first (`helm dependency build
    /// --skip-refresh`, which writes them into its `charts/` directory).
    pub dependency_build: bool,
    /// API versions the templates see as available (`helm template
    /// --api-versions`, for `.Capabilities.APIVersions.Has`).
    pub api_versions: Vec<String>,
    /// Leave out `helm test` hooks (`--skip-tests`).
    pub skip_tests: bool,
    /// `--debug`: helm's debug log goes to stderr, which a failed render's error
    /// carries.
    pub debug: bool,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            values: Values::default(),
            release: "test".into(),
            namespace: "default".into(),
            kube_version: None,
            dependency_build: false,
            api_versions: Vec::new(),
            skip_tests: false,
            debug: false,
        }
    }
}

impl RenderOptions {
    /// Renders with `values` (replacing any given before).
    pub fn with_values(mut self, values: Values) -> Self {
        self.values = values;
        self
    }

    /// Adds a values file (`--values`); a relative path is taken from the chart directory.
    pub fn values(mut self, file: impl Into<PathBuf>) -> Self {
        self.values = self.values.file(file);
        self
    }

    /// Adds a `--set key=value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.values = self.values.set(key, value);
        self
    }

    /// Sets the release name the templates see.
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = release.into();
        self
    }

    /// Sets the namespace the templates see.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Renders for Kubernetes release `version` (see [`RenderOptions::kube_version`]).
    pub fn kube_version(mut self, version: crate::manifest::api_versions::KubeVersion) -> Self {
        self.kube_version = Some(version);
        self
    }

    /// Adds an API version the templates see as available (see [`RenderOptions::api_versions`]).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_versions.push(version.into());
        self
    }

    /// Builds the chart's dependencies before rendering (see [`RenderOptions::dependency_build`]).
    pub fn dependency_build(mut self) -> Self {
        self.dependency_build = true;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_values_are_taken_from_the_chart_and_absolute_ones_kept() {
        let values = Values::default()
            .file("ci/a.yaml")
            .file("/abs/b.yaml")
            .set("x.y", "1");
        let args: Vec<String> = values
            .args(Path::new("/charts/web"))
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
