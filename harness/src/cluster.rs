//! Access to the cluster: the client from kubeconfig/context and the probe that
//! decides whether chart_deploy cases can run.

use std::time::Duration;

use crate::config::RunConfig;

/// How long the probe waits for the API server before calling it unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why no cluster can be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterUnavailable {
    /// Neither `KUBECONFIG`, `~/.kube/config` nor an in-cluster service account.
    #[error("no kubeconfig found: {0}")]
    NoKubeconfig(String),
    /// The kubeconfig exists but cannot be used (bad file, unknown context).
    #[error("failed to load kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// The client could not be built from the kubeconfig.
    #[error("failed to build a client for {server}")]
    Client {
        /// The API server URL.
        server: String,
        /// What went wrong.
        #[source]
        source: kube::Error,
    },
    /// The API server did not answer the version request.
    #[error("API server {server} did not answer")]
    Unreachable {
        /// The API server URL.
        server: String,
        /// What went wrong.
        #[source]
        source: kube::Error,
    },
    /// The API server did not answer in time.
    #[error("API server {server} did not answer within {PROBE_TIMEOUT:?}")]
    Timeout {
        /// The API server URL.
        server: String,
    },
    /// The probe's runtime could not start.
    #[error("failed to start a runtime for the cluster probe")]
    Runtime(#[source] std::io::Error),
}

/// Loads the client configuration: the `--kube-context` of the kubeconfig if one
/// was given, else the usual inference (`KUBECONFIG`, `~/.kube/config`, in-cluster).
///
/// # Errors
/// No kubeconfig, or one that cannot be read or lacks the context.
pub async fn client_config(config: &RunConfig) -> Result<kube::Config, ClusterUnavailable> {
    match &config.kube_context {
        Some(context) => {
            let options = kube::config::KubeConfigOptions {
                context: Some(context.clone()),
                ..Default::default()
            };
            kube::Config::from_kubeconfig(&options)
                .await
                .map_err(ClusterUnavailable::Kubeconfig)
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ClusterUnavailable::NoKubeconfig(e.to_string())),
    }
}

/// Asks the API server for its version; returns the version string.
///
/// # Errors
/// See [`ClusterUnavailable`].
pub async fn probe(config: &RunConfig) -> Result<String, ClusterUnavailable> {
    let client_config = client_config(config).await?;
    let server = client_config.cluster_url.to_string();
    let client =
        kube::Client::try_from(client_config).map_err(|source| ClusterUnavailable::Client {
            server: server.clone(),
            source,
        })?;
    match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(source)) => Err(ClusterUnavailable::Unreachable { server, source }),
        Err(_) => Err(ClusterUnavailable::Timeout { server }),
    }
}
