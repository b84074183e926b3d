//! `EchoServer`: the in-cluster helper whose `POST /echo` writes the request body
//! to the pod's stdout, so tests of log pipelines have a known line to look for.
//! Reached through a port-forward on a free local port — no fixed ports, so
//! parallel cases do not collide. Chart and image come with the library
//! ([`EchoServer::deploy_bundled`]), so any repository can use it.

use std::path::Path;
use std::time::Duration;

use futures::{AsyncBufReadExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::Pod;

use crate::charts::options::Values;
use crate::cluster::namespace::TestNamespace;
use crate::cluster::net::PortForward;
use crate::cluster::wait::WaitError;
use crate::config::Tools;
use crate::containers::images::{CrateSource, ImageError, Provision};
use crate::deployment::{ChartDeployment, DeployError, Install};
use crate::runner::Ctx;

/// The echo-server chart, shipped inside the library so that any repository can
/// deploy it; its image is built on demand from [`SERVER_SOURCE`].
const BUNDLED_CHART: &[(&str, &str)] = &[
    (
        "Chart.yaml",
        include_str!("../assets/echo-server/chart/Chart.yaml"),
    ),
    (
        "values.yaml",
        include_str!("../assets/echo-server/chart/values.yaml"),
    ),
    (
        "values.schema.json",
        include_str!("../assets/echo-server/chart/values.schema.json"),
    ),
    (
        "templates/_helpers.tpl",
        include_str!("../assets/echo-server/chart/templates/_helpers.tpl"),
    ),
    (
        "templates/deployment.yaml",
        include_str!("../assets/echo-server/chart/templates/deployment.yaml"),
    ),
    (
        "templates/service.yaml",
        include_str!("../assets/echo-server/chart/templates/service.yaml"),
    ),
    (
        "templates/tests/healthz.yaml",
        include_str!("../assets/echo-server/chart/templates/tests/healthz.yaml"),
    ),
];

/// The echo server's source as a crate of its own (the same `main.rs` as this
/// repository's echo-server image), compiled on demand into the image the
/// bundled chart runs ([`EchoServer::bundled_image`]).
pub const SERVER_SOURCE: CrateSource = CrateSource {
    name: "testware-echo-server",
    files: &[
        (
            "Cargo.toml",
            include_str!("../assets/echo-server/server/standalone.Cargo.toml"),
        ),
        (
            "Cargo.lock",
            include_str!("../assets/echo-server/server/standalone.Cargo.lock"),
        ),
        (
            "src/main.rs",
            include_str!("../assets/echo-server/server/src/main.rs"),
        ),
    ],
};

/// The release name of the echo server in a case's namespace.
pub const RELEASE: &str = "echo";

/// Errors of the echo server helper.
#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    /// Deploying or querying the release failed.
    #[error(transparent)]
    Deploy(#[from] DeployError),
    /// The echo request did not get through.
    #[error("POST /echo to {target} failed: {detail}")]
    Request {
        /// The forwarded target.
        target: String,
        /// What went wrong.
        detail: String,
    },
    /// The bundled chart could not be written out.
    #[error("failed to write the bundled echo-server chart to {}", dir.display())]
    Chart {
        /// Where it was written.
        dir: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The line did not show up in the pod's log.
    #[error(transparent)]
    Wait(#[from] WaitError),
    /// The on-demand image could not be built or imported.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// No cluster to put the image into.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterUnavailable),
}

/// One echo-server pod deployed from the echo-server chart.
#[derive(Debug)]
pub struct EchoServer {
    deployment: ChartDeployment,
    pod: String,
    port: u16,
    forward: PortForward,
}

impl EchoServer {
    /// The chart shipped with the library, written out (once per content) under
    /// the cache directory (`$HARNESS_CACHE_DIR/charts/echo-server-<version>/`).
    ///
    /// # Errors
    /// The directory cannot be written.
    pub fn bundled_chart(tools: &Tools) -> Result<std::path::PathBuf, EchoError> {
        let version = BUNDLED_CHART
            .iter()
            .find(|(name, _)| *name == "Chart.yaml")
            .and_then(|(_, text)| text.lines().find_map(|l| l.strip_prefix("version: ")))
            .unwrap_or("0")
            .trim();
        let dir = tools
            .cache_dir
            .join("charts")
            .join(format!("echo-server-{version}"));
        crate::charts::helm::write_embedded(&dir, BUNDLED_CHART).map_err(|source| {
            EchoError::Chart {
                dir: dir.clone(),
                source,
            }
        })?;
        Ok(dir)
    }

    /// Makes sure the cluster's nodes have the echo server's image, building it
    /// from [`SERVER_SOURCE`] and importing it if not (see [`crate::containers::images`]);
    /// returns its reference and what was done.
    ///
    /// # Errors
    /// No cluster, or building or importing failed (the error names the step).
    pub async fn bundled_image(ctx: &Ctx) -> Result<(String, Provision), EchoError> {
        let client = ctx.client().await?;
        Ok(crate::containers::images::provide(&ctx.config, &client, SERVER_SOURCE).await?)
    }

    /// [`EchoServer::deploy`] with everything shipped in the library: the chart
    /// ([`EchoServer::bundled_chart`]) and its image, built on demand
    /// ([`EchoServer::bundled_image`]). Works from any repository.
    ///
    /// # Errors
    /// As for [`EchoServer::deploy`] and [`EchoServer::bundled_image`], or the
    /// chart cannot be written out.
    pub async fn deploy_bundled(ctx: &Ctx, namespace: &TestNamespace) -> Result<Self, EchoError> {
        let (image, _) = Self::bundled_image(ctx).await?;
        let (repository, tag) = image.rsplit_once(':').unwrap_or((&image, ""));
        // Imported, never pulled: a missing image is reported at once (ErrImageNeverPull).
        let values = Values::default()
            .set("image.repository", repository)
            .set("image.tag", tag)
            .set("image.pullPolicy", "Never");
        Self::deploy_with(
            ctx,
            namespace,
            Self::bundled_chart(&ctx.config.tools)?,
            values,
        )
        .await
    }

    /// Installs the chart at `chart` (with its own image) as release [`RELEASE`]
    /// with one replica into `namespace`, waits until its pod is ready and
    /// forwards a free local port to it.
    ///
    /// # Errors
    /// The install fails (explained), or no pod is ready.
    pub async fn deploy(
        ctx: &Ctx,
        namespace: &TestNamespace,
        chart: impl AsRef<Path>,
    ) -> Result<Self, EchoError> {
        Self::deploy_with(ctx, namespace, chart, Values::default()).await
    }

    /// [`EchoServer::deploy`] with extra `values` (an image of your own, say).
    ///
    /// # Errors
    /// As for [`EchoServer::deploy`].
    pub async fn deploy_with(
        ctx: &Ctx,
        namespace: &TestNamespace,
        chart: impl AsRef<Path>,
        values: Values,
    ) -> Result<Self, EchoError> {
        let deployment = Install::chart(chart.as_ref())
            .release(RELEASE)
            .with_values(values.set("replicaCount", "1"))
            .run(ctx, namespace)
            .await?;
        let pod = deployment
            .ready_pods()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| EchoError::Request {
                target: format!("release {RELEASE}"),
                detail: "no ready pod after the install".into(),
            })?;
        let values = deployment.values().await?;
        let port = values["containerPort"].as_u64().unwrap_or(8080) as u16;
        let forward = deployment.port_forward(&format!("pod/{pod}"), port).await?;
        Ok(Self {
            deployment,
            pod,
            port,
            forward,
        })
    }

    /// Makes the pod print `line` on its stdout (one line; a trailing newline is added).
    ///
    /// # Errors
    /// The request fails or is not answered with 200.
    pub async fn print_to_stdout(&self, line: &str) -> Result<(), EchoError> {
        let failed = |detail: String| EchoError::Request {
            target: self.forward.target().to_owned(),
            detail,
        };
        let (status, body) = crate::cluster::net::http_request(
            self.forward.local_addr(),
            "POST",
            "/echo",
            line.as_bytes(),
        )
        .await
        .map_err(|e| failed(e.to_string()))?;
        if status != 200 {
            return Err(failed(format!("status {status}: {}", body.trim())));
        }
        Ok(())
    }

    /// Every line the pod has logged so far (stdout and stderr, as the kubelet keeps them).
    ///
    /// # Errors
    /// The log cannot be read.
    pub async fn printed(&self) -> Result<Vec<String>, EchoError> {
        let log = self.deployment.logs(&self.pod, None, false).await?;
        Ok(log.lines().map(str::to_owned).collect())
    }

    /// Follows the pod's log until `line` appears, for at most `timeout` (a
    /// streamed log, not polling: it returns as soon as the line is written).
    ///
    /// # Errors
    /// A timeout saying how many lines were seen and the last of them.
    pub async fn wait_printed(&self, line: &str, timeout: Duration) -> Result<(), EchoError> {
        let pods: kube::Api<Pod> = self.deployment.api();
        let params = kube::api::LogParams {
            follow: true,
            ..Default::default()
        };
        let started = std::time::Instant::now();
        let (mut seen, mut last) = (0usize, String::new());
        let follow = async {
            let stream = pods
                .log_stream(&self.pod, &params)
                .await
                .map_err(|e| e.to_string())?;
            let mut lines = stream.lines();
            while let Some(next) = lines.next().await {
                let next = next.map_err(|e| e.to_string())?;
                if next == line {
                    return Ok(());
                }
                seen += 1;
                last = next;
            }
            Err("the log stream ended (the container stopped)".to_owned())
        };
        let outcome = tokio::time::timeout(timeout, follow).await;
        let problem = match outcome {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => e,
            Err(_) => "timed out".to_owned(),
        };
        Err(EchoError::Wait(WaitError::Timeout {
            what: format!("pod {} to print {line:?}", self.pod),
            waited: started.elapsed(),
            last: format!("{problem}; {seen} other lines, the last: {last:?}"),
            cause: None,
        }))
    }

    /// The pod that serves and prints.
    pub fn pod(&self) -> &str {
        &self.pod
    }

    /// The container port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The local address forwarded to the pod.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.forward.local_addr()
    }

    /// The release behind it.
    pub fn deployment(&self) -> &ChartDeployment {
        &self.deployment
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_chart_is_written_out_whole_and_opens() {
        let scratch = std::env::temp_dir().join(format!(
            "echo-chart-test-{}",
            crate::config::random_suffix(6)
        ));
        let tools = Tools {
            cache_dir: scratch.clone(),
            ..Tools::from_process()
        };
        let dir = EchoServer::bundled_chart(&tools).unwrap();
        assert!(dir.starts_with(&scratch), "{}", dir.display());
        for (name, text) in BUNDLED_CHART {
            assert_eq!(
                &std::fs::read_to_string(dir.join(name)).unwrap(),
                text,
                "{name}"
            );
        }
        let chart = crate::HelmChart::open(&dir).unwrap();
        assert_eq!(chart.meta().name, "echo-server");
        // A second call finds everything in place.
        assert_eq!(EchoServer::bundled_chart(&tools).unwrap(), dir);
        std::fs::remove_dir_all(&scratch).unwrap();
    }
}
