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

/// Creates `pod` in `ns` and waits (by watch) until it is ready; returns its name.
///
/// # Errors
/// The pod is refused, or not ready within 90 s (the error explains why).
pub async fn start_pod(
    ns: &harness::namespace::TestNamespace,
    pod: &k8s_openapi::api::core::v1::Pod,
) -> anyhow::Result<String> {
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = ns.api();
    let created = pods.create(&Default::default(), pod).await?;
    let name = created.metadata.name.unwrap_or_default();
    harness::wait::pod_ready(
        ns.client(),
        ns.name(),
        &name,
        std::time::Duration::from_secs(90),
    )
    .await?;
    Ok(name)
}

/// Installs a chart under test as `release` into `ns` with one of its `ci/` value
/// sets (`None`: defaults), waiting for every pod and Job (a failure explains why).
///
/// # Errors
/// helm is missing, or the install fails or times out.
pub async fn helm_install(
    ctx: &harness::Ctx,
    ns: &harness::namespace::TestNamespace,
    release: &str,
    chart: &str,
    values: Option<&str>,
) -> anyhow::Result<harness::deployment::ChartDeployment> {
    let mut options = harness::deployment::DeployOptions::default();
    if let Some(values) = values {
        options = options.values(format!("ci/{values}.yaml"));
    }
    Ok(
        harness::deployment::ChartDeployment::install(ctx, ns, release, chart_dir(chart), options)
            .await?,
    )
}

/// Sets the replicas of workload `name` (a Deployment or StatefulSet) in `ns`
/// through its scale subresource, as `kubectl scale` does.
///
/// # Errors
/// The API server refuses (no such workload).
pub async fn scale<K>(
    ns: &harness::namespace::TestNamespace,
    name: &str,
    replicas: i32,
) -> anyhow::Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    <K as kube::Resource>::DynamicType: Default,
{
    ns.api::<K>()
        .patch_scale(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
        )
        .await?;
    Ok(())
}
