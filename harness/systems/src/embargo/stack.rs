//! A deployed embargo-ingest release reached from the test: its path, its
//! components' counters, killed workers.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use serde_json::Value;

use crate::redis::Redis;
use testware::deployment::ChartDeployment;
use testware::net::PortForward;

use super::{EmbargoError, EmbargoPath, Location, Notifier};

/// An ingest pod killed by [`EmbargoStack::kill_worker_holding`].
#[derive(Debug, Clone)]
pub struct KilledWorker {
    /// The pod.
    pub pod: String,
    /// Its worker list, `WORKER:{bucket}:{pod}`.
    pub list: String,
    /// The keys its list held just after the kill.
    pub stranded: Vec<String>,
}

/// A deployed embargo-ingest release, reached from the test process: the
/// webhook through a port-forward, Redis through another. Its [`EmbargoPath`]
/// is reached through the stack (`stack.notifier`, `stack.ingested()`).
pub struct EmbargoStack {
    path: EmbargoPath,
    deployment: ChartDeployment,
    _webhook: PortForward,
}

impl std::ops::Deref for EmbargoStack {
    type Target = EmbargoPath;

    fn deref(&self) -> &EmbargoPath {
        &self.path
    }
}

impl std::fmt::Debug for EmbargoStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EmbargoStack({:?}, {:?})",
            self.deployment, self.path.redis
        )
    }
}

impl EmbargoStack {
    /// Reaches the release's webhook (pod of `app.kubernetes.io/component=enqueue`)
    /// and Redis (pod of `component=redis`); the bucket, the webhook's secret and
    /// the Redis password are read from what the pods are given (environment
    /// and the Secrets it refers to), never printed.
    ///
    /// # Errors
    /// A component, its Secret or its port is missing, or cannot be reached.
    pub async fn connect(deployment: &ChartDeployment) -> Result<Self, EmbargoError> {
        let enqueue = component_pod(deployment, "enqueue").await?;
        let bucket = env_value(deployment, &enqueue, "BUCKET").await?;
        let secret = env_value(deployment, &enqueue, "NOTIFICATION_SECRET").await?;
        let webhook_port = container_port(&enqueue, "http")?;
        let redis_pod = component_pod(deployment, "redis").await?;
        let password = env_value(deployment, &redis_pod, "REDIS_PASSWORD").await?;
        let redis_port = container_port(&redis_pod, "redis")?;
        let webhook = deployment
            .port_forward(&format!("pod/{}", name_of(&enqueue)), webhook_port)
            .await?;
        let redis = Redis::to_pod(
            deployment.client(),
            deployment.namespace(),
            &name_of(&redis_pod),
            redis_port,
            &password,
        )
        .await?;
        Ok(Self {
            path: EmbargoPath {
                notifier: Notifier::new(webhook.url(), bucket, secret),
                redis,
            },
            deployment: deployment.clone(),
            _webhook: webhook,
        })
    }

    /// The notifier for the release's bucket.
    pub fn notifier(&self) -> &Notifier {
        &self.path.notifier
    }

    /// The release.
    pub fn deployment(&self) -> &ChartDeployment {
        &self.deployment
    }

    /// Kills (grace period 0, as a node failure would) the ingest pod whose
    /// worker list first holds at least `n` keys, within `timeout`; returns the
    /// pod, its list and the keys the list still held just after the kill.
    ///
    /// # Errors
    /// No list holds `n` keys in time, or the pod cannot be deleted.
    pub async fn kill_worker_holding(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<KilledWorker, EmbargoError> {
        let (list, _) = self.wait_for_worker_holding(n, timeout).await?;
        let pod = list.rsplit(':').next().unwrap_or_default().to_owned();
        self.deployment
            .api::<Pod>()
            .delete(&pod, &kube::api::DeleteParams::default().grace_period(0))
            .await
            .map_err(|e| anyhow::anyhow!("deleting pod {pod}: {e}"))?;
        let stranded = self.worker_list(&list).await?;
        Ok(KilledWorker {
            pod,
            list,
            stranded,
        })
    }

    /// Where each of `keys` that is not ingested is (worker lists of pods that
    /// are gone told apart).
    ///
    /// # Errors
    /// Redis or the API server fails a read.
    pub async fn locate(
        &self,
        keys: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Location>, EmbargoError> {
        let live = self.live_pods().await?;
        self.path.locate(keys, Some(&live)).await
    }

    async fn live_pods(&self) -> Result<BTreeSet<String>, EmbargoError> {
        Ok(self
            .deployment
            .pods()
            .await?
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| p.metadata.name)
            .collect())
    }

    /// Waits until every one of `keys` is ingested; returns how long it took.
    ///
    /// # Errors
    /// Some are not ingested within `timeout`: the message says how many and
    /// where each is stuck (queued, in which worker's list and whether its pod
    /// lives, given up, or nowhere), and what the workers and the reaper counted.
    pub async fn wait_for_ingested(
        &self,
        keys: &BTreeSet<String>,
        timeout: Duration,
    ) -> Result<Duration, EmbargoError> {
        self.path
            .wait_for_ingested_explained(keys, timeout, || async {
                (self.live_pods().await.ok(), self.metrics_summary().await)
            })
            .await
    }

    /// Each running pod of `component`'s counters (`GET /metrics`), by pod.
    ///
    /// # Errors
    /// The pods cannot be listed or a running pod does not answer.
    pub async fn metrics(&self, component: &str) -> Result<Vec<(String, Value)>, EmbargoError> {
        let pods = self.deployment.pods().await?;
        self.metrics_of(&pods, component).await
    }

    /// The counters of the running pods of `component` among `pods`, each read
    /// through a port-forward stream of its own (no local port).
    async fn metrics_of(
        &self,
        pods: &[Pod],
        component: &str,
    ) -> Result<Vec<(String, Value)>, EmbargoError> {
        let mut all = Vec::new();
        for pod in pods {
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if !is_component(pod, component)
                || !running
                || pod.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            let name = name_of(pod);
            let port = container_port(pod, "health").or_else(|_| container_port(pod, "http"))?;
            let (status, body) = testware::net::port_forward_http(
                &self.deployment.api(),
                &name,
                port,
                "GET",
                "/metrics",
                b"",
            )
            .await?;
            all.push((
                name.clone(),
                metrics_answer(&format!("pod {name}"), status, &body)?,
            ));
        }
        Ok(all)
    }

    /// The sum of counter `name` over the running pods of `component`.
    ///
    /// # Errors
    /// As for [`EmbargoStack::metrics`].
    pub async fn counter(&self, component: &str, name: &str) -> Result<u64, EmbargoError> {
        Ok(self
            .metrics(component)
            .await?
            .iter()
            .filter_map(|(_, m)| m[name].as_u64())
            .sum())
    }

    async fn metrics_summary(&self) -> String {
        let pods = match self.deployment.pods().await {
            Ok(pods) => pods,
            Err(e) => return format!("pods unreadable: {e}"),
        };
        let mut parts = Vec::new();
        for component in ["enqueue", "ingest", "idle"] {
            match self.metrics_of(&pods, component).await {
                Ok(pods) => parts.extend(pods.into_iter().map(|(pod, m)| format!("{pod} {m}"))),
                Err(e) => parts.push(format!("{component}: {e:#}")),
            }
        }
        parts.join("; ")
    }
}

/// A component's counters from `GET /metrics` at `addr` (e.g. a container's
/// port on this host); `who` names it in errors.
///
/// # Errors
/// No answer, not 200, or not JSON.
pub async fn get_metrics(addr: std::net::SocketAddr, who: &str) -> Result<Value, EmbargoError> {
    let (status, body) = testware::net::http_request(addr, "GET", "/metrics", b"")
        .await
        .map_err(|e| anyhow::anyhow!("GET /metrics of {who} at {addr}: {e}"))?;
    metrics_answer(who, status, &body)
}

/// The counters in a `/metrics` answer.
fn metrics_answer(who: &str, status: u16, body: &str) -> Result<Value, EmbargoError> {
    anyhow::ensure!(
        status == 200,
        "GET /metrics of {who} answered {status}: {body}"
    );
    serde_json::from_str(body)
        .map_err(|e| anyhow::anyhow!("/metrics of {who} is not JSON ({e}): {body}"))
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn is_component(pod: &Pod, component: &str) -> bool {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("app.kubernetes.io/component"))
        .is_some_and(|c| c == component)
}

/// A live pod of `component` (`app.kubernetes.io/component`) of the release.
async fn component_pod(deployment: &ChartDeployment, component: &str) -> Result<Pod, EmbargoError> {
    deployment
        .pods()
        .await?
        .into_iter()
        .find(|p| is_component(p, component) && p.metadata.deletion_timestamp.is_none())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "release {} has no pod with app.kubernetes.io/component={component}",
                deployment.release()
            )
        })
}

/// The port named `name` of the pod's first container.
fn container_port(pod: &Pod, name: &str) -> Result<u16, EmbargoError> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .ok_or_else(|| anyhow::anyhow!("pod {} has no port named {name}", name_of(pod)))
}

/// The value of environment variable `var` of the pod's first container that
/// has it: literal, or read from the Secret it refers to.
async fn env_value(
    deployment: &ChartDeployment,
    pod: &Pod,
    var: &str,
) -> Result<String, EmbargoError> {
    let env = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .flat_map(|c| c.env.iter().flatten())
        .find(|e| e.name == var)
        .ok_or_else(|| anyhow::anyhow!("pod {} has no environment variable {var}", name_of(pod)))?;
    if let Some(value) = &env.value {
        return Ok(value.clone());
    }
    let reference = env
        .value_from
        .as_ref()
        .and_then(|v| v.secret_key_ref.as_ref())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{var} of pod {} is neither a value nor a Secret key",
                name_of(pod)
            )
        })?;
    let secret = deployment
        .api::<Secret>()
        .get(&reference.name)
        .await
        .map_err(|e| anyhow::anyhow!("reading Secret {} for {var}: {e}", reference.name))?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&reference.key))
        .ok_or_else(|| anyhow::anyhow!("Secret {} has no key {}", reference.name, reference.key))?;
    String::from_utf8(bytes.0.clone()).map_err(|_| {
        anyhow::anyhow!(
            "Secret {} key {} is not UTF-8",
            reference.name,
            reference.key
        )
    })
}
