//! The embargo ingest path as a test drives it: object-store notifications
//! built and signed like the store sends them, posted to the enqueue webhook
//! (concurrently, resent while it answers 5xx), and the Redis state the
//! workers leave behind read back: which keys were ingested, how many times,
//! and — when some are missing — where each one is stuck.
//!
//! See `../shared/design/data-paths.md`, section 2, for the key layout.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ::redis::AsyncCommands as _;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Pod, Secret};
use serde_json::{json, Value};

use crate::redis::Redis;
use testware::deployment::ChartDeployment;
use testware::net::PortForward;

/// Why the path could not be driven or read.
pub type EmbargoError = anyhow::Error;

/// Encodes an object key as object stores do in notifications: form encoding
/// (`+` for space, `%XX` for the rest) with `/` kept.
pub fn encode_key(key: &str) -> String {
    form_urlencoded::byte_serialize(key.as_bytes())
        .collect::<String>()
        .replace("%2F", "/")
}

/// One record of a notification: `key` created in `bucket`, signed with `opaque_data`.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The bucket.
    pub bucket: String,
    /// The object key, not encoded.
    pub key: String,
    /// The shared secret the webhook checks.
    pub opaque_data: String,
}

impl std::fmt::Debug for Record {
    /// Without the secret: what a test prints ends up in published CI logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("opaque_data", &"<redacted>")
            .finish()
    }
}

/// An object-store notification: one or more records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    /// The records, in order.
    pub records: Vec<Record>,
}

impl Notification {
    /// The JSON body the store posts (keys encoded).
    pub fn to_json(&self) -> Value {
        let records: Vec<Value> = self
            .records
            .iter()
            .map(|r| {
                json!({
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": r.bucket}, "object": {"key": encode_key(&r.key)}},
                    "opaqueData": r.opaque_data,
                })
            })
            .collect();
        json!({ "Records": records })
    }
}

/// The webhook's answer: its status and JSON body (`Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body, parsed.
    pub body: Value,
}

/// Posts notifications for one bucket to the enqueue webhook at `url`.
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    url: String,
    bucket: String,
    secret: String,
}

impl std::fmt::Debug for Notifier {
    /// Without the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notifier({}, bucket {})", self.url, self.bucket)
    }
}

impl Notifier {
    /// Notifies `bucket` at `url` (e.g. a port-forward's URL), signing with `secret`.
    pub fn new(
        url: impl Into<String>,
        bucket: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            url: url.into().trim_end_matches('/').to_owned(),
            bucket: bucket.into(),
            secret: secret.into(),
        }
    }

    /// The bucket notified.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A notification of `keys`, signed with the webhook's secret.
    pub fn notification<S: AsRef<str>>(&self, keys: &[S]) -> Notification {
        self.notification_signed(keys, &self.secret)
    }

    /// A notification of `keys` signed with `opaque_data` (e.g. a wrong secret).
    pub fn notification_signed<S: AsRef<str>>(
        &self,
        keys: &[S],
        opaque_data: &str,
    ) -> Notification {
        Notification {
            records: keys
                .iter()
                .map(|k| Record {
                    bucket: self.bucket.clone(),
                    key: k.as_ref().to_owned(),
                    opaque_data: opaque_data.to_owned(),
                })
                .collect(),
        }
    }

    /// Posts `notification` to `/notify` once.
    ///
    /// # Errors
    /// The webhook cannot be reached.
    pub async fn post(&self, notification: &Notification) -> Result<Answer, EmbargoError> {
        self.send(
            reqwest::Method::POST,
            "/notify",
            notification.to_json().to_string(),
        )
        .await
    }

    /// Sends any request (method, path, body) to the webhook, for bad-input cases.
    ///
    /// # Errors
    /// The webhook cannot be reached.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> Result<Answer, EmbargoError> {
        let url = format!("{}{path}", self.url);
        let response = self
            .http
            .request(method.clone(), &url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| anyhow::anyhow!("{method} {url}: reading the answer: {e}"))?;
        Ok(Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        })
    }

    /// Posts `notification` until the webhook accepts it (2xx), sending it again
    /// after a 5xx or a lost connection — as object stores do — for up to `patience`.
    ///
    /// # Errors
    /// A 4xx (the notification is wrong), or no 2xx within `patience` (the last answer).
    pub async fn deliver(
        &self,
        notification: &Notification,
        patience: Duration,
    ) -> Result<Answer, EmbargoError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let last = match self.post(notification).await {
                Ok(answer) if (200..300).contains(&answer.status) => return Ok(answer),
                Ok(answer) if (400..500).contains(&answer.status) => anyhow::bail!(
                    "{} refused a notification of {} records with {}: {}",
                    self.url,
                    notification.records.len(),
                    answer.status,
                    answer.body
                ),
                Ok(answer) => format!("{}: {}", answer.status, answer.body),
                Err(e) => format!("{e:#}"),
            };
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "{} did not accept a notification for {} s; last answer: {last}",
                    self.url,
                    patience.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Delivers a notification per `per_notification` keys, `concurrency` at a
    /// time; returns how many keys the webhook accepted.
    ///
    /// # Errors
    /// As for [`Notifier::deliver`], for the first notification that fails.
    pub async fn deliver_all(
        &self,
        keys: &[String],
        per_notification: usize,
        concurrency: usize,
        patience: Duration,
    ) -> Result<u64, EmbargoError> {
        let notifications: Vec<Notification> = keys
            .chunks(per_notification.max(1))
            .map(|chunk| self.notification(chunk))
            .collect();
        let answers: Vec<Result<Answer, EmbargoError>> = futures::stream::iter(notifications)
            .map(|n| async move { self.deliver(&n, patience).await })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut accepted = 0;
        for answer in answers {
            accepted += answer?.body["accepted"].as_u64().unwrap_or(0);
        }
        Ok(accepted)
    }
}

/// Where a key that is not ingested is, as [`EmbargoStack::locate`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Waiting in `QUEUE:{bucket}`.
    Queued,
    /// In a worker's in-flight list.
    Worker {
        /// The list, `WORKER:{bucket}:{pod}`.
        list: String,
        /// Whether the pod the list belongs to exists, when known.
        live: Option<bool>,
    },
    /// Given up after `MAX_FAILURES` (in `FAILED:{bucket}`).
    GivenUp,
    /// In no queue or list, and not ingested: lost.
    Nowhere,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Queued => f.write_str("queued"),
            Self::Worker {
                list,
                live: Some(true) | None,
            } => write!(f, "in {list}"),
            Self::Worker {
                list,
                live: Some(false),
            } => {
                write!(
                    f,
                    "in {list}, whose pod is gone (the idle reaper has not requeued it)"
                )
            }
            Self::GivenUp => f.write_str("given up (FAILED)"),
            Self::Nowhere => f.write_str("nowhere (lost)"),
        }
    }
}

/// Where each of `missing` is: its first place in the queue, a worker list, the
/// failed set, else nowhere. `live_pods`, when known, tells dead workers' lists apart.
pub fn locate(
    missing: &BTreeSet<String>,
    queue: &[String],
    workers: &[(String, Vec<String>)],
    failed: &BTreeSet<String>,
    live_pods: Option<&BTreeSet<String>>,
) -> BTreeMap<String, Location> {
    missing
        .iter()
        .map(|key| {
            let place = if queue.contains(key) {
                Location::Queued
            } else if let Some((list, _)) = workers.iter().find(|(_, items)| items.contains(key)) {
                let pod = list.rsplit(':').next().unwrap_or_default();
                Location::Worker {
                    list: list.clone(),
                    live: live_pods.map(|live| live.contains(pod)),
                }
            } else if failed.contains(key) {
                Location::GivenUp
            } else {
                Location::Nowhere
            };
            (key.clone(), place)
        })
        .collect()
}

/// Groups locations into one line per place with up to three keys each.
pub fn summarize(locations: &BTreeMap<String, Location>) -> String {
    let mut by_place: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (key, place) in locations {
        by_place.entry(place.to_string()).or_default().push(key);
    }
    by_place
        .iter()
        .map(|(place, keys)| {
            let shown: Vec<&str> = keys.iter().take(3).copied().collect();
            let more = keys.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("{} {place} ({:?}{more})", keys.len(), shown)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The two ends of the ingest path as the test reaches them: notifications go in
/// at the webhook, the workers' results are read from Redis. Wherever they run —
/// a deployed release ([`EmbargoStack`]) or containers a component case started.
#[derive(Debug)]
pub struct EmbargoPath {
    /// Posts notifications to the webhook.
    pub notifier: Notifier,
    /// The Redis the components share.
    pub redis: Redis,
}

impl EmbargoPath {
    /// The bucket notified and ingested.
    pub fn bucket(&self) -> &str {
        self.notifier.bucket()
    }

    /// How many times each key's work was done (`INGESTS:{bucket}`).
    ///
    /// # Errors
    /// Redis fails the read.
    pub async fn ingest_counts(&self) -> Result<BTreeMap<String, u64>, EmbargoError> {
        let key = format!("INGESTS:{}", self.bucket());
        let counts: BTreeMap<String, u64> = self
            .redis
            .connection()
            .hgetall(&key)
            .await
            .map_err(|e| self.redis.error(&format!("HGETALL {key}"), &e))?;
        Ok(counts)
    }

    /// The keys recorded as ingested (`INGESTED:{bucket}`).
    ///
    /// # Errors
    /// Redis fails the read.
    pub async fn ingested(&self) -> Result<BTreeSet<String>, EmbargoError> {
        self.set(&format!("INGESTED:{}", self.bucket())).await
    }

    async fn set(&self, key: &str) -> Result<BTreeSet<String>, EmbargoError> {
        let members: BTreeSet<String> = self
            .redis
            .connection()
            .smembers(key)
            .await
            .map_err(|e| self.redis.error(&format!("SMEMBERS {key}"), &e))?;
        Ok(members)
    }

    /// The keys waiting in `QUEUE:{bucket}`, newest first.
    ///
    /// # Errors
    /// Redis fails the read.
    pub async fn queued(&self) -> Result<Vec<String>, EmbargoError> {
        let key = format!("QUEUE:{}", self.bucket());
        let queue: Vec<String> = self
            .redis
            .connection()
            .lrange(&key, 0, -1)
            .await
            .map_err(|e| self.redis.error(&format!("LRANGE {key}"), &e))?;
        Ok(queue)
    }

    /// The workers' in-flight lists (`WORKER:{bucket}:{pod}`) with their keys.
    ///
    /// # Errors
    /// Redis fails a read.
    pub async fn worker_lists(&self) -> Result<Vec<(String, Vec<String>)>, EmbargoError> {
        Ok(self
            .redis
            .lists(&format!("WORKER:{}:*", self.bucket()))
            .await?)
    }

    /// Waits until some worker's list holds at least `n` keys — a batch caught
    /// in the middle, for fault cases — and returns that list's name and keys.
    ///
    /// # Errors
    /// None does within `timeout` (the message lists the worker lists last seen).
    pub async fn wait_for_worker_holding(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<(String, Vec<String>), EmbargoError> {
        Ok(testware::wait::wait_until(
            format!(
                "a worker list of bucket {} holding at least {n} keys",
                self.bucket()
            ),
            timeout,
            || async {
                let lists = self.worker_lists().await.map_err(|e| format!("{e:#}"))?;
                lists
                    .iter()
                    .find(|(_, items)| items.len() >= n)
                    .cloned()
                    .ok_or_else(|| {
                        let sizes: Vec<String> = lists
                            .iter()
                            .map(|(l, i)| format!("{l}: {}", i.len()))
                            .collect();
                        format!("worker lists: {sizes:?}")
                    })
            },
        )
        .await?)
    }

    /// The keys in worker list `list`, newest first.
    ///
    /// # Errors
    /// Redis fails the read.
    pub async fn worker_list(&self, list: &str) -> Result<Vec<String>, EmbargoError> {
        let keys: Vec<String> = self
            .redis
            .connection()
            .lrange(list, 0, -1)
            .await
            .map_err(|e| self.redis.error(&format!("LRANGE {list}"), &e))?;
        Ok(keys)
    }

    /// Where each of `keys` that is not ingested is; `live_pods`, when known,
    /// tells the lists of dead workers apart.
    ///
    /// # Errors
    /// Redis fails a read.
    pub async fn locate(
        &self,
        keys: &BTreeSet<String>,
        live_pods: Option<&BTreeSet<String>>,
    ) -> Result<BTreeMap<String, Location>, EmbargoError> {
        let ingested = self.ingested().await?;
        let missing: BTreeSet<String> = keys.difference(&ingested).cloned().collect();
        let queue = self.queued().await?;
        let workers = self.worker_lists().await?;
        let failed = self.set(&format!("FAILED:{}", self.bucket())).await?;
        Ok(locate(&missing, &queue, &workers, &failed, live_pods))
    }

    /// Waits until every one of `keys` is ingested; returns how long it took.
    /// At the timeout, `explain` gives what else the message should hold.
    async fn wait_for_ingested_explained<F, Fut>(
        &self,
        keys: &BTreeSet<String>,
        timeout: Duration,
        explain: F,
    ) -> Result<Duration, EmbargoError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (Option<BTreeSet<String>>, String)>,
    {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        loop {
            let ingested = self.ingested().await;
            if let Ok(ingested) = &ingested {
                if keys.is_subset(ingested) {
                    return Ok(started.elapsed());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let (live, counters) = explain().await;
                let where_ = match self.locate(keys, live.as_ref()).await {
                    Ok(locations) => summarize(&locations),
                    Err(e) => format!("(cannot tell where: {e:#})"),
                };
                let done = ingested.map(|i| keys.intersection(&i).count()).unwrap_or(0);
                anyhow::bail!(
                    "{} of {} keys not ingested after {} s: {where_}; counters: {counters}",
                    keys.len() - done,
                    keys.len(),
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until every one of `keys` is ingested; returns how long it took.
    ///
    /// # Errors
    /// Some are not ingested within `timeout`: the message says how many and
    /// where each is stuck (queued, in which worker's list, given up, or nowhere).
    pub async fn wait_for_ingested(
        &self,
        keys: &BTreeSet<String>,
        timeout: Duration,
    ) -> Result<Duration, EmbargoError> {
        self.wait_for_ingested_explained(keys, timeout, || async {
            (None, "(not known here)".to_owned())
        })
        .await
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_like_object_store_notifications() {
        assert_eq!(
            encode_key("raw/2026-11-27/a b,c+d.fits"),
            "raw/2026-11-27/a+b%2Cc%2Bd.fits"
        );
        assert_eq!(encode_key("plain.fits"), "plain.fits");
    }

    #[test]
    fn a_notification_carries_every_record_signed() {
        let notifier = Notifier::new("http://127.0.0.1:1", "bucket", "s3cret");
        let body = notifier.notification(&["a b.fits", "c.fits"]).to_json();
        assert_eq!(body["Records"].as_array().map(Vec::len), Some(2));
        assert_eq!(body["Records"][0]["s3"]["object"]["key"], "a+b.fits");
        assert_eq!(body["Records"][1]["s3"]["bucket"]["name"], "bucket");
        assert_eq!(body["Records"][1]["opaqueData"], "s3cret");
        let shown = format!("{notifier:?} {:?}", notifier.notification(&["k.fits"]));
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn missing_keys_are_located_and_summarized() {
        let set = |keys: &[&str]| {
            keys.iter()
                .map(|k| (*k).to_owned())
                .collect::<BTreeSet<_>>()
        };
        let missing = set(&["a", "b", "c", "d", "e"]);
        let workers = vec![
            ("WORKER:bkt:ingest-1".to_owned(), vec!["b".to_owned()]),
            ("WORKER:bkt:ingest-2".to_owned(), vec!["c".to_owned()]),
        ];
        let located = locate(
            &missing,
            &["a".to_owned()],
            &workers,
            &set(&["d"]),
            Some(&set(&["ingest-1"])),
        );
        assert_eq!(located["a"], Location::Queued);
        assert_eq!(
            located["c"],
            Location::Worker {
                list: "WORKER:bkt:ingest-2".into(),
                live: Some(false)
            }
        );
        assert_eq!(located["d"], Location::GivenUp);
        assert_eq!(located["e"], Location::Nowhere);
        let summary = summarize(&located);
        assert!(
            summary.contains(
                "1 in WORKER:bkt:ingest-2, whose pod is gone (the idle reaper has not requeued it) ([\"c\"])"
            ),
            "{summary}"
        );
        assert!(summary.contains("1 nowhere (lost) ([\"e\"])"), "{summary}");
    }
}
