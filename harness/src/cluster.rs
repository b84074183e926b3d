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

/// How long a namespace lives without renewal; a live run renews it every [`RENEW_EVERY`].
pub const LEASE: Duration = Duration::from_secs(300);
/// How often a live run renews its namespaces' expiry.
pub const RENEW_EVERY: Duration = Duration::from_secs(60);

fn expiry_from_now(lease: Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + lease;
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An ephemeral namespace for one case, labelled with the run, job and case.
/// Delete it with [`TestNamespace::delete`], which waits until it is gone.
pub struct TestNamespace {
    client: kube::Client,
    name: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        self.renewal.abort();
    }
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
    /// A condition did not hold in time.
    #[error("timed out after {after:?} waiting for {what} (last state: {last})")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
        /// The last state seen.
        last: String,
    },
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

fn api_error(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ClusterError {
    let action = action.into();
    move |source| ClusterError::Api { action, source }
}

impl TestNamespace {
    /// Creates a namespace named by [`RunConfig::namespace_name`] for `case`.
    ///
    /// # Errors
    /// The API server refuses the namespace.
    pub async fn create(
        client: &kube::Client,
        config: &RunConfig,
        case: &str,
    ) -> Result<Self, ClusterError> {
        use k8s_openapi::api::core::v1::Namespace;
        let name = config.namespace_name();
        let mut label_values = vec![
            (labels::MANAGED_BY, labels::MANAGER.to_owned()),
            (labels::RUN_ID, config.run_id.clone()),
            (labels::CASE, label_value(case)),
        ];
        if let Some(job) = &config.ci_job_id {
            label_values.push((labels::JOB_ID, label_value(job)));
        }
        let namespace = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    label_values
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                ),
                annotations: Some([(labels::EXPIRES_AT.to_owned(), expiry_from_now(LEASE))].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        kube::Api::<Namespace>::all(client.clone())
            .create(&Default::default(), &namespace)
            .await
            .map_err(api_error(format!("create namespace {name}")))?;
        // While this run lives, push the expiry forward; a killed run stops renewing
        // and the janitor of a later run reaps the namespace.
        let (renew_client, renew_name) = (client.clone(), name.clone());
        let renewal = tokio::spawn(async move {
            let api = kube::Api::<Namespace>::all(renew_client);
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let patch = serde_json::json!({"metadata": {"annotations": {labels::EXPIRES_AT: expiry_from_now(LEASE)}}});
                let _ = api
                    .patch(
                        &renew_name,
                        &kube::api::PatchParams::default(),
                        &kube::api::Patch::Merge(&patch),
                    )
                    .await;
            }
        });
        let ns = Self {
            client: client.clone(),
            name,
            renewal,
        };
        ns.wait_usable(Duration::from_secs(30)).await?;
        Ok(ns)
    }

    /// Waits until pods can be created: the `default` ServiceAccount exists and,
    /// on clusters before 1.24 (token Secrets), has its token.
    async fn wait_usable(&self, timeout: Duration) -> Result<(), ClusterError> {
        use k8s_openapi::api::core::v1::ServiceAccount;
        let version = self
            .client
            .apiserver_version()
            .await
            .map_err(api_error("read the server version"))?;
        let minor: u32 = version
            .minor
            .trim_end_matches('+')
            .parse()
            .unwrap_or(u32::MAX);
        let needs_token = version.major == "1" && minor < 24;
        let accounts: kube::Api<ServiceAccount> = self.api();
        let usable = move |sa: Option<&ServiceAccount>| {
            sa.is_some_and(|sa| !needs_token || sa.secrets.as_ref().is_some_and(|s| !s.is_empty()))
        };
        let waited = tokio::time::timeout(
            timeout,
            kube::runtime::wait::await_condition(accounts, "default", usable),
        )
        .await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ClusterError::Timeout {
                what: format!("namespace {} to be usable", self.name),
                after: timeout,
                last: e.to_string(),
            }),
            Err(_) => Err(ClusterError::Timeout {
                what: format!("the default ServiceAccount of namespace {}", self.name),
                after: timeout,
                last: "no token yet (is kube-controller-manager running?)".into(),
            }),
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A namespaced API in this namespace.
    pub fn api<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        kube::Api::namespaced(self.client.clone(), &self.name)
    }

    /// Deletes the namespace (pods without grace period) and waits until it is gone.
    ///
    /// # Errors
    /// The deletion is refused, or the namespace still exists after `timeout`.
    pub async fn delete(self, timeout: Duration) -> Result<(), ClusterError> {
        use k8s_openapi::api::core::v1::{Namespace, Pod};
        let pods: kube::Api<Pod> = self.api();
        let now = kube::api::DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        };
        let _ = pods.delete_collection(&now, &Default::default()).await;
        let namespaces = kube::Api::<Namespace>::all(self.client.clone());
        let uid = match namespaces
            .get_opt(&self.name)
            .await
            .map_err(api_error(format!("read namespace {}", self.name)))?
        {
            None => return Ok(()),
            Some(ns) => ns.metadata.uid.unwrap_or_default(),
        };
        match namespaces.delete(&self.name, &Default::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
            Err(e) => return Err(api_error(format!("delete namespace {}", self.name))(e)),
        }
        let gone = kube::runtime::wait::await_condition(
            namespaces.clone(),
            &self.name,
            kube::runtime::wait::conditions::is_deleted(&uid),
        );
        // Controllers may still create pods while the namespace terminates, and the
        // namespace controller deletes them with their own grace period: watch the
        // namespace's pods and cut each one's grace period to 0.
        let hurry = async {
            use futures::StreamExt as _;
            use kube::runtime::WatchStreamExt as _;
            let events = kube::runtime::watcher(pods.clone(), Default::default())
                .default_backoff()
                .applied_objects();
            futures::pin_mut!(events);
            while let Some(event) = events.next().await {
                let Ok(pod) = event else { continue };
                let graced = pod
                    .metadata
                    .deletion_grace_period_seconds
                    .is_none_or(|g| g > 0);
                if let (true, Some(name)) = (graced, pod.metadata.name.as_deref()) {
                    let _ = pods.delete(name, &now).await;
                }
            }
            std::future::pending::<Result<Option<Namespace>, kube::runtime::wait::Error>>().await
        };
        let gone = async {
            tokio::select! {
                result = gone => result,
                never = hurry => never,
            }
        };
        match tokio::time::timeout(timeout, gone).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ClusterError::Timeout {
                what: format!("namespace {} to be deleted", self.name),
                after: timeout,
                last: e.to_string(),
            }),
            Err(_) => {
                let last = namespaces
                    .get_opt(&self.name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|ns| ns.status)
                    .map(|s| {
                        format!(
                            "phase {:?}, conditions {:?}",
                            s.phase,
                            s.conditions
                                .unwrap_or_default()
                                .iter()
                                .map(|c| c.message.clone().unwrap_or_default())
                                .collect::<Vec<_>>()
                        )
                    })
                    .unwrap_or_else(|| "gone".into());
                Err(ClusterError::Timeout {
                    what: format!("namespace {} to be deleted", self.name),
                    after: timeout,
                    last,
                })
            }
        }
    }
}

/// Deletes the namespaces of runs that stopped renewing them (killed runs):
/// harness-managed namespaces whose `expires-at` has passed. Returns their names.
///
/// # Errors
/// Listing namespaces fails.
pub async fn reap_expired(client: &kube::Client) -> Result<Vec<String>, ClusterError> {
    use k8s_openapi::api::core::v1::Namespace;
    let api = kube::Api::<Namespace>::all(client.clone());
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGER);
    let list = api
        .list(&kube::api::ListParams::default().labels(&selector))
        .await
        .map_err(api_error("list harness namespaces"))?;
    let now = time::OffsetDateTime::now_utc();
    let mut reaped = Vec::new();
    for ns in list.items {
        let expired = ns
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(labels::EXPIRES_AT))
            .and_then(|at| {
                time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
            })
            .is_some_and(|at| at < now);
        let (Some(name), true, None) = (ns.metadata.name, expired, ns.metadata.deletion_timestamp)
        else {
            continue;
        };
        match api.delete(&name, &Default::default()).await {
            Ok(_) => reaped.push(name),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(api_error(format!("delete expired namespace {name}"))(e)),
        }
    }
    Ok(reaped)
}

/// Label values: at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends.
pub fn label_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// Waits until the pod `name` is Ready, by watching it.
///
/// # Errors
/// [`ClusterError::Timeout`] with the pod's last phase and container states.
pub async fn wait_pod_ready(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    name: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    use k8s_openapi::api::core::v1::Pod;
    let ready = |pod: Option<&Pod>| {
        pod.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let waited = tokio::time::timeout(
        timeout,
        kube::runtime::wait::await_condition(pods.clone(), name, ready),
    )
    .await;
    match waited {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ClusterError::Timeout {
            what: format!("pod {name} to be ready"),
            after: timeout,
            last: e.to_string(),
        }),
        Err(_) => Err(ClusterError::Timeout {
            what: format!("pod {name} to be ready"),
            after: timeout,
            last: explain_pod(pods, name).await,
        }),
    }
}

/// Why a pod is not ready, for timeout messages: its phase, each container's
/// state (waiting reason and message, e.g. `ImagePullBackOff … localhost/x:1`;
/// the last exit code and log lines of a crashing container), the conditions that
/// are not true (e.g. `PodScheduled False: 0/1 nodes are available …`), and its
/// latest warning events.
pub async fn explain_pod(pods: &kube::Api<k8s_openapi::api::core::v1::Pod>, name: &str) -> String {
    use k8s_openapi::api::core::v1::Event;
    let Ok(Some(pod)) = pods.get_opt(name).await else {
        return format!("pod {name} does not exist");
    };
    let mut text = describe_pod(&pod);
    for status in pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
    {
        // The container that exited: the current one if it is terminated, else the previous one.
        let current = status.state.as_ref().and_then(|s| s.terminated.as_ref());
        let previous = status
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.as_ref());
        if let Some(last) = current.or(previous) {
            let params = kube::api::LogParams {
                container: Some(status.name.clone()),
                previous: current.is_none(),
                tail_lines: Some(5),
                ..Default::default()
            };
            let mut logs = pods.logs(name, &params).await.unwrap_or_default();
            if logs.trim().is_empty() {
                // The kubelet may already have replaced or removed that instance: try the other one.
                let other = kube::api::LogParams {
                    previous: !params.previous,
                    ..params
                };
                logs = pods.logs(name, &other).await.unwrap_or_default();
            }
            text.push_str(&format!(
                "; container {} last exit {} ({}), last log lines: {}",
                status.name,
                last.exit_code,
                last.reason.clone().unwrap_or_default(),
                logs.trim().replace('\n', " | ")
            ));
        }
    }
    if let Some(ns) = pod.metadata.namespace.as_deref() {
        let events: kube::Api<Event> = kube::Api::namespaced(pods.clone().into_client(), ns);
        let selector = format!("involvedObject.name={name},type=Warning");
        if let Ok(list) = events
            .list(&kube::api::ListParams::default().fields(&selector))
            .await
        {
            let mut items = list.items;
            items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
            for e in items.iter().rev().take(3) {
                text.push_str(&format!(
                    "; event {}: {}",
                    e.reason.clone().unwrap_or_default(),
                    e.message.clone().unwrap_or_default().trim()
                ));
            }
        }
    }
    text
}

/// Phase and container states of a pod, for messages.
pub fn describe_pod(pod: &k8s_openapi::api::core::v1::Pod) -> String {
    let Some(status) = &pod.status else {
        return "no status".into();
    };
    let mut parts = vec![format!(
        "phase {}",
        status.phase.clone().unwrap_or_default()
    )];
    for c in status.container_statuses.iter().flatten() {
        let state = c.state.as_ref();
        let detail = if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
            format!(
                "waiting: {} {}",
                w.reason.clone().unwrap_or_default(),
                w.message.clone().unwrap_or_default()
            )
        } else if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
            format!(
                "terminated: exit {} {}",
                t.exit_code,
                t.reason.clone().unwrap_or_default()
            )
        } else {
            "running".into()
        };
        parts.push(format!("container {} {}", c.name, detail.trim()));
    }
    for cond in status
        .conditions
        .iter()
        .flatten()
        .filter(|c| c.status != "True")
    {
        parts.push(format!(
            "{} {} ({}): {}",
            cond.type_,
            cond.status,
            cond.reason.clone().unwrap_or_default(),
            cond.message.clone().unwrap_or_default()
        ));
    }
    parts.join("; ")
}

/// Runs `command` in `pod` through the API server; returns stdout.
///
/// # Errors
/// The exec request fails, or the command exits non-zero (with its stderr).
pub async fn exec(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    pod: &str,
    command: &[&str],
) -> Result<String, ClusterError> {
    use tokio::io::AsyncReadExt;
    let shown = command.join(" ");
    let params = kube::api::AttachParams::default()
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut attached = pods
        .exec(pod, command.iter().copied(), &params)
        .await
        .map_err(api_error(format!("exec `{shown}` in {pod}")))?;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let out_reader = attached.stdout();
    let err_reader = attached.stderr();
    let status = attached.take_status();
    let read_out = async {
        if let Some(mut r) = out_reader {
            let _ = r.read_to_string(&mut stdout).await;
        }
    };
    let read_err = async {
        if let Some(mut r) = err_reader {
            let _ = r.read_to_string(&mut stderr).await;
        }
    };
    futures::join!(read_out, read_err);
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let _ = attached.join().await;
    match status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(stdout),
        Some(s) => Err(ClusterError::Exec {
            command: shown,
            pod: pod.to_owned(),
            detail: format!(
                "{}; stderr: {}",
                s.message.unwrap_or_default(),
                stderr.trim()
            ),
        }),
        None => Err(ClusterError::Exec {
            command: shown,
            pod: pod.to_owned(),
            detail: format!("no exit status; stderr: {}", stderr.trim()),
        }),
    }
}

/// Sends one HTTP/1.0 request to `port` of `pod` through an API-server
/// port-forward (no local port is opened); returns the raw response.
///
/// # Errors
/// The port-forward cannot be opened or the exchange fails.
pub async fn port_forward_http(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    pod: &str,
    port: u16,
    request: &str,
) -> Result<String, ClusterError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut forwarder = pods
        .portforward(pod, &[port])
        .await
        .map_err(api_error(format!("port-forward to {pod}:{port}")))?;
    let mut stream = forwarder
        .take_stream(port)
        .ok_or_else(|| ClusterError::Exec {
            command: format!("port-forward {port}"),
            pod: pod.to_owned(),
            detail: "no stream for the port".into(),
        })?;
    let io_error = |e: std::io::Error| ClusterError::Exec {
        command: format!("port-forward {port}"),
        pod: pod.to_owned(),
        detail: e.to_string(),
    };
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_error)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(io_error)?;
    drop(stream);
    let _ = forwarder.join().await;
    Ok(String::from_utf8_lossy(&response).into_owned())
}
