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
    /// The API server answered, but no node can take a pod.
    #[error("no node of the cluster at {server} can take pods: {nodes}")]
    NoUsableNode {
        /// The API server URL.
        server: String,
        /// Each node and what keeps it from taking pods, with a hint.
        nodes: String,
    },
    /// The probe's runtime could not start.
    #[error("failed to start a runtime for the cluster probe")]
    Runtime(#[source] std::io::Error),
}

impl ClusterUnavailable {
    /// The reason with what to do about it: where to point the harness, unless the
    /// error has a remedy of its own (the cluster answered, but refused or is unusable).
    pub fn with_remedy(&self) -> String {
        let reason = crate::error_chain(self);
        match self {
            Self::Refused { .. } | Self::KubeconfigFile { .. } | Self::NoUsableNode { .. } => reason,
            _ => format!("{reason} (hint: set KUBECONFIG or --kube-context to a cluster such as kind or k3d; `testware cluster up` starts a local one)"),
        }
    }
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
    let version = match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
        Ok(Ok(info)) => info.git_version,
        Ok(Err(source)) if is_refusal(&source) => {
            return Err(ClusterUnavailable::Refused { server, source })
        }
        Ok(Err(source)) => return Err(ClusterUnavailable::Unreachable { server, source }),
        Err(_) => return Err(ClusterUnavailable::Timeout { server }),
    };
    // A node that just started may still be settling: look again a few times.
    let mut unusable = String::new();
    for attempt in 0..NODE_CHECKS {
        if attempt > 0 {
            tokio::time::sleep(NODE_CHECK_INTERVAL).await;
        }
        match tokio::time::timeout(PROBE_TIMEOUT, unusable_nodes(&client)).await {
            Ok(Some(nodes)) => unusable = nodes,
            // Usable, or not ours to know (no permission to list nodes, a slow answer):
            // the cases' own waits explain what goes wrong then.
            Ok(None) | Err(_) => return Ok(version),
        }
    }
    Err(ClusterUnavailable::NoUsableNode {
        server,
        nodes: unusable,
    })
}

/// How often, and how far apart, the probe looks for a node that can take pods.
const NODE_CHECKS: u32 = 3;
const NODE_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// `None` when some node can take pods (or the nodes cannot be listed); else each
/// node with what keeps it from taking pods.
async fn unusable_nodes(client: &kube::Client) -> Option<String> {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    let list = nodes.list(&Default::default()).await.ok()?;
    if list.items.is_empty() {
        return Some("the cluster has no nodes".into());
    }
    let mut reasons = Vec::new();
    for node in &list.items {
        let problems = node_problems(node);
        if problems.is_empty() {
            return None;
        }
        let name = node.metadata.name.as_deref().unwrap_or("?");
        reasons.push(format!("node {name}: {}", problems.join(", ")));
    }
    Some(reasons.join("; "))
}

/// What keeps one node from taking pods: not Ready, cordoned, or a resource
/// pressure the kubelet reports (each pressure with the usual remedy).
pub fn node_problems(node: &k8s_openapi::api::core::v1::Node) -> Vec<String> {
    let mut problems = Vec::new();
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        problems.push("cordoned (hint: kubectl uncordon)".to_owned());
    }
    let conditions = node
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten());
    let mut ready = false;
    for c in conditions {
        let is_true = c.status == "True";
        let message = c.message.as_deref().unwrap_or_default();
        match c.type_.as_str() {
            "Ready" => {
                ready = is_true;
                if !is_true {
                    problems.push(format!("not Ready ({message})"));
                }
            }
            "DiskPressure" if is_true => problems.push(format!(
                "DiskPressure: {message} (hint: free disk space where the node keeps images and pod data; for kind, k3d and the local cluster that is this machine's disk, see `df -h`)"
            )),
            "MemoryPressure" if is_true => problems.push(format!(
                "MemoryPressure: {message} (hint: stop what uses the node's memory, or give it more)"
            )),
            "PIDPressure" if is_true => problems.push(format!(
                "PIDPressure: {message} (hint: too many processes on the node)"
            )),
            _ => {}
        }
    }
    if !ready && !problems.iter().any(|p| p.starts_with("not Ready")) {
        problems.push("no Ready condition yet".to_owned());
    }
    problems
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
    /// Annotation on `kube-system`: changed whenever images are removed from the
    /// cluster's nodes (`testware cluster reset --images`), so what this machine
    /// remembers having imported into the cluster no longer counts.
    pub const IMAGES_GENERATION: &str = "testware.io/images-generation";
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
    /// A condition did not hold in time (the one timeout type, [`crate::cluster::wait::WaitError`]).
    #[error(transparent)]
    Wait(#[from] crate::cluster::wait::WaitError),
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

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Node;

    use super::node_problems;

    fn node(spec: serde_json::Value, conditions: serde_json::Value) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "spec": spec,
            "status": {"conditions": conditions},
        }))
        .expect("a node")
    }

    fn condition(type_: &str, status: &str, message: &str) -> serde_json::Value {
        serde_json::json!({"type": type_, "status": status, "message": message})
    }

    #[test]
    fn a_ready_node_without_pressure_has_no_problem() {
        let n = node(
            serde_json::json!({}),
            serde_json::json!([
                condition("Ready", "True", "kubelet is posting ready status"),
                condition("DiskPressure", "False", "has sufficient disk space"),
            ]),
        );
        assert_eq!(node_problems(&n), Vec::<String>::new());
    }

    #[test]
    fn disk_pressure_is_named_with_a_hint() {
        let n = node(
            serde_json::json!({}),
            serde_json::json!([
                condition("Ready", "True", ""),
                condition("DiskPressure", "True", "kubelet has disk pressure"),
            ]),
        );
        let problems = node_problems(&n);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0]
            .starts_with("DiskPressure: kubelet has disk pressure (hint: free disk space"));
    }

    #[test]
    fn a_cordoned_node_that_is_not_ready_has_both_problems() {
        let n = node(
            serde_json::json!({"unschedulable": true}),
            serde_json::json!([condition("Ready", "False", "PLEG is not healthy")]),
        );
        assert_eq!(
            node_problems(&n),
            vec![
                "cordoned (hint: kubectl uncordon)".to_owned(),
                "not Ready (PLEG is not healthy)".to_owned()
            ]
        );
    }

    #[test]
    fn a_node_without_conditions_is_not_ready_yet() {
        let n = node(serde_json::json!({}), serde_json::json!([]));
        assert_eq!(node_problems(&n), vec!["no Ready condition yet".to_owned()]);
    }
}
