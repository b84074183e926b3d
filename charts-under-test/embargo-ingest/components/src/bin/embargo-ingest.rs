//! ingest: a worker. Its list `WORKER:{bucket}:{pod}` holds what it has taken;
//! after a restart it finishes that first. Otherwise it blocks on
//! `BLMOVE QUEUE:{bucket} WORKER… RIGHT LEFT`, then takes up to `MAX_INGESTS - 1`
//! more with `LMOVE`. Each key is ingested (simulated: `INGEST_SECONDS` of work,
//! failing for keys matching `FAIL_PATTERN` with probability `FAIL_RATE`), then
//! recorded in `INGESTED:{bucket}` and only then removed from the worker list
//! with `LREM` — at-least-once delivery. A key already in `INGESTED` is not
//! ingested again (as an archive refuses a second copy of a file), so a key
//! delivered twice is recorded once. Failures are counted; a key is given up
//! (moved to `FAILED:{bucket}`) after `MAX_FAILURES`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use embargo_components::{env, env_or, queue, worker_list, Counters};
use redis::AsyncCommands as _;

/// What `/metrics` reports: batches taken (and how many were leftovers of an
/// earlier life of this pod), keys ingested, keys already ingested, failed
/// attempts, keys given up.
const COUNTERS: &[&str] = &[
    "batches",
    "resumed",
    "ingested",
    "already_ingested",
    "failed",
    "given_up",
];

/// The simulated work of ingesting one key.
struct Work {
    seconds: f64,
    fail_pattern: Option<regex::Regex>,
    fail_rate: f64,
}

impl Work {
    fn from_env() -> anyhow::Result<Self> {
        let seconds: f64 = env_or("INGEST_SECONDS", 0.05)?;
        anyhow::ensure!(
            seconds.is_finite() && seconds >= 0.0,
            "INGEST_SECONDS={seconds} must be a number of seconds >= 0"
        );
        let fail_rate: f64 = env_or("FAIL_RATE", 1.0)?;
        anyhow::ensure!(
            (0.0..=1.0).contains(&fail_rate),
            "FAIL_RATE={fail_rate} must be between 0 and 1"
        );
        let fail_pattern = match std::env::var("FAIL_PATTERN").ok().filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => Some(regex::Regex::new(&p).with_context(|| format!("FAIL_PATTERN {p:?}"))?),
        };
        Ok(Self {
            seconds,
            fail_pattern,
            fail_rate,
        })
    }

    /// Does the work for `key`: `Err` with the reason when it fails.
    async fn ingest(&self, key: &str) -> Result<(), String> {
        if self.seconds > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(self.seconds)).await;
        }
        match &self.fail_pattern {
            Some(p) if p.is_match(key) && rand::random::<f64>() < self.fail_rate => Err(format!(
                "simulated failure (FAIL_PATTERN {:?}, FAIL_RATE {})",
                p.as_str(),
                self.fail_rate
            )),
            _ => Ok(()),
        }
    }
}

struct Worker {
    redis: redis::aio::ConnectionManager,
    bucket: String,
    pod: String,
    list: String,
    max_ingests: usize,
    max_failures: i64,
    work: Work,
    counters: Arc<Counters>,
}

impl Worker {
    /// Takes a batch: the leftovers of this worker, else a blocking move plus more.
    async fn take(&mut self) -> redis::RedisResult<Vec<String>> {
        let leftovers: Vec<String> = self.redis.lrange(&self.list, 0, -1).await?;
        if !leftovers.is_empty() {
            self.counters.add("batches", 1);
            self.counters.add("resumed", 1);
            eprintln!(
                "resuming {} keys left in {} (the oldest first)",
                leftovers.len(),
                self.list
            );
            // LPUSH/LMOVE … LEFT put the newest first.
            return Ok(leftovers.into_iter().rev().collect());
        }
        let first: Option<String> = redis::cmd("BLMOVE")
            .arg(queue(&self.bucket))
            .arg(&self.list)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(5)
            .query_async(&mut self.redis)
            .await?;
        let Some(first) = first else {
            return Ok(Vec::new());
        };
        let mut batch = vec![first];
        while batch.len() < self.max_ingests {
            let next: Option<String> = redis::cmd("LMOVE")
                .arg(queue(&self.bucket))
                .arg(&self.list)
                .arg("RIGHT")
                .arg("LEFT")
                .query_async(&mut self.redis)
                .await?;
            match next {
                Some(key) => batch.push(key),
                None => break,
            }
        }
        self.counters.add("batches", 1);
        eprintln!("took {} keys into {}", batch.len(), self.list);
        Ok(batch)
    }

    /// Ingests one key unless it already was, records it, then removes it from
    /// the worker list. A failed attempt leaves it there (retried with the
    /// leftovers) until `MAX_FAILURES`, when it is given up.
    async fn process(&mut self, key: &str) -> redis::RedisResult<()> {
        let ingested = format!("INGESTED:{}", self.bucket);
        let done: bool = self.redis.sismember(&ingested, key).await?;
        if done {
            self.counters.add("already_ingested", 1);
            eprintln!("{key}: already ingested, not again");
        } else {
            match self.work.ingest(key).await {
                Ok(()) => {
                    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9;
                    let file = format!("FILE:{key}");
                    let () = redis::pipe()
                        .atomic()
                        .sadd(&ingested, key)
                        .hincr(format!("INGESTS:{}", self.bucket), key, 1)
                        .hset(&file, "ingest_time", now)
                        .hset(&file, "ingested_by", &self.pod)
                        .query_async(&mut self.redis)
                        .await?;
                    self.counters.add("ingested", 1);
                }
                Err(reason) => {
                    self.counters.add("failed", 1);
                    let fails: i64 = self
                        .redis
                        .hincr(format!("FAILS:{}", self.bucket), key, 1)
                        .await?;
                    eprintln!(
                        "error: ingesting {key} failed ({fails}/{}): {reason}",
                        self.max_failures
                    );
                    if fails < self.max_failures {
                        return Ok(());
                    }
                    self.counters.add("given_up", 1);
                    eprintln!("giving up {key} after {fails} failures");
                    let _: () = self
                        .redis
                        .sadd(format!("FAILED:{}", self.bucket), key)
                        .await?;
                }
            }
        }
        let _: () = self.redis.lrem(&self.list, 1, key).await?;
        Ok(())
    }
}

async fn run() -> anyhow::Result<()> {
    embargo_components::exit_on_sigterm();
    let bucket = env("BUCKET")?;
    let pod = env("POD_NAME")?;
    let counters = Counters::new(COUNTERS);
    let healthy = embargo_components::spawn_health(counters.clone())?;
    let mut worker = Worker {
        redis: embargo_components::redis().await?,
        list: worker_list(&bucket, &pod),
        bucket,
        pod,
        max_ingests: env_or("MAX_INGESTS", 10usize)?.max(1),
        max_failures: env_or("MAX_FAILURES", 3i64)?.max(1),
        work: Work::from_env()?,
        counters,
    };
    eprintln!(
        "ingest worker {} on {} ({} s per key)",
        worker.list,
        queue(&worker.bucket),
        worker.work.seconds
    );
    loop {
        match worker.take().await {
            Ok(batch) => {
                healthy.store(true, Ordering::Relaxed);
                for key in batch {
                    if let Err(e) = worker.process(&key).await {
                        eprintln!("error: {key} stays in {}: {e}", worker.list);
                    }
                }
            }
            Err(e) => {
                healthy.store(false, Ordering::Relaxed);
                eprintln!("error: taking work from {}: {e}", queue(&worker.bucket));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    embargo_components::exit_code(run().await)
}
