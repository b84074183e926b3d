//! The Kafka -> InfluxDB connector of the efd chart.
//!
//! `efd-connector run` consumes every topic matching `KAFKA_TOPIC_REGEX`, maps
//! each JSON record to a point
//! (`efd_components::to_line`) and writes batches to `INFLUXDB_URL` database
//! `INFLUXDB_DATABASE`. A batch is written as soon as no further record is waiting
//! (or after `LINGER_MS`, or at `BATCH_SIZE` records), so a lone record is not held
//! back, and a burst is written in full batches. Writing runs beside consuming (one
//! batch in flight), and offsets are committed only after InfluxDB acknowledged the
//! write (at-least-once; a re-delivered point overwrites itself). A failed write is
//! retried with backoff, never dropped. Malformed records are logged and skipped.
//!
//! HTTP on `HEALTH_LISTEN`: `GET /healthz` answers 200 while the last write (or,
//! at the start, InfluxDB's ping and the broker's metadata) succeeded — the readiness probe; `GET /livez` answers 200 while
//! the process serves; `GET /metrics` gives the counters as JSON, with
//! `latency_ms`: from each record's Kafka timestamp (set by its producer) to
//! InfluxDB's acknowledgement of its point, over the latest 10,000 points.
//!
//! Replicas share the matching topics' partitions as members of consumer group
//! `KAFKA_GROUP_ID` (the broker's group coordinator, cooperative-sticky
//! assignment): a replica that leaves (SIGTERM) hands its partitions over at
//! once, one that is killed after `SESSION_TIMEOUT_MS` without a heartbeat, and
//! a newcomer takes a share without stopping the others. Each partition resumes
//! from the group's committed offset. New topics and partitions are picked up
//! every `METADATA_REFRESH_MS`.
//!
//! SIGTERM: the batch in flight is finished and committed, then the process ends.
//!
//! `efd-connector create-topics --brokers B [--partitions N]
//! [--replication-factor R] TOPIC...` creates topics (existing ones are fine),
//! retrying until the broker answers.
//! `efd-connector write-points …` measures InfluxDB's own write rate (benchmarks).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use component_kit::{env, env_or};

/// Counters served on `/metrics`, so tests observe the connector without parsing logs.
#[derive(Default)]
struct Metrics {
    /// Records received from Kafka (re-deliveries included).
    consumed: AtomicU64,
    /// Points InfluxDB acknowledged.
    written: AtomicU64,
    /// Records skipped as malformed.
    skipped: AtomicU64,
    /// Write attempts that failed (and were retried).
    write_failures: AtomicU64,
    /// Batches acknowledged by InfluxDB.
    batches: AtomicU64,
    /// Offset commits that failed (their records will be re-delivered).
    commit_failures: AtomicU64,
    /// Whether the last write (or the first ping) succeeded.
    healthy: Arc<AtomicBool>,
    /// When the first batch of records was gathered and when InfluxDB last
    /// acknowledged a write (Unix ms, 0 before): a burst's drain window, on one clock.
    first_consumed_ms: AtomicI64,
    last_written_ms: AtomicI64,
    /// The partitions this replica holds (`topic/partition`), and how many
    /// assignments and revocations the group has made it go through.
    partitions: std::sync::Mutex<std::collections::BTreeSet<String>>,
    rebalances: AtomicU64,
    /// Record timestamp -> InfluxDB acknowledged, in ms, for the latest records.
    latencies_ms: std::sync::Mutex<std::collections::VecDeque<i64>>,
}

/// How many recent latencies `/metrics` summarises.
const LATENCY_WINDOW: usize = 10_000;

/// Milliseconds since the Unix epoch.
fn unix_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(i64::MAX)
}

impl Metrics {
    /// Notes a gathered batch of records (the first one starts the drain window).
    fn consumed(&self, records: usize) {
        self.consumed.fetch_add(records as u64, Ordering::Relaxed);
        let _ = self.first_consumed_ms.compare_exchange(
            0,
            unix_ms(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Notes when InfluxDB acknowledged points whose records were created at `created_ms`.
    fn acknowledged(&self, created_ms: &[i64]) {
        let now = unix_ms();
        self.last_written_ms.store(now, Ordering::Relaxed);
        let mut window = self.latencies_ms.lock().unwrap_or_else(|p| p.into_inner());
        for created in created_ms {
            if window.len() == LATENCY_WINDOW {
                window.pop_front();
            }
            window.push_back(now - created);
        }
    }

    /// Median, p99 and max of the recent latencies, with their count.
    fn latency_summary(&self) -> serde_json::Value {
        let mut sorted: Vec<i64> = self
            .latencies_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        if sorted.is_empty() {
            return serde_json::Value::Null;
        }
        sorted.sort_unstable();
        let at = |q: usize| sorted[(sorted.len() * q / 100).min(sorted.len() - 1)];
        serde_json::json!({"count": sorted.len(), "p50": at(50), "p99": at(99), "max": sorted[sorted.len() - 1]})
    }

    fn snapshot(&self) -> serde_json::Value {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "consumed": get(&self.consumed),
            "written": get(&self.written),
            "skipped": get(&self.skipped),
            "write_failures": get(&self.write_failures),
            "batches": get(&self.batches),
            "commit_failures": get(&self.commit_failures),
            "healthy": self.healthy.load(Ordering::Relaxed),
            "first_consumed_ms": self.first_consumed_ms.load(Ordering::Relaxed),
            "last_written_ms": self.last_written_ms.load(Ordering::Relaxed),
            "peak_rss_kib": peak_rss_kib(),
            "partitions": *self.partitions.lock().unwrap_or_else(|p| p.into_inner()),
            "rebalances": get(&self.rebalances),
            "latency_ms": self.latency_summary(),
        })
    }
}

/// The process's peak resident set size (`VmHWM`), for the burst benchmark.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// InfluxDB 1.x's write endpoint.
struct Influx {
    /// Replaced after a failure, so a retry opens a new connection instead of
    /// reusing a pooled one that may lead somewhere else (see [`Influx::renew`]).
    http: std::sync::Mutex<reqwest::Client>,
    write_url: String,
    ping_url: String,
}

impl Influx {
    fn new(url: &str, database: &str) -> anyhow::Result<Self> {
        let base = reqwest::Url::parse(url).with_context(|| format!("INFLUXDB_URL {url:?}"))?;
        let mut write = base.join("write").context("INFLUXDB_URL")?;
        write
            .query_pairs_mut()
            .append_pair("db", database)
            .append_pair("precision", "u");
        Ok(Self {
            http: std::sync::Mutex::new(Self::client()?),
            write_url: write.to_string(),
            ping_url: base.join("ping").context("INFLUXDB_URL")?.to_string(),
        })
    }

    fn client() -> anyhow::Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .context("building the HTTP client")
    }

    fn http(&self) -> reqwest::Client {
        self.http.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Drops pooled connections after a failed exchange: a keep-alive
    /// connection opened before the Service was routable can lead to another
    /// server for as long as it lives (seen: 404 to every ping for 5 minutes).
    fn renew(&self) {
        if let Ok(client) = Self::client() {
            *self.http.lock().unwrap_or_else(|p| p.into_inner()) = client;
        }
    }

    async fn write(&self, lines: String) -> anyhow::Result<()> {
        let outcome = async {
            let response = self.http().post(&self.write_url).body(lines).send().await?;
            let status = response.status();
            if status != reqwest::StatusCode::NO_CONTENT {
                let body = response.text().await.unwrap_or_default();
                bail!("InfluxDB write answered {status}: {}", body.trim());
            }
            Ok(())
        }
        .await;
        if outcome.is_err() {
            self.renew();
        }
        outcome
    }

    async fn ping(&self) -> anyhow::Result<()> {
        let outcome = async {
            let status = self.http().get(&self.ping_url).send().await?.status();
            anyhow::ensure!(
                status == reqwest::StatusCode::NO_CONTENT,
                "InfluxDB /ping answered {status}"
            );
            Ok(())
        }
        .await;
        if outcome.is_err() {
            self.renew();
        }
        outcome
    }
}

/// Points of consecutive records and the offsets to commit once they are written.
#[derive(Default)]
struct Batch {
    lines: String,
    points: usize,
    records: usize,
    /// Next offset to commit per (topic, partition).
    offsets: BTreeMap<(String, i32), i64>,
    /// Kafka timestamps (ms) of the records that became points.
    created_ms: Vec<i64>,
}

impl Batch {
    fn add(&mut self, message: &BorrowedMessage<'_>, metrics: &Metrics) {
        let topic = message.topic();
        self.records += 1;
        self.offsets.insert(
            (topic.to_owned(), message.partition()),
            message.offset() + 1,
        );
        let mapped = message
            .payload()
            .context("empty message")
            .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).context("not JSON"))
            .and_then(|v| efd_components::to_line(topic, &v).map_err(anyhow::Error::from));
        match mapped {
            Ok(line) => {
                self.lines.push_str(&line);
                self.lines.push('\n');
                self.points += 1;
                if let Some(ms) = message.timestamp().to_millis() {
                    self.created_ms.push(ms);
                }
            }
            Err(e) => {
                metrics.skipped.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "skipping record {topic}/{}@{}: {e:#}",
                    message.partition(),
                    message.offset()
                );
            }
        }
    }

    fn commit_list(&self) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in &self.offsets {
            let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*offset));
        }
        list
    }
}

struct Settings {
    brokers: String,
    group: String,
    topics: String,
    influx: Influx,
    batch_size: usize,
    linger: Duration,
    fetch_wait_ms: u32,
    metadata_refresh: Duration,
    session_timeout: Duration,
    health_listen: String,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let pattern = env_or("KAFKA_TOPIC_REGEX", "^lsst\\.sal\\..*".to_owned())?;
        regex::Regex::new(&pattern).with_context(|| format!("KAFKA_TOPIC_REGEX {pattern:?}"))?;
        Ok(Self {
            brokers: env("KAFKA_BROKERS")?,
            group: env_or("KAFKA_GROUP_ID", "efd-connector".to_owned())?,
            topics: if pattern.starts_with('^') {
                pattern
            } else {
                format!("^{pattern}")
            },
            influx: Influx::new(
                &env("INFLUXDB_URL")?,
                &env_or("INFLUXDB_DATABASE", "efd".to_owned())?,
            )?,
            batch_size: env_or("BATCH_SIZE", 500usize)?.max(1),
            linger: Duration::from_millis(env_or("LINGER_MS", 0u64)?),
            // How long the broker may hold a fetch while no data is there; it
            // answers at once when data arrives, so this costs no latency.
            fetch_wait_ms: env_or("FETCH_WAIT_MAX_MS", 500u32)?,
            metadata_refresh: Duration::from_millis(
                env_or("METADATA_REFRESH_MS", 5000u64)?.max(100),
            ),
            // The broker's smallest (group.min.session.timeout.ms): a killed
            // replica's partitions move to the others after 6 s, not 45.
            session_timeout: Duration::from_millis(env_or("SESSION_TIMEOUT_MS", 6000u64)?),
            health_listen: env_or("HEALTH_LISTEN", "0.0.0.0:8080".to_owned())?,
        })
    }

    fn consumer(&self, metrics: Arc<Metrics>) -> anyhow::Result<GroupConsumer> {
        let mut config = ClientConfig::new();
        // librdkafka's own debug contexts (e.g. `cgrp` for group membership).
        if let Ok(debug) = std::env::var("KAFKA_DEBUG") {
            config.set("debug", debug);
        }
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", self.fetch_wait_ms.to_string())
            // A broker restarting in the cluster is back within seconds; the
            // default backoff (up to 10 s after repeated failures, e.g. while
            // a JVM broker starts) would leave the connector idle that long.
            .set("reconnect.backoff.max.ms", "1000")
            // Subscribed by pattern: new matching topics join at the next refresh.
            .set(
                "topic.metadata.refresh.interval.ms",
                self.metadata_refresh.as_millis().to_string(),
            )
            // A rebalance moves only the partitions that change hands; the
            // others keep flowing.
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set(
                "session.timeout.ms",
                self.session_timeout.as_millis().to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (self.session_timeout.as_millis() / 3).max(100).to_string(),
            )
            .create_with_context(GroupContext { metrics })
            .context("creating the Kafka consumer")
    }
}

/// The consumer's context: notes each rebalance's outcome in the log and in
/// `/metrics` (which partitions this replica holds), so a case sees the
/// group share its partitions out.
struct GroupContext {
    metrics: Arc<Metrics>,
}

impl rdkafka::ClientContext for GroupContext {}

impl rdkafka::consumer::ConsumerContext for GroupContext {
    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &rdkafka::consumer::Rebalance<'_>,
    ) {
        use rdkafka::consumer::Rebalance;
        let names = |list: &TopicPartitionList| -> Vec<String> {
            list.elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect()
        };
        let mut held = self
            .metrics
            .partitions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match rebalance {
            Rebalance::Assign(list) => {
                let new = names(list);
                self.metrics.rebalances.fetch_add(1, Ordering::Relaxed);
                eprintln!("group: assigned {}", new.join(", "));
                held.extend(new);
            }
            Rebalance::Revoke(list) => {
                let gone = names(list);
                self.metrics.rebalances.fetch_add(1, Ordering::Relaxed);
                eprintln!("group: revoked {}", gone.join(", "));
                for p in &gone {
                    held.remove(p);
                }
            }
            Rebalance::Error(e) => eprintln!("group: rebalance failed: {e}"),
        }
    }
}

type GroupConsumer = StreamConsumer<GroupContext>;

/// Logs the consumer's errors, a repeat of the last one at most every 10 s
/// with how many were not printed: while a broker restarts librdkafka reports
/// every failed reconnect.
#[derive(Default)]
struct ErrorLog {
    last: String,
    printed: Option<Instant>,
    repeats: u64,
}

impl ErrorLog {
    fn note(&mut self, error: &rdkafka::error::KafkaError) {
        let text = error.to_string();
        let recent = self
            .printed
            .is_some_and(|t| t.elapsed() < Duration::from_secs(10));
        if text == self.last && recent {
            self.repeats += 1;
            return;
        }
        if self.repeats > 0 {
            eprintln!("kafka: {} (repeated {} times)", self.last, self.repeats);
        }
        eprintln!("kafka: {text}");
        self.last = text;
        self.printed = Some(Instant::now());
        self.repeats = 0;
    }
}

/// Writes batches in order, retrying each until InfluxDB acknowledges it, then
/// commits its offsets (asynchronously). Ends when the channel closes, returning
/// every offset it committed, for a last synchronous commit.
async fn write_batches(
    mut batches: mpsc::Receiver<Batch>,
    influx: Arc<Influx>,
    consumer: Arc<GroupConsumer>,
    metrics: Arc<Metrics>,
) -> Batch {
    let mut written = Batch::default();
    while let Some(batch) = batches.recv().await {
        if batch.points > 0 {
            let mut backoff = Duration::from_millis(100);
            while let Err(e) = influx.write(batch.lines.clone()).await {
                metrics.healthy.store(false, Ordering::Relaxed);
                metrics.write_failures.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "write of {} points failed, retrying in {backoff:?}: {e:#}",
                    batch.points
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            metrics.healthy.store(true, Ordering::Relaxed);
            metrics.acknowledged(&batch.created_ms);
            metrics
                .written
                .fetch_add(batch.points as u64, Ordering::Relaxed);
            metrics.batches.fetch_add(1, Ordering::Relaxed);
        }
        if let Err(e) = consumer.commit(&batch.commit_list(), CommitMode::Async) {
            metrics.commit_failures.fetch_add(1, Ordering::Relaxed);
            eprintln!("commit failed (records will be re-delivered): {e}");
        }
        written.offsets.extend(batch.offsets);
    }
    written
}

async fn run(mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let metrics = Arc::new(Metrics::default());
    serve_http(settings.health_listen.clone(), metrics.clone());
    let consumer = Arc::new(settings.consumer(metrics.clone())?);
    eprintln!(
        "efd-connector: {} group {} topics {} -> {} (batch {}, linger {:?}, fetch wait {} ms)",
        settings.brokers,
        settings.group,
        settings.topics,
        settings.influx.write_url,
        settings.batch_size,
        settings.linger,
        settings.fetch_wait_ms
    );
    while let Err(e) = settings.influx.ping().await {
        eprintln!("waiting for InfluxDB: {e:#}");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
    // Ready once both ends answer: the broker too, which may start slower.
    loop {
        let c = consumer.clone();
        let metadata =
            tokio::task::spawn_blocking(move || c.fetch_metadata(None, Duration::from_secs(5)))
                .await;
        match metadata {
            Ok(Ok(_)) => break,
            Ok(Err(e)) => eprintln!("waiting for Kafka: {e}"),
            Err(e) => eprintln!("waiting for Kafka: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
    metrics.healthy.store(true, Ordering::Relaxed);
    consumer
        .subscribe(&[&settings.topics])
        .with_context(|| format!("subscribing to {}", settings.topics))?;

    let influx = Arc::new(settings.influx);
    // One batch written while the next is gathered.
    let (batches, pending) = mpsc::channel::<Batch>(1);
    let writer = tokio::spawn(write_batches(
        pending,
        influx,
        consumer.clone(),
        metrics.clone(),
    ));
    let mut errors = ErrorLog::default();
    'consume: loop {
        let mut batch = Batch::default();
        // The first record of a batch: wait as long as it takes.
        tokio::select! {
            received = consumer.recv() => match received {
                Ok(message) => batch.add(&message, &metrics),
                // Reported, not waited on: librdkafka recovers by itself, and
                // the group's rebalance events queue behind these (a pause per
                // error held a new member's assignment back ~20 s).
                Err(e) => {
                    errors.note(&e);
                    continue;
                }
            },
            _ = stop.changed() => break 'consume,
        }
        // More records: whatever is already waiting, and what arrives within the linger.
        let linger_until = tokio::time::Instant::now() + settings.linger;
        while batch.records < settings.batch_size {
            match tokio::time::timeout_at(linger_until, consumer.recv()).await {
                Ok(Ok(message)) => batch.add(&message, &metrics),
                Ok(Err(e)) => {
                    errors.note(&e);
                    break;
                }
                Err(_) => break,
            }
        }
        metrics.consumed(batch.records);
        if batches.send(batch).await.is_err() {
            bail!("the writer stopped");
        }
    }
    // Finish (write and commit) what was consumed.
    drop(batches);
    if let Ok(written) = writer.await {
        let list = written.commit_list();
        let committed = tokio::task::spawn_blocking(move || {
            if list.count() == 0 {
                return Ok(());
            }
            consumer.commit(&list, CommitMode::Sync)
        })
        .await;
        if let Ok(Err(e)) = committed {
            eprintln!("last commit failed (records will be re-delivered): {e}");
        }
    }
    eprintln!("efd-connector: stopped after committing what it wrote");
    Ok(())
}

/// The connector's commands; without one it runs (settings from the environment).
#[derive(Parser)]
#[command(
    name = "efd-connector",
    about = "Kafka -> InfluxDB connector of the EFD"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Consume and write (the default).
    Run,
    /// Create topics (existing ones are fine), retrying until the broker answers.
    CreateTopics {
        /// Bootstrap brokers, HOST:PORT.
        #[arg(long)]
        brokers: String,
        /// Partitions of each new topic.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// Replicas of each partition (at most the number of brokers).
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// The topics.
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// InfluxDB's own write rate for the points the connector would write.
    WritePoints(WritePoints),
}

/// `efd-connector write-points --url U --database D --topic T --points N
/// [--batch B] SAMPLE_JSON`: `N` copies of the sample record mapped by the same
/// code as the connector, each with its own `private_efdStamp` and
/// `private_seqNum`, written in batches of `B` one at a time (as the connector
/// writes). Prints the rate.
#[derive(clap::Args)]
struct WritePoints {
    /// InfluxDB's URL.
    #[arg(long)]
    url: String,
    /// The database.
    #[arg(long)]
    database: String,
    /// The topic (the measurement).
    #[arg(long)]
    topic: String,
    /// How many points.
    #[arg(long)]
    points: u64,
    /// Points per write.
    #[arg(long, default_value_t = 500)]
    batch: u64,
    /// A sample record (JSON).
    sample: String,
}

async fn create_topics(
    brokers: &str,
    (partitions, replication): (i32, i32),
    topics: &[String],
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .context("creating the Kafka admin client")?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(replication)))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let outcome = admin.create_topics(&new, &options).await;
        let pending: Vec<String> = match &outcome {
            Ok(results) => results
                .iter()
                .filter_map(|r| match r {
                    Ok(_) => None,
                    Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => None,
                    Err((topic, code)) => Some(format!("{topic}: {code}")),
                })
                .collect(),
            Err(e) => vec![e.to_string()],
        };
        if pending.is_empty() {
            for t in topics {
                println!("topic {t} ready");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("creating topics failed: {}", pending.join("; "));
        }
        eprintln!("retrying: {}", pending.join("; "));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn write_points(args: WritePoints) -> anyhow::Result<()> {
    let WritePoints {
        url,
        database,
        topic,
        points,
        batch,
        sample,
    } = args;
    let topic = topic.as_str();
    let influx = Influx::new(&url, &database)?;
    let mut record: serde_json::Value =
        serde_json::from_str(&sample).context("the sample record is not JSON")?;
    let start = record["private_efdStamp"]
        .as_f64()
        .context("the sample has no private_efdStamp")?;
    let started = Instant::now();
    let mut lines = String::new();
    for i in 0..points {
        #[allow(clippy::cast_precision_loss)] // i < 2^53
        let stamp = start + i as f64 / 1e6;
        record["private_efdStamp"] = serde_json::json!(stamp);
        record["private_seqNum"] = serde_json::json!(i);
        lines.push_str(&efd_components::to_line(topic, &record)?);
        lines.push('\n');
        if (i + 1) % batch == 0 || i + 1 == points {
            influx.write(std::mem::take(&mut lines)).await?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let rate = points as f64 / seconds;
    println!("{{\"points\": {points}, \"seconds\": {seconds:.3}, \"rate\": {rate:.0}}}");
    Ok(())
}

/// `/healthz` (200 while InfluxDB writes succeed), `/livez`, `/metrics`.
fn serve_http(addr: String, metrics: Arc<Metrics>) {
    let router = component_kit::health_router(metrics.healthy.clone(), "InfluxDB writes failing\n");
    let router = component_kit::with_metrics(router, move || metrics.snapshot());
    component_kit::spawn_serve(addr, router);
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut stop = component_kit::stop_on_sigterm();
    let result = match cli.command {
        Some(Command::Run) | None => run(stop).await,
        Some(Command::CreateTopics {
            brokers,
            partitions,
            replication_factor,
            topics,
        }) => tokio::select! {
            done = create_topics(&brokers, (partitions, replication_factor), &topics) => done,
            _ = stop.changed() => Ok(()),
        },
        Some(Command::WritePoints(args)) => write_points(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
