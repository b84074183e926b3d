//! What the suites share: where the charts and fixtures are, and one chart
//! renderer per suite process so each distinct render runs helm once.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use harness::{ChartRenderer, Helm, HelmChart, RenderOptions, Rendered};
use tokio::sync::OnceCell;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `charts-under-test/<name>`.
pub fn chart_dir(name: &str) -> PathBuf {
    repo_root().join("charts-under-test").join(name)
}

/// `fixtures/<path>`.
pub fn fixture(path: &str) -> PathBuf {
    repo_root().join("fixtures").join(path)
}

/// The charts under test, by directory name.
pub const CHARTS: [&str; 3] = ["echo-server", "efd", "embargo-ingest"];

/// Renders charts for the cases of one suite process; shared through an `Arc`.
#[derive(Default)]
pub struct Charts {
    renderer: OnceCell<Arc<ChartRenderer>>,
}

impl Charts {
    /// A new, empty renderer holder.
    pub fn shared() -> Arc<Self> {
        Arc::default()
    }

    /// The renderer, locating helm on first use.
    ///
    /// # Errors
    /// helm is missing or too old.
    pub async fn renderer(&self) -> anyhow::Result<Arc<ChartRenderer>> {
        let renderer = self
            .renderer
            .get_or_try_init(|| async {
                Ok::<_, harness::helm::HelmError>(Arc::new(ChartRenderer::new(Arc::new(
                    Helm::locate().await?,
                ))))
            })
            .await?;
        Ok(renderer.clone())
    }

    /// Renders chart `name` with `options` (values paths relative to the chart
    /// directory are resolved against it).
    ///
    /// # Errors
    /// helm is missing, or the render fails.
    pub async fn render(
        &self,
        name: &str,
        options: RenderOptions,
    ) -> anyhow::Result<Arc<Rendered>> {
        let chart = HelmChart::open(chart_dir(name))?;
        let mut options = options;
        for file in &mut options.values_files {
            if file.is_relative() {
                *file = chart.dir().join(&*file);
            }
        }
        let renderer = self.renderer().await?;
        renderer
            .render(&chart, &options)
            .await
            .with_context(|| format!("rendering {name}"))
    }

    /// Renders chart `name` with one of its `ci/` value sets (`None`: defaults).
    ///
    /// # Errors
    /// See [`Charts::render`].
    pub async fn render_ci(
        &self,
        name: &str,
        values: Option<&str>,
    ) -> anyhow::Result<Arc<Rendered>> {
        let mut options = RenderOptions::default();
        if let Some(v) = values {
            options = options.values(format!("ci/{v}.yaml"));
        }
        self.render(name, options).await
    }
}

/// Fails with `message` unless `condition` holds (for use in `anyhow` cases).
#[macro_export]
macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            anyhow::bail!($($msg)+);
        }
    };
}

/// Fails unless both sides are equal, showing both.
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    anyhow::bail!("{} != {}: {:?} != {:?}", stringify!($left), stringify!($right), left, right);
                }
            }
        }
    };
    ($left:expr, $right:expr, $($msg:tt)+) => {
        match (&$left, &$right) {
            (left, right) => {
                if left != right {
                    anyhow::bail!("{}: {:?} != {:?}", format!($($msg)+), left, right);
                }
            }
        }
    };
}

/// A no_deploy case whose body gets the suite's shared [`Charts`].
pub fn chart_case<F, Fut>(charts: &Arc<Charts>, name: &str, body: F) -> harness::Case
where
    F: Fn(Arc<Charts>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let charts = charts.clone();
    harness::Case::no_deploy(name, move |_| body(charts.clone()))
}

/// The error of `result`, or a case failure saying that `what` should have failed.
///
/// # Errors
/// `result` is `Ok`.
pub fn expect_err<T, E>(result: Result<T, E>, what: &str) -> anyhow::Result<E> {
    match result {
        Ok(_) => anyhow::bail!("{what} should have failed"),
        Err(e) => Ok(e),
    }
}

/// Tag of the images this workspace builds (`localhost/<name>:<tag>`).
pub const IMAGE_TAG: &str = env!("CARGO_PKG_VERSION");

/// Runs `body` in a fresh [`harness::cluster::TestNamespace`] and deletes the
/// namespace afterwards — also when the body fails — unless `--keep-namespace`
/// says otherwise (then the namespace name is printed).
///
/// # Errors
/// No cluster, the namespace cannot be created or deleted, or the body fails.
pub async fn with_namespace<F, Fut>(ctx: &harness::Ctx, body: F) -> anyhow::Result<()>
where
    F: FnOnce(kube::Client, Arc<harness::cluster::TestNamespace>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    use harness::config::KeepNamespace;
    let client = harness::cluster::client(&ctx.config).await?;
    let ns =
        Arc::new(harness::cluster::TestNamespace::create(&client, &ctx.config, &ctx.case).await?);
    let result = body(client, ns.clone()).await;
    let keep = match ctx.config.keep_namespace {
        KeepNamespace::Always => true,
        KeepNamespace::OnFailure => result.is_err(),
        KeepNamespace::Never => false,
    };
    if keep {
        eprintln!(
            "keeping namespace {} (inspect: kubectl get all -n {})",
            ns.name(),
            ns.name()
        );
        return result;
    }
    let ns =
        Arc::try_unwrap(ns).map_err(|_| anyhow::anyhow!("the case still holds its namespace"))?;
    let cleanup = ns.delete(std::time::Duration::from_secs(120)).await;
    result?;
    cleanup?;
    Ok(())
}
