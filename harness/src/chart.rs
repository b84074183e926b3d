//! `HelmChart`: a chart directory rendered with `helm template`, once per
//! (chart, values files, `--set` values, release, namespace), cached and shared by
//! every case of a suite that asks for the same render.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::helm::{Helm, HelmError, TemplateArgs};
use crate::manifest::{ManifestError, Manifests};

/// Errors from loading or rendering a chart.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// `Chart.yaml` is missing.
    #[error("chart not found: {} has no Chart.yaml", path.display())]
    NotFound {
        /// The directory given.
        path: PathBuf,
    },
    /// `Chart.yaml` cannot be read or parsed.
    #[error("failed to read {}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A values file given for the render does not exist.
    #[error("values file {} does not exist", path.display())]
    MissingValues {
        /// The file.
        path: PathBuf,
    },
    /// helm failed (template errors, schema violations, …).
    #[error("failed to render chart {chart}")]
    Helm {
        /// The chart name.
        chart: String,
        /// helm's error, with command and stderr.
        #[source]
        source: HelmError,
    },
    /// helm's output did not parse into Kubernetes objects.
    #[error("failed to parse the rendered chart {chart}")]
    Manifest {
        /// The chart name.
        chart: String,
        /// Which document and why.
        #[source]
        source: ManifestError,
    },
}

/// The parts of `Chart.yaml` the harness uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartMeta {
    /// Chart name.
    pub name: String,
    /// Chart version.
    pub version: String,
    /// Version of the application the chart deploys.
    #[serde(default)]
    pub app_version: Option<String>,
}

impl ChartMeta {
    /// The `helm.sh/chart` label value Helm's conventions produce: `name-version`
    /// with `+` replaced by `_`.
    pub fn chart_label(&self) -> String {
        format!("{}-{}", self.name, self.version).replace('+', "_")
    }
}

/// What to render a chart with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RenderOptions {
    /// Release name (default `test`).
    pub release: String,
    /// Namespace (default `default`).
    pub namespace: String,
    /// Values files, in order.
    pub values_files: Vec<PathBuf>,
    /// `--set` pairs, applied after the files.
    pub set: Vec<(String, String)>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            release: "test".into(),
            namespace: "default".into(),
            values_files: Vec::new(),
            set: Vec::new(),
        }
    }
}

impl RenderOptions {
    /// Adds a values file.
    pub fn values(mut self, file: impl Into<PathBuf>) -> Self {
        self.values_files.push(file.into());
        self
    }

    /// Adds a `--set key=value`.
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set.push((key.into(), value.into()));
        self
    }

    /// Sets the release name.
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = release.into();
        self
    }

    /// Sets the namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }
}

/// A chart on disk.
#[derive(Debug, Clone)]
pub struct HelmChart {
    dir: PathBuf,
    meta: ChartMeta,
}

impl HelmChart {
    /// Opens the chart in `dir` and reads its `Chart.yaml`.
    ///
    /// # Errors
    /// No `Chart.yaml`, or one that does not parse.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, ChartError> {
        let dir = dir.into();
        let file = dir.join("Chart.yaml");
        if !file.is_file() {
            return Err(ChartError::NotFound { path: dir });
        }
        let text = std::fs::read_to_string(&file).map_err(|e| ChartError::Metadata {
            path: file.clone(),
            source: Box::new(e),
        })?;
        let meta = serde_yaml_ng::from_str(&text).map_err(|e| ChartError::Metadata {
            path: file,
            source: Box::new(e),
        })?;
        Ok(Self { dir, meta })
    }

    /// The chart directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its `Chart.yaml`.
    pub fn meta(&self) -> &ChartMeta {
        &self.meta
    }

    /// The value sets shipped in the chart's `ci/` directory, sorted.
    pub fn ci_values_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.join("ci"))
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        files
    }
}

/// One finished render.
#[derive(Debug)]
pub struct Rendered {
    /// The chart's metadata.
    pub chart: ChartMeta,
    /// What it was rendered with.
    pub options: RenderOptions,
    /// The objects.
    pub manifests: Manifests,
}

impl std::ops::Deref for Rendered {
    type Target = Manifests;
    fn deref(&self) -> &Manifests {
        &self.manifests
    }
}

type CacheKey = (PathBuf, RenderOptions);

/// Renders charts with one helm process per distinct render and caches the results.
/// Shared by the cases of a suite (wrap it in an `Arc`); concurrent requests for
/// the same render wait for the one helm process.
#[derive(Debug)]
pub struct ChartRenderer {
    helm: Arc<Helm>,
    cache: Mutex<HashMap<CacheKey, Arc<OnceCell<Arc<Rendered>>>>>,
}

impl ChartRenderer {
    /// A renderer using `helm`.
    pub fn new(helm: Arc<Helm>) -> Self {
        Self {
            helm,
            cache: Mutex::default(),
        }
    }

    /// The helm adapter in use (e.g. to read its process count).
    pub fn helm(&self) -> &Helm {
        &self.helm
    }

    /// Renders `chart` with `options`, or returns the cached render.
    ///
    /// # Errors
    /// A missing values file, helm failing (template or schema errors, with stderr),
    /// or output that does not parse. Failed renders are not cached.
    pub async fn render(
        &self,
        chart: &HelmChart,
        options: &RenderOptions,
    ) -> Result<Arc<Rendered>, ChartError> {
        let key = (chart.dir.clone(), options.clone());
        let cell = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.render_uncached(chart, options))
            .await
            .cloned()
    }

    async fn render_uncached(
        &self,
        chart: &HelmChart,
        options: &RenderOptions,
    ) -> Result<Arc<Rendered>, ChartError> {
        if let Some(missing) = options.values_files.iter().find(|f| !f.is_file()) {
            return Err(ChartError::MissingValues {
                path: missing.clone(),
            });
        }
        let args = TemplateArgs {
            chart: chart.dir.clone(),
            release: options.release.clone(),
            namespace: options.namespace.clone(),
            values_files: options.values_files.clone(),
            set: options.set.clone(),
        };
        let name = chart.meta.name.clone();
        let text = self
            .helm
            .template(&args)
            .await
            .map_err(|source| ChartError::Helm {
                chart: name.clone(),
                source,
            })?;
        let manifests = Manifests::parse(&text).map_err(|source| ChartError::Manifest {
            chart: name,
            source,
        })?;
        Ok(Arc::new(Rendered {
            chart: chart.meta.clone(),
            options: options.clone(),
            manifests,
        }))
    }
}
