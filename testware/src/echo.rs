//! `EchoServer`: the in-cluster helper whose `POST /echo` writes the request body
//! to the pod's stdout, so tests of log pipelines have a known line to look for.
//! Reached through a port-forward on a free local port — no fixed ports, so
//! parallel cases do not collide.

use std::path::Path;
use std::time::Duration;

use futures::{AsyncBufReadExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::Pod;

use crate::deployment::{ChartDeployment, DeployError};
use crate::namespace::TestNamespace;
use crate::net::PortForward;
use crate::options::ChartOptions;
use crate::runner::Ctx;
use crate::wait::WaitError;

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
    /// The line did not show up in the pod's log.
    #[error(transparent)]
    Wait(#[from] WaitError),
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
    /// Installs the chart at `chart` as release [`RELEASE`] with one replica into
    /// `namespace`, waits until its pod is ready and forwards a free local port to it.
    ///
    /// # Errors
    /// The install fails (explained), or no pod is ready.
    pub async fn deploy(
        ctx: &Ctx,
        namespace: &TestNamespace,
        chart: impl AsRef<Path>,
    ) -> Result<Self, EchoError> {
        let options = ChartOptions::default().set("replicaCount", "1");
        let deployment = ChartDeployment::install(ctx, namespace, RELEASE, chart, options).await?;
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
        let (status, body) =
            crate::net::http_request(self.forward.local_addr(), "POST", "/echo", line.as_bytes())
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
