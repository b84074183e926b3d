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
    /// The kubeconfig file named by `--kubeconfig` or `KUBECONFIG` cannot be read.
    #[error("failed to read the kubeconfig {} (named by {origin}) (hint: {origin} must name a readable kubeconfig file, e.g. the one `kind get kubeconfig` prints)", path.display())]
    KubeconfigFile {
        /// The file.
        path: std::path::PathBuf,
        /// `--kubeconfig` or `KUBECONFIG`.
        origin: String,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The API server answered but refused the kubeconfig's credentials.
    #[error("API server {server} refused the kubeconfig's credentials (hint: an expired or revoked client certificate or token; get a fresh kubeconfig)")]
    Refused {
        /// The API server URL.
        server: String,
        /// Its answer.
        #[source]
        source: kube::Error,
    },
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
    #[error("API server {server} did not answer (hint: is the cluster running, and is this the server it listens on?)")]
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
    if let Some((path, origin)) = &config.kubeconfig {
        let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|source| {
            ClusterUnavailable::KubeconfigFile {
                path: path.clone(),
                origin: origin.clone(),
                source,
            }
        })?;
        let options = kube::config::KubeConfigOptions {
            context: config.kube_context.clone(),
            ..Default::default()
        };
        return kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|source| ClusterUnavailable::KubeconfigFile {
                path: path.clone(),
                origin: origin.clone(),
                source,
            });
    }
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
        Ok(Err(source)) if is_refusal(&source) => {
            Err(ClusterUnavailable::Refused { server, source })
        }
        Ok(Err(source)) => Err(ClusterUnavailable::Unreachable { server, source }),
        Err(_) => Err(ClusterUnavailable::Timeout { server }),
    }
}

/// 401 or 403: the server answered, and said no to these credentials.
fn is_refusal(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 401 || status.code == 403)
}

/// A client for the configured cluster.
///
/// # Errors
/// No usable kubeconfig, or the client cannot be built.
pub async fn client(config: &RunConfig) -> Result<kube::Client, ClusterUnavailable> {
    let client_config = client_config(config).await?;
    let server = client_config.cluster_url.to_string();
    kube::Client::try_from(client_config)
        .map_err(|source| ClusterUnavailable::Client { server, source })
}

/// Label keys the harness puts on what it creates.
pub mod labels {
    /// Marks objects created by the harness.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// Value of [`MANAGED_BY`].
    pub const MANAGER: &str = "testware-harness";
    /// The run that created the object.
    pub const RUN_ID: &str = "testware.io/run-id";
    /// The CI job that created the object.
    pub const JOB_ID: &str = "testware.io/ci-job-id";
    /// The case that created the object.
    pub const CASE: &str = "testware.io/case";
    /// Annotation: when the namespace may be reaped unless its run renews it (RFC 3339, UTC).
    pub const EXPIRES_AT: &str = "testware.io/expires-at";
}

/// Errors from cluster operations of the harness.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The API server refused or failed a request.
    #[error("failed to {action}")]
    Api {
        /// What was attempted.
        action: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// A condition did not hold in time (the one timeout type, [`crate::wait::WaitError`]).
    #[error(transparent)]
    Wait(#[from] crate::wait::WaitError),
    /// A command in a pod failed.
    #[error("`{command}` in pod {pod} failed: {detail}")]
    Exec {
        /// The command.
        command: String,
        /// The pod.
        pod: String,
        /// Exit status and stderr.
        detail: String,
    },
}

pub(crate) fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ClusterError {
    let action = action.into();
    move |source| ClusterError::Api { action, source }
}
