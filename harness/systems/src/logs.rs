//! Finding a pod's log lines in an Elasticsearch-API store, as the logging
//! pipeline ships them, with the official `elasticsearch` client.
//!
//! The shipper stores one document per line of a container's log file (CRI
//! format: `time stream P|F text`): `kubernetes.{namespace,pod,container,container_id}`,
//! `time`, `stream`, `partial` (`P` or `F`), `message`, `offset` (in the file) and
//! `node`. A line longer than the runtime's limit (16 KiB) is split into partial
//! lines; [`join_partials`] puts them back together, so a query sees whole lines.
//!
//! Only exact terms on `.keyword` fields go to the store; text and time are
//! matched here, on whole lines, so no store's full-text quirks decide a result.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::Url;
use elasticsearch::indices::IndicesRefreshParts;
use elasticsearch::{Elasticsearch, SearchParts};
use serde_json::{json, Value};

use testware::deployment::ChartDeployment;
use testware::net::PortForward;

/// Why the store could not be read.
pub type LogsError = anyhow::Error;

/// One line of a CRI container log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLine {
    /// RFC 3339 time with nanoseconds, as the runtime wrote it.
    pub time: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// Whether more of the same line follows (`P`) or this ends it (`F`).
    pub partial: bool,
    /// The text (without the newline).
    pub text: String,
}

impl CriLine {
    /// Parses `2026-11-27T17:20:00.000000001Z stdout F text`.
    pub fn parse(line: &str) -> Option<Self> {
        let mut parts = line.splitn(4, ' ');
        let time = parts.next()?.to_owned();
        let stream = parts.next()?.to_owned();
        let partial = match parts.next()? {
            "P" => true,
            "F" => false,
            _ => return None,
        };
        if !(stream == "stdout" || stream == "stderr") {
            return None;
        }
        Some(Self {
            time,
            stream,
            partial,
            text: parts.next().unwrap_or_default().to_owned(),
        })
    }
}

/// A whole log line as found in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod.
    pub pod: String,
    /// The container.
    pub container: String,
    /// The container's id (a restarted container has a new one).
    pub container_id: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The time of its first part.
    pub time: String,
    /// The whole line, partial lines joined.
    pub message: String,
    /// Offset of its first part in the container's log file.
    pub offset: u64,
    /// How many documents (partial lines) it was made of.
    pub parts: usize,
    /// How many documents the store holds for it (more than `parts`: stored twice).
    pub copies: usize,
}

/// A shipped document, as far as joining needs it.
#[derive(Debug, Clone)]
struct Document {
    namespace: String,
    pod: String,
    container: String,
    container_id: String,
    stream: String,
    time: String,
    partial: bool,
    message: String,
    offset: u64,
}

impl Document {
    fn from_source(source: &Value) -> Option<Self> {
        let k8s = &source["kubernetes"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        Some(Self {
            namespace: text(&k8s["namespace"])?,
            pod: text(&k8s["pod"])?,
            container: text(&k8s["container"])?,
            container_id: text(&k8s["container_id"]).unwrap_or_default(),
            stream: text(&source["stream"]).unwrap_or_default(),
            time: text(&source["time"]).unwrap_or_default(),
            partial: source["partial"].as_str() == Some("P"),
            message: text(&source["message"]).unwrap_or_default(),
            offset: source["offset"]
                .as_u64()
                .or_else(|| source["offset"].as_str()?.parse().ok())?,
        })
    }
}

/// The documents of a search answer `body` (its hits' sources that are log documents).
fn documents_of(body: &Value) -> Vec<Document> {
    body["hits"]["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|hit| Document::from_source(&hit["_source"]))
        .collect()
}

/// The whole lines of a search answer `body`: each document once (the shipper
/// may send one twice), partial lines joined, in file order per container.
pub fn lines_of_search(body: &Value) -> Vec<LogLine> {
    join_documents(documents_of(body))
}

/// Joins documents into whole lines: per container and stream, in file order,
/// partial parts up to and including the final one. Documents stored twice (same
/// container and offset) count once (in `copies`). A line whose final part is
/// not stored yet is left out.
fn join_documents(documents: Vec<Document>) -> Vec<LogLine> {
    let mut by_place: BTreeMap<(String, u64), (Document, usize)> = BTreeMap::new();
    for document in documents {
        let place = (document.container_id.clone(), document.offset);
        by_place
            .entry(place)
            .and_modify(|(_, copies)| *copies += 1)
            .or_insert((document, 1));
    }
    let mut lines = Vec::new();
    let mut open: BTreeMap<(String, String), LogLine> = BTreeMap::new();
    for (document, copies) in by_place.into_values() {
        let key = (document.container_id.clone(), document.stream.clone());
        let line = open.entry(key.clone()).or_insert_with(|| LogLine {
            namespace: document.namespace.clone(),
            pod: document.pod.clone(),
            container: document.container.clone(),
            container_id: document.container_id.clone(),
            stream: document.stream.clone(),
            time: document.time.clone(),
            message: String::new(),
            offset: document.offset,
            parts: 0,
            copies: 0,
        });
        line.message.push_str(&document.message);
        line.parts += 1;
        line.copies += copies;
        if !document.partial {
            if let Some(done) = open.remove(&key) {
                lines.push(done);
            }
        }
    }
    lines
}

/// Joins CRI lines of one container's log file (in file order) into whole lines' texts.
pub fn join_partials<'a>(lines: impl IntoIterator<Item = &'a CriLine>) -> Vec<String> {
    let mut whole = Vec::new();
    let mut open: BTreeMap<&str, String> = BTreeMap::new();
    for line in lines {
        let text = open.entry(line.stream.as_str()).or_default();
        text.push_str(&line.text);
        if !line.partial {
            if let Some(done) = open.remove(line.stream.as_str()) {
                whole.push(done);
            }
        }
    }
    whole
}

/// Which lines to find: exact namespace, pod and container (sent to the store
/// as `term` filters on `.keyword`), text contained in the whole line and a
/// time range (matched here).
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// The namespace (required).
    pub namespace: String,
    /// The pod, if only one.
    pub pod: Option<String>,
    /// The container, if only one.
    pub container: Option<String>,
    /// Text the line must contain.
    pub text: Option<String>,
    /// Lines at or after this RFC 3339 time (compared as text: same format).
    pub since: Option<String>,
}

impl LogQuery {
    /// Lines of `namespace`.
    pub fn namespace(namespace: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            ..Self::default()
        }
    }

    /// Only pod `pod`.
    #[must_use]
    pub fn pod(mut self, pod: impl Into<String>) -> Self {
        self.pod = Some(pod.into());
        self
    }

    /// Only container `container`.
    #[must_use]
    pub fn container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// Only lines containing `text`.
    #[must_use]
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = Some(text.into());
        self
    }

    /// Only lines at or after `since` (RFC 3339, e.g. from `time::OffsetDateTime`).
    #[must_use]
    pub fn since(mut self, since: impl Into<String>) -> Self {
        self.since = Some(since.into());
        self
    }

    fn filters(&self) -> Vec<Value> {
        let mut filters = vec![json!({"term": {"kubernetes.namespace.keyword": self.namespace}})];
        if let Some(pod) = &self.pod {
            filters.push(json!({"term": {"kubernetes.pod.keyword": pod}}));
        }
        if let Some(container) = &self.container {
            filters.push(json!({"term": {"kubernetes.container.keyword": container}}));
        }
        filters
    }

    fn matches(&self, line: &LogLine) -> bool {
        self.text
            .as_ref()
            .is_none_or(|t| line.message.contains(t.as_str()))
            && self
                .since
                .as_ref()
                .is_none_or(|s| line.time.as_str() >= s.as_str())
    }
}

impl std::fmt::Display for LogQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "namespace {}", self.namespace)?;
        if let Some(pod) = &self.pod {
            write!(f, ", pod {pod}")?;
        }
        if let Some(container) = &self.container {
            write!(f, ", container {container}")?;
        }
        if let Some(text) = &self.text {
            let shown: String = text.chars().take(60).collect();
            write!(f, ", text {shown:?}")?;
        }
        if let Some(since) = &self.since {
            write!(f, ", since {since}")?;
        }
        Ok(())
    }
}

pub use testware::explain::Explainer;

/// The indices `<prefix>-*` of an Elasticsearch-API store.
#[derive(Clone)]
pub struct LogStore {
    client: Elasticsearch,
    url: String,
    indices: String,
    explainer: Option<Explainer>,
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogStore({}, {})", self.url, self.indices)
    }
}

impl LogStore {
    /// The indices `<prefix>-*` of the store at `url` (e.g. a port-forward's URL).
    ///
    /// # Errors
    /// `url` is not a URL.
    pub fn new(url: &str, prefix: &str) -> Result<Self, LogsError> {
        let parsed = Url::parse(url).map_err(|e| anyhow::anyhow!("store URL {url:?}: {e}"))?;
        let transport = TransportBuilder::new(SingleNodeConnectionPool::new(parsed))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| anyhow::anyhow!("store at {url}: {e}"))?;
        Ok(Self {
            client: Elasticsearch::new(transport),
            url: url.to_owned(),
            indices: format!("{prefix}-*"),
            explainer: None,
        })
    }

    /// Adds what `explain` returns to timeout messages.
    #[must_use]
    pub fn explain_with<F, Fut>(mut self, explain: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = String> + Send + 'static,
    {
        self.explainer = Some(testware::explain::explainer(explain));
        self
    }

    /// The official client, for anything else.
    pub fn client(&self) -> &Elasticsearch {
        &self.client
    }

    /// What the store says it is (`GET /`): distribution and version.
    ///
    /// # Errors
    /// The store does not answer.
    pub async fn server(&self) -> Result<String, LogsError> {
        let body = self.json(self.client.info().send().await, "GET /").await?;
        let version = &body["version"];
        Ok(format!(
            "{} {}",
            version["distribution"].as_str().unwrap_or("elasticsearch"),
            version["number"].as_str().unwrap_or("?")
        ))
    }

    async fn json(
        &self,
        response: Result<elasticsearch::http::response::Response, elasticsearch::Error>,
        what: &str,
    ) -> Result<Value, LogsError> {
        let response = response.map_err(|e| anyhow::anyhow!("{what} at {}: {e}", self.url))?;
        let status = response.status_code();
        let body: Value = response
            .json()
            .await
            .map_err(|e| anyhow::anyhow!("{what} at {}: answer not JSON: {e}", self.url))?;
        if !status.is_success() {
            anyhow::bail!("{what} at {} answered {status}: {body}", self.url);
        }
        Ok(body)
    }

    /// The names of the store's indices (`_cat/indices`), sorted.
    ///
    /// # Errors
    /// The store does not answer.
    pub async fn indices(&self) -> Result<Vec<String>, LogsError> {
        let response = self
            .client
            .cat()
            .indices(elasticsearch::cat::CatIndicesParts::None)
            .format("json")
            .send()
            .await;
        let body = self.json(response, "GET /_cat/indices").await?;
        let mut names: Vec<String> = body
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i["index"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Stores `document` in `index` (created if needed), e.g. to plant an old index.
    ///
    /// # Errors
    /// The store refuses it.
    pub async fn put_document(&self, index: &str, document: Value) -> Result<(), LogsError> {
        let response = self
            .client
            .index(elasticsearch::IndexParts::Index(index))
            .body(document)
            .send()
            .await;
        self.json(response, &format!("POST /{index}/_doc")).await?;
        Ok(())
    }

    /// Every document of `query`'s namespace, pod and container, after a refresh.
    async fn documents(&self, query: &LogQuery) -> Result<Vec<Document>, LogsError> {
        // Documents become searchable at a refresh; the shipper does not ask for one.
        let _ = self
            .client
            .indices()
            .refresh(IndicesRefreshParts::Index(&[&self.indices]))
            .allow_no_indices(true)
            .send()
            .await;
        let response = self
            .client
            .search(SearchParts::Index(&[&self.indices]))
            .allow_no_indices(true)
            .ignore_unavailable(true)
            .body(json!({
                "size": 10_000,
                "query": {"bool": {"filter": query.filters()}},
            }))
            .send()
            .await;
        let what = format!("search of {} for {query}", self.indices);
        let body = match response {
            Ok(r) if r.status_code().as_u16() == 404 => return Ok(Vec::new()),
            other => self.json(other, &what).await?,
        };
        Ok(documents_of(&body))
    }

    /// The whole lines matching `query`, in file order per container.
    ///
    /// # Errors
    /// The store fails the search.
    pub async fn find(&self, query: &LogQuery) -> Result<Vec<LogLine>, LogsError> {
        let documents = self.documents(query).await?;
        Ok(join_documents(documents)
            .into_iter()
            .filter(|line| query.matches(line))
            .collect())
    }

    /// Waits until a line matches `query`; returns the matching lines.
    ///
    /// # Errors
    /// None within `timeout`: the message says what was queried, how many
    /// documents the store holds for the namespace/pod/container, the last
    /// search error if any, and what the explainer adds (the shipper's state).
    pub async fn wait_for_line(
        &self,
        query: &LogQuery,
        timeout: Duration,
    ) -> Result<Vec<LogLine>, LogsError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last = match self.documents(query).await {
                Ok(documents) => {
                    let held = documents.len();
                    let found: Vec<LogLine> = join_documents(documents)
                        .into_iter()
                        .filter(|line| query.matches(line))
                        .collect();
                    if !found.is_empty() {
                        return Ok(found);
                    }
                    format!("the store holds {held} documents for that pod/container")
                }
                Err(e) => format!("last search failed: {e:#}"),
            };
            if tokio::time::Instant::now() >= deadline {
                let explanation = match &self.explainer {
                    Some(explain) => format!("; {}", explain().await),
                    None => String::new(),
                };
                anyhow::bail!(
                    "no log line of {query} in {} at {} after {:.0} s: {last}{explanation}",
                    self.indices,
                    self.url,
                    timeout.as_secs_f64()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A deployed logging release reached from the test process: its store through
/// a port-forward, with timeouts that show the shipper pods' state and log.
pub struct LoggingStack {
    /// The store.
    pub store: LogStore,
    deployment: ChartDeployment,
    _forward: PortForward,
}

impl std::fmt::Debug for LoggingStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoggingStack({:?}, {:?})", self.deployment, self.store)
    }
}

impl std::ops::Deref for LoggingStack {
    type Target = LogStore;

    fn deref(&self) -> &LogStore {
        &self.store
    }
}

impl LoggingStack {
    /// Reaches the store of `deployment` (Service with
    /// `app.kubernetes.io/component=store`, port `http`); indices `<prefix>-*`
    /// with the release's `indices.prefix`.
    ///
    /// # Errors
    /// The Service is missing or cannot be forwarded to.
    pub async fn connect(deployment: &ChartDeployment) -> Result<Self, LogsError> {
        let values = deployment.values().await?;
        let prefix = values["indices"]["prefix"]
            .as_str()
            .unwrap_or("logs")
            .to_owned();
        let service = deployment
            .services()
            .await?
            .into_iter()
            .find(|s| {
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app.kubernetes.io/component"))
                    .is_some_and(|c| c == "store")
            })
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "release {} has no Service with app.kubernetes.io/component=store",
                    deployment.release()
                )
            })?;
        let name = service.metadata.name.clone().unwrap_or_default();
        let port = service
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref()?.first())
            .and_then(|p| u16::try_from(p.port).ok())
            .ok_or_else(|| anyhow::anyhow!("Service {name} has no port"))?;
        let forward = deployment
            .port_forward(&format!("svc/{name}"), port)
            .await?;
        let explained = deployment.clone();
        let store = LogStore::new(&forward.url(), &prefix)?.explain_with(move || {
            let deployment = explained.clone();
            async move { shipper_report(&deployment).await }
        });
        Ok(Self {
            store,
            deployment: deployment.clone(),
            _forward: forward,
        })
    }

    /// The release.
    pub fn deployment(&self) -> &ChartDeployment {
        &self.deployment
    }

    /// The shipper pods' state and last log lines, as timeouts show them.
    pub async fn shipper_report(&self) -> String {
        shipper_report(&self.deployment).await
    }
}

/// The shipper pods: phase, restarts and their last 8 log lines each.
async fn shipper_report(deployment: &ChartDeployment) -> String {
    let pods = match deployment.pods().await {
        Ok(pods) => pods,
        Err(e) => return format!("shipper pods unreadable: {e}"),
    };
    let mut parts = Vec::new();
    for pod in pods {
        let is_shipper = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/component"))
            .is_some_and(|c| c == "shipper");
        if !is_shipper {
            continue;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        let status = pod.status.as_ref();
        let phase = status.and_then(|s| s.phase.clone()).unwrap_or_default();
        let restarts: i32 = status
            .into_iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
            .map(|c| c.restart_count)
            .sum();
        let log = deployment
            .logs(&name, None, false)
            .await
            .map(|l| {
                // Each line cut at 300 characters: a message must stay readable.
                let lines: Vec<String> = l
                    .lines()
                    .rev()
                    .take(8)
                    .map(|line| line.chars().take(300).collect())
                    .collect();
                lines.into_iter().rev().collect::<Vec<_>>().join(" / ")
            })
            .unwrap_or_else(|e| format!("(log unreadable: {e})"));
        parts.push(format!(
            "shipper {name} ({phase}, {restarts} restarts), last log lines: {log}"
        ));
    }
    if parts.is_empty() {
        "no shipper pod".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines_parse_and_partials_join() {
        let raw = [
            "2026-11-27T17:20:00.1Z stdout P first half ",
            "2026-11-27T17:20:00.2Z stderr F an error",
            "2026-11-27T17:20:00.3Z stdout F second half",
            "2026-11-27T17:20:00.4Z stdout F ",
        ];
        let lines: Vec<CriLine> = raw.iter().filter_map(|l| CriLine::parse(l)).collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].partial);
        assert_eq!(lines[1].stream, "stderr");
        assert_eq!(
            join_partials(&lines),
            ["an error", "first half second half", ""]
        );
        assert_eq!(CriLine::parse("not a cri line"), None);
        assert_eq!(CriLine::parse("t stdin F x"), None);
    }

    fn doc(offset: u64, partial: &str, message: &str) -> Value {
        json!({
            "kubernetes": {"namespace": "ns", "pod": "p", "container": "c", "container_id": "abc"},
            "stream": "stdout", "time": format!("t{offset}"), "partial": partial,
            "message": message, "offset": offset,
        })
    }

    #[test]
    fn documents_join_in_file_order_and_count_copies() {
        let sources = [
            doc(40, "F", "tail"),
            doc(0, "F", "one"),
            doc(10, "P", "he"),
            doc(20, "P", "ad"),
            doc(10, "P", "he"),
            doc(60, "P", "unfinished"),
        ];
        let documents: Vec<Document> = sources.iter().filter_map(Document::from_source).collect();
        let lines = join_documents(documents);
        let messages: Vec<(&str, usize, usize)> = lines
            .iter()
            .map(|l| (l.message.as_str(), l.parts, l.copies))
            .collect();
        assert_eq!(messages, [("one", 1, 1), ("headtail", 3, 4)]);
        assert_eq!(lines[1].offset, 10);
        let query = LogQuery::namespace("ns").text("adta");
        assert!(query.matches(&lines[1]) && !query.matches(&lines[0]));
    }
}
