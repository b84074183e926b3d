//! Shared parts of the embargo ingest components: configuration from the
//! environment, the Redis key layout, counters, and the health endpoint.
//!
//! Keys (see the design notes): `QUEUE:{bucket}` (list, LPUSH by enqueue),
//! `WORKER:{bucket}:{pod}` (a worker's in-flight list), `FILE:{key}` (hash with
//! `recv_time`, then `ingest_time` and `ingested_by`; 7-day TTL),
//! `COUNT:{bucket}:{day}` (accepted per day), `INGESTED:{bucket}` (set of
//! processed keys), `INGESTS:{bucket}` (hash: times each key's work was done),
//! `FAILS:{bucket}` (hash of failure counts), `FAILED:{bucket}` (set of keys given up).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context as _;

/// A required environment variable.
///
/// # Errors
/// The variable is unset or empty.
pub fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .with_context(|| format!("environment variable {name} is not set"))
}

pub use component_kit::{env_or, exit_code, exit_on_sigterm};

/// Connects to Redis from `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`, retrying
/// for two minutes (Redis may start after its clients). The connection
/// reconnects by itself when Redis restarts; commands fail while it is away.
///
/// # Errors
/// Missing settings or an unreachable server.
pub async fn redis() -> anyhow::Result<redis::aio::ConnectionManager> {
    let host = env("REDIS_HOST")?;
    let port: u16 = env_or("REDIS_PORT", 6379)?;
    let password = std::env::var("REDIS_PASSWORD").unwrap_or_default();
    let encoded: String = password
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let url = if password.is_empty() {
        format!("redis://{host}:{port}/")
    } else {
        format!("redis://:{encoded}@{host}:{port}/")
    };
    let client = redis::Client::open(url).context("redis settings")?;
    // Longer than the blocking BLMOVE of the workers; connection attempts are short and retried.
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(3)))
        .set_response_timeout(Some(std::time::Duration::from_secs(30)))
        .set_number_of_retries(2)
        // Back within a second of Redis answering again after a restart.
        .set_max_delay(std::time::Duration::from_secs(1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        match client
            .get_connection_manager_with_config(config.clone())
            .await
        {
            Ok(connection) => return Ok(connection),
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("waiting for redis at {host}:{port}: {e}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("connecting to redis at {host}:{port}"))
            }
        }
    }
}

/// The queue of a bucket.
pub fn queue(bucket: &str) -> String {
    format!("QUEUE:{bucket}")
}

/// The in-flight list of a worker.
pub fn worker_list(bucket: &str, pod: &str) -> String {
    format!("WORKER:{bucket}:{pod}")
}

/// Named event counters a component keeps, served as a JSON object on
/// `GET /metrics`, so tests observe a component without reading Redis by hand.
#[derive(Debug)]
pub struct Counters {
    names: &'static [&'static str],
    values: Vec<AtomicU64>,
}

impl Counters {
    /// Counters called `names`, all zero.
    pub fn new(names: &'static [&'static str]) -> Arc<Self> {
        Arc::new(Self {
            names,
            values: names.iter().map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Adds `n` to counter `name`.
    ///
    /// # Panics
    /// `name` is not one of the counters (a programming error).
    pub fn add(&self, name: &str, n: u64) {
        let i = self
            .names
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no counter {name}"));
        self.values[i].fetch_add(n, Ordering::Relaxed);
    }

    /// Every counter, by name.
    pub fn json(&self) -> serde_json::Value {
        self.names
            .iter()
            .zip(&self.values)
            .map(|(name, value)| ((*name).to_owned(), value.load(Ordering::Relaxed).into()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }
}

/// An object-store notification as `POST /notify` receives it (S3's event
/// format): the records, each a bucket, an encoded object key and the secret.
#[derive(Debug, serde::Deserialize)]
pub struct Notification {
    /// The records (none when absent).
    #[serde(rename = "Records", default)]
    pub records: Vec<Record>,
}

/// One record of a [`Notification`].
#[derive(Debug, serde::Deserialize)]
pub struct Record {
    /// Where the object is.
    pub s3: S3,
    /// The shared secret the webhook checks (empty when absent).
    #[serde(rename = "opaqueData", default)]
    pub opaque_data: String,
}

/// The bucket and object of a [`Record`].
#[derive(Debug, serde::Deserialize)]
pub struct S3 {
    /// The bucket.
    pub bucket: Named,
    /// The object.
    pub object: Object,
}

/// Something with a name (the bucket).
#[derive(Debug, serde::Deserialize)]
pub struct Named {
    /// Its name.
    pub name: String,
}

/// The object of a [`Record`].
#[derive(Debug, serde::Deserialize)]
pub struct Object {
    /// Its key, encoded as the store sends it ([`decode_key`]).
    pub key: String,
}

/// Decodes an object key as S3 notifications encode it: `%XX` escapes and `+` for space.
pub fn decode_key(key: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Serves the health and metrics endpoints from `HEALTH_LISTEN` in the
/// background; the flag it returns says whether the component is healthy.
///
/// # Errors
/// `HEALTH_LISTEN` is not valid.
pub fn spawn_health(counters: Arc<Counters>) -> anyhow::Result<Arc<AtomicBool>> {
    // SIGTERM needs no grace: enqueue has answered or not answered each request;
    // a worker's unfinished keys stay in its worker list, which the idle reaper
    // requeues (at-least-once).
    let healthy = Arc::new(AtomicBool::new(false));
    let router = component_kit::with_metrics(
        component_kit::health_router(healthy.clone(), "unhealthy\n"),
        move || counters.json(),
    );
    component_kit::spawn_serve(env_or("HEALTH_LISTEN", "0.0.0.0:8080".to_owned())?, router);
    Ok(healthy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_count_by_name() {
        let counters = Counters::new(&["taken", "ingested"]);
        counters.add("ingested", 2);
        counters.add("ingested", 1);
        assert_eq!(
            counters.json(),
            serde_json::json!({"taken": 0, "ingested": 3})
        );
    }

    #[test]
    fn keys_are_decoded_like_s3_notifications() {
        assert_eq!(
            decode_key("raw/2026-11-24/a+b%2Cc.fits"),
            "raw/2026-11-24/a b,c.fits"
        );
        assert_eq!(decode_key("plain.fits"), "plain.fits");
        assert_eq!(decode_key("bad%zzescape%"), "bad%zzescape%");
    }
}
