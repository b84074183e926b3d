//! ingest: a worker. Its list `WORKER:{bucket}:{pod}` holds what it has taken;
//! after a restart it finishes that first. Otherwise it blocks on
//! `BLMOVE QUEUE:{bucket} WORKER… RIGHT LEFT`, then takes up to `MAX_INGESTS - 1`
//! more with `LMOVE`. Each key is recorded in `INGESTED:{bucket}` (a set, so
//! re-delivery is harmless) and only then removed from the worker list with
//! `LREM` — at-least-once. Failures are counted; a key is given up (moved to
//! `FAILED:{bucket}`) after `MAX_FAILURES`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use embargo_components::{env, env_or, queue, worker_list};
use redis::AsyncCommands as _;

struct Worker {
    redis: redis::aio::MultiplexedConnection,
    bucket: String,
    list: String,
    max_ingests: usize,
    max_failures: i64,
}

impl Worker {
    /// Takes a batch: the leftovers of this worker, else a blocking move plus more.
    async fn take(&mut self) -> redis::RedisResult<Vec<String>> {
        let leftovers: Vec<String> = self.redis.lrange(&self.list, 0, -1).await?;
        if !leftovers.is_empty() {
            return Ok(leftovers);
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
        Ok(batch)
    }

    /// Records one key as ingested, then removes it from the worker list.
    async fn ingest(&mut self, key: &str) -> redis::RedisResult<()> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as f64 / 1e9;
        let result: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .sadd(format!("INGESTED:{}", self.bucket), key)
            .hset(format!("FILE:{key}"), "ingest_time", now)
            .query_async(&mut self.redis)
            .await;
        if let Err(e) = result {
            let fails: i64 = self
                .redis
                .hincr(format!("FAILS:{}", self.bucket), key, 1)
                .await?;
            eprintln!(
                "error: ingesting {key} failed ({fails}/{}): {e}",
                self.max_failures
            );
            if fails < self.max_failures {
                return Ok(());
            }
            let _: () = self
                .redis
                .sadd(format!("FAILED:{}", self.bucket), key)
                .await?;
        }
        let _: () = self.redis.lrem(&self.list, 1, key).await?;
        Ok(())
    }
}

async fn run() -> anyhow::Result<()> {
    embargo_components::exit_on_sigterm();
    let bucket = env("BUCKET")?;
    let pod = env("POD_NAME")?;
    let healthy = embargo_components::spawn_health()?;
    let mut worker = Worker {
        redis: embargo_components::redis().await?,
        list: worker_list(&bucket, &pod),
        bucket,
        max_ingests: env_or("MAX_INGESTS", 10usize)?.max(1),
        max_failures: env_or("MAX_FAILURES", 3i64)?.max(1),
    };
    eprintln!("ingest worker {} on {}", worker.list, queue(&worker.bucket));
    loop {
        match worker.take().await {
            Ok(batch) => {
                healthy.store(true, Ordering::Relaxed);
                for key in batch {
                    if let Err(e) = worker.ingest(&key).await {
                        eprintln!("error: {key}: {e}");
                    }
                }
            }
            Err(e) => {
                healthy.store(false, Ordering::Relaxed);
                eprintln!("error: taking work: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    embargo_components::exit_code(run().await)
}
