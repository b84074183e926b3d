//! The Kafka -> InfluxDB connector of the efd chart.
//!
//! `efd-connector run` consumes every topic matching `KAFKA_TOPIC_REGEX` in
//! consumer group `KAFKA_GROUP_ID`, maps each JSON record to a point
//! (`efd_components::to_line`), writes batches of up to `BATCH_SIZE` records or
//! every `FLUSH_INTERVAL_MS` to `INFLUXDB_URL` database `INFLUXDB_DATABASE`, and
//! commits offsets only after InfluxDB acknowledged the write (at-least-once; a
//! re-delivered point overwrites itself). A failed write is retried with backoff,
//! never dropped. Malformed records are logged and skipped. `GET /healthz` on
//! `HEALTH_LISTEN` answers 200 while the last write (or ping) succeeded.
//!
//! `efd-connector create-topics --brokers B [--partitions N] TOPIC...` creates
//! topics (existing ones are fine), retrying until the broker answers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .with_context(|| format!("environment variable {name} is not set"))
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name).ok().filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("environment variable {name}={v:?} is not valid")),
    }
}

/// InfluxDB 1.x over plain HTTP.
struct Influx {
    host: String,
    port: u16,
    database: String,
}

impl Influx {
    fn from_url(url: &str, database: String) -> anyhow::Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .context("INFLUXDB_URL must be an http:// URL")?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().context("INFLUXDB_URL port")?),
            None => (authority.to_owned(), 8086),
        };
        Ok(Self {
            host,
            port,
            database,
        })
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> anyhow::Result<(u16, String)> {
        let exchange = async {
            let mut stream =
                tokio::net::TcpStream::connect((self.host.as_str(), self.port)).await?;
            let head = format!(
                "{method} {path} HTTP/1.0\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
                self.host,
                body.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body).await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            anyhow::Ok(String::from_utf8_lossy(&response).into_owned())
        };
        let response = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .context("InfluxDB did not answer within 10 s")??;
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }

    async fn write(&self, lines: &str) -> anyhow::Result<()> {
        let path = format!("/write?db={}&precision=u", self.database);
        let (status, body) = self.request("POST", &path, lines.as_bytes()).await?;
        if status != 204 {
            bail!("InfluxDB write answered {status}: {}", body.trim());
        }
        Ok(())
    }

    async fn ping(&self) -> anyhow::Result<()> {
        let (status, _) = self.request("GET", "/ping", b"").await?;
        anyhow::ensure!(status == 204, "InfluxDB /ping answered {status}");
        Ok(())
    }
}

async fn run() -> anyhow::Result<()> {
    let brokers = env("KAFKA_BROKERS")?;
    let group = env_or("KAFKA_GROUP_ID", "efd-connector".to_owned())?;
    let pattern = env_or("KAFKA_TOPIC_REGEX", "^lsst\\.sal\\..*".to_owned())?;
    let influx = Influx::from_url(
        &env("INFLUXDB_URL")?,
        env_or("INFLUXDB_DATABASE", "efd".to_owned())?,
    )?;
    let batch_size: usize = env_or("BATCH_SIZE", 500usize)?.max(1);
    let flush = Duration::from_millis(env_or("FLUSH_INTERVAL_MS", 100u64)?.max(1));
    let healthy = Arc::new(AtomicBool::new(false));
    tokio::spawn(serve_health(
        env_or("HEALTH_LISTEN", "0.0.0.0:8080".to_owned())?,
        healthy.clone(),
    ));

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("topic.metadata.refresh.interval.ms", "5000")
        .create()
        .context("creating the Kafka consumer")?;
    let topic = if pattern.starts_with('^') {
        pattern.clone()
    } else {
        format!("^{pattern}")
    };
    consumer.subscribe(&[&topic]).context("subscribing")?;
    eprintln!(
        "efd-connector: {brokers} group {group} topics {topic} -> {}:{} db {}",
        influx.host, influx.port, influx.database
    );

    while influx.ping().await.is_err() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    healthy.store(true, Ordering::Relaxed);

    let mut lines = String::new();
    let mut offsets = TopicPartitionList::new();
    let mut count = 0usize;
    let mut deadline = Instant::now() + flush;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(wait, consumer.recv()).await {
            Ok(Ok(message)) => {
                let topic = message.topic().to_owned();
                let next = Offset::Offset(message.offset() + 1);
                let _ = offsets.add_partition_offset(&topic, message.partition(), next);
                let mapped = message
                    .payload()
                    .context("empty message")
                    .and_then(|p| {
                        serde_json::from_slice::<serde_json::Value>(p).context("not JSON")
                    })
                    .and_then(|v| efd_components::to_line(&topic, &v).map_err(anyhow::Error::from));
                match mapped {
                    Ok(line) => {
                        lines.push_str(&line);
                        lines.push('\n');
                        count += 1;
                    }
                    Err(e) => eprintln!(
                        "skipping record {topic}/{}@{}: {e:#}",
                        message.partition(),
                        message.offset()
                    ),
                }
                if count < batch_size {
                    continue;
                }
            }
            Ok(Err(e)) => {
                eprintln!("kafka: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) => {}
        }
        if offsets.count() > 0 {
            let mut backoff = Duration::from_millis(100);
            if count > 0 {
                while let Err(e) = influx.write(&lines).await {
                    healthy.store(false, Ordering::Relaxed);
                    eprintln!("write of {count} points failed, retrying in {backoff:?}: {e:#}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                healthy.store(true, Ordering::Relaxed);
            }
            if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
                eprintln!("commit failed (records will be re-delivered): {e}");
            }
            lines.clear();
            offsets = TopicPartitionList::new();
            count = 0;
        }
        deadline = Instant::now() + flush;
    }
}

async fn create_topics(args: &[String]) -> anyhow::Result<()> {
    let mut brokers = None;
    let mut partitions = 1i32;
    let mut topics = Vec::new();
    for arg in args {
        if let Some(v) = arg.strip_prefix("--brokers=") {
            brokers = Some(v.to_owned());
        } else if let Some(v) = arg.strip_prefix("--partitions=") {
            partitions = v.parse().context("--partitions")?;
        } else {
            topics.push(arg.clone());
        }
    }
    let brokers = brokers.context("--brokers=HOST:PORT is required")?;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .context("creating the Kafka admin client")?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
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
            for t in &topics {
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

async fn serve_health(addr: String, healthy: Arc<AtomicBool>) {
    let Ok(listener) = tokio::net::TcpListener::bind(&addr).await else {
        eprintln!("error: cannot bind the health endpoint {addr}");
        return;
    };
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let ok = healthy.load(Ordering::Relaxed);
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
            let response = if ok {
                "HTTP/1.0 200 OK\r\n\r\nok\n"
            } else {
                "HTTP/1.0 503 Service Unavailable\r\n\r\nwaiting\n"
            };
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    // Uncommitted records are re-delivered after a restart (at-least-once), so SIGTERM can end at once.
    tokio::spawn(async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            std::process::exit(0);
        }
    });
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") | None => run().await,
        Some("create-topics") => create_topics(&args[1..]).await,
        Some(other) => Err(anyhow::anyhow!(
            "unknown command {other:?} (expected run or create-topics)"
        )),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
