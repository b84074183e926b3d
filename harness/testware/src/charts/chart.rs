//! `HelmChart`: a chart directory rendered with `helm template`, once per
//! (chart, values files, `--set` values, release, namespace), cached and shared by
//! every case of a suite that asks for the same render.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::charts::helm::{Helm, HelmError};
use crate::charts::options::{RenderOptions, Values};
use crate::charts::render_cache::RenderCache;
use crate::config::Tools;
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
    /// `helm lint --strict` found problems, or helm is missing.
    #[error("helm lint of chart {chart} failed")]
    Lint {
        /// The chart name.
        chart: String,
        /// helm's error, with command and the findings.
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
    /// `application` (also when unset) or `library`.
    #[serde(default, rename = "type")]
    pub chart_type: Option<String>,
}

impl ChartMeta {
    /// The `helm.sh/chart` label value Helm's conventions produce: `name-version`
    /// with `+` replaced by `_`.
    pub fn chart_label(&self) -> String {
        format!("{}-{}", self.name, self.version).replace('+', "_")
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

    /// The values files the chart ships for testing, sorted: every `ci/*.yaml`
    /// (chart-testing's convention) and every `values-*.yaml` beside `values.yaml`.
    pub fn values_files(&self) -> Vec<PathBuf> {
        let yaml = |p: &Path| p.extension().is_some_and(|x| x == "yaml" || x == "yml");
        let list = |dir: PathBuf| {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && yaml(p))
                .collect::<Vec<_>>()
        };
        let mut files = list(self.dir.join("ci"));
        files.extend(list(self.dir.clone()).into_iter().filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("values-"))
        }));
        files.sort();
        files
    }

    /// The ways the chart is checked: its defaults, then each of [`HelmChart::values_files`].
    pub fn value_sets(&self) -> Vec<ValueSet> {
        std::iter::once(ValueSet::defaults())
            .chain(self.values_files().into_iter().map(|file| {
                let label = file
                    .strip_prefix(&self.dir)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                ValueSet {
                    label,
                    files: vec![file],
                }
            }))
            .collect()
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
    disk: Option<RenderCache>,
}

impl ChartRenderer {
    /// A renderer using `helm`, caching in memory only.
    pub fn new(helm: Arc<Helm>) -> Self {
        Self {
            helm,
            cache: Mutex::default(),
            disk: None,
        }
    }

    /// The same renderer keeping renders across runs in `disk` as well.
    pub fn with_disk_cache(mut self, disk: RenderCache) -> Self {
        self.disk = Some(disk);
        self
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
        if let Some(missing) = options
            .values
            .paths(&chart.dir)
            .into_iter()
            .find(|f| !f.is_file())
        {
            return Err(ChartError::MissingValues { path: missing });
        }
        let name = chart.meta.name.clone();
        let disk = self.disk.as_ref().and_then(|disk| {
            let key = disk.key(self.helm.version(), &chart.dir, options)?;
            Some((disk, key))
        });
        let kept = disk.as_ref().and_then(|(disk, key)| disk.load(key));
        let text = match kept {
            Some(text) => {
                tracing::debug!(chart = %name, "render from the render cache");
                text
            }
            None => {
                let text = self
                    .helm
                    .template(&chart.dir, options)
                    .await
                    .map_err(|source| ChartError::Helm {
                        chart: name.clone(),
                        source,
                    })?;
                if let Some((disk, key)) = &disk {
                    disk.store(key, &text);
                }
                text
            }
        };
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

/// One way a chart is configured for checks: its defaults or one values file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValueSet {
    /// `default`, or the file's path relative to the chart (`ci/offline.yaml`).
    pub label: String,
    /// The values files, later ones over earlier ones (a base and an
    /// environment's file, as Argo CD and helmfile layer them); none for the
    /// chart's defaults.
    pub files: Vec<PathBuf>,
}

impl ValueSet {
    /// The chart's defaults.
    pub fn defaults() -> Self {
        Self {
            label: "default".into(),
            files: Vec::new(),
        }
    }

    /// A values file from elsewhere (a fixture), labelled `label`.
    pub fn file(label: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        Self::layered(label, [file.into()])
    }

    /// Values files applied in order, each over the ones before it, as one set.
    pub fn layered(label: impl Into<String>, files: impl IntoIterator<Item = PathBuf>) -> Self {
        Self {
            label: label.into(),
            files: files.into_iter().collect(),
        }
    }

    /// This set's values files, as [`Values`].
    pub fn values(&self) -> Values {
        Values {
            files: self.files.clone(),
            set: Vec::new(),
        }
    }

    /// Render options with this set's values.
    pub fn options(&self) -> RenderOptions {
        RenderOptions::default().with_values(self.values())
    }
}

/// The charts of one repository, each a directory under one root, rendered
/// through one cached [`ChartRenderer`] that the cases of a suite share.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use testware::{RenderOptions, ChartSet};
/// let charts = ChartSet::new("charts");
/// let rendered = charts
///     .render("web", RenderOptions::default().values("ci/small.yaml"))
///     .await?;
/// println!("{} objects", rendered.objects().len());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ChartSet {
    root: PathBuf,
    tools: Tools,
    renderer: OnceCell<Arc<ChartRenderer>>,
}

impl ChartSet {
    /// The charts under `root`, rendered with the tools this process's
    /// environment names ([`Tools::from_process`]). A relative root is taken from
    /// the package directory when cargo runs the binary (`CARGO_MANIFEST_DIR`),
    /// else from the current directory.
    pub fn new(root: impl Into<PathBuf>) -> Arc<Self> {
        Self::with_tools(root, Tools::from_process())
    }

    /// [`ChartSet::new`] with the tools given (a suite passes its run's).
    pub fn with_tools(root: impl Into<PathBuf>, tools: Tools) -> Arc<Self> {
        let root = root.into();
        let root = match std::env::var_os("CARGO_MANIFEST_DIR") {
            Some(base) if root.is_relative() => PathBuf::from(base).join(root),
            _ => root,
        };
        Arc::new(Self {
            root,
            tools,
            renderer: OnceCell::new(),
        })
    }

    /// Where helm and the schemas are found.
    pub fn tools(&self) -> &Tools {
        &self.tools
    }

    /// The directory holding the charts.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of chart `name`.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Opens chart `name`.
    ///
    /// # Errors
    /// No `Chart.yaml` there, or one that does not parse.
    pub fn open(&self, name: &str) -> Result<HelmChart, ChartError> {
        HelmChart::open(self.dir(name))
    }

    /// The names of the charts under the root (directories with a `Chart.yaml`), sorted.
    ///
    /// # Errors
    /// The root cannot be read.
    pub fn names(&self) -> Result<Vec<String>, ChartError> {
        let entries = std::fs::read_dir(&self.root).map_err(|e| ChartError::Metadata {
            path: self.root.clone(),
            source: Box::new(e),
        })?;
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join("Chart.yaml").is_file())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The shared renderer, locating helm on first use.
    ///
    /// # Errors
    /// helm is missing or too old.
    pub async fn renderer(&self) -> Result<Arc<ChartRenderer>, HelmError> {
        self.renderer
            .get_or_try_init(|| async {
                let renderer = ChartRenderer::new(Arc::new(Helm::locate(&self.tools).await?));
                Ok(Arc::new(match self.tools.render_cache() {
                    Some(disk) => renderer.with_disk_cache(disk),
                    None => renderer,
                }))
            })
            .await
            .cloned()
    }

    /// Renders chart `name` with `options` (cached per distinct render).
    ///
    /// # Errors
    /// The chart or a values file is missing, helm is missing, or the render fails.
    pub async fn render(
        &self,
        name: &str,
        options: RenderOptions,
    ) -> Result<Arc<Rendered>, ChartError> {
        let chart = self.open(name)?;
        let renderer = self.renderer().await.map_err(|source| ChartError::Helm {
            chart: name.to_owned(),
            source,
        })?;
        renderer.render(&chart, &options).await
    }

    /// `helm lint --strict` of chart `name` with `values`; returns helm's report.
    ///
    /// # Errors
    /// The chart is missing, helm is missing, or lint finds problems.
    pub async fn lint(&self, name: &str, values: &Values) -> Result<String, ChartError> {
        let chart = self.open(name)?;
        let helm_error = |source| ChartError::Lint {
            chart: name.to_owned(),
            source,
        };
        let renderer = self.renderer().await.map_err(helm_error)?;
        renderer
            .helm()
            .lint(chart.dir(), values)
            .await
            .map_err(helm_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A helm that prints the chart's templates as they are, counting nothing
    /// itself: the adapter counts the processes it starts.
    async fn fake_helm(dir: &Path) -> Arc<Helm> {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("helm");
        std::fs::write(
            &path,
            "#!/bin/sh\ncase \"$1\" in version) echo v3.10.1;; template) cat \"$3\"/templates/*.yaml;; esac\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Arc::new(Helm::at(&path).await.unwrap())
    }

    #[tokio::test(flavor = "current_thread")]
    async fn renders_are_kept_across_runs_until_a_byte_changes() {
        let dir =
            std::env::temp_dir().join(format!("renderer-test-{}", crate::config::random_suffix(6)));
        let chart_dir = dir.join("web");
        std::fs::create_dir_all(chart_dir.join("templates")).unwrap();
        std::fs::write(chart_dir.join("Chart.yaml"), "name: web\nversion: 1.0.0\n").unwrap();
        let template = chart_dir.join("templates/cm.yaml");
        std::fs::write(
            &template,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        )
        .unwrap();
        let helm = fake_helm(&dir).await;
        let disk = RenderCache::new(dir.join("renders"));
        let chart = HelmChart::open(&chart_dir).unwrap();
        let options = RenderOptions::default();
        // A run is a renderer of its own: its memory cache starts empty.
        let run = || ChartRenderer::new(helm.clone()).with_disk_cache(disk.clone());
        let started = helm.processes_started();

        let first = run().render(&chart, &options).await.unwrap();
        assert_eq!(
            helm.processes_started() - started,
            1,
            "the first run renders"
        );
        let second = run().render(&chart, &options).await.unwrap();
        assert_eq!(
            helm.processes_started() - started,
            1,
            "a run over the unchanged chart starts no helm process"
        );
        assert_eq!(second.objects().len(), first.objects().len());
        assert_eq!(second.objects()[0].name(), "a");

        std::fs::write(
            &template,
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
        )
        .unwrap();
        let changed = run().render(&chart, &options).await.unwrap();
        assert_eq!(
            helm.processes_started() - started,
            2,
            "a changed byte renders again"
        );
        assert_eq!(changed.objects()[0].name(), "b");

        let without_disk = ChartRenderer::new(helm.clone());
        without_disk.render(&chart, &options).await.unwrap();
        assert_eq!(
            helm.processes_started() - started,
            3,
            "no disk cache: helm runs"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
