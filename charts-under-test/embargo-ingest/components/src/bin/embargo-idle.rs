//! idle: the reaper. Every `IDLE_MAX` seconds it scans `WORKER:{bucket}:*`; a
//! worker list untouched for longer than `IDLE_MAX` (`OBJECT IDLETIME`) belongs
//! to a dead worker, and its keys go back onto `QUEUE:{bucket}` with
//! `LMOVE … RIGHT LEFT` until it is empty, so another worker processes them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use embargo_components::{env, env_or, queue, Counters};

/// What `/metrics` reports: scans done, worker lists found idle, keys requeued.
const COUNTERS: &[&str] = &["scans", "idle_lists", "requeued"];

async fn reap(
    redis: &mut redis::aio::ConnectionManager,
    bucket: &str,
    idle_max: u64,
    counters: &Counters,
) -> redis::RedisResult<usize> {
    let mut moved = 0;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("WORKER:{bucket}:*"))
            .arg("COUNT")
            .arg(100)
            .query_async(redis)
            .await?;
        for list in keys {
            let idle: Option<u64> = redis::cmd("OBJECT")
                .arg("IDLETIME")
                .arg(&list)
                .query_async(redis)
                .await?;
            if idle.is_none_or(|i| i <= idle_max) {
                continue;
            }
            counters.add("idle_lists", 1);
            loop {
                let key: Option<String> = redis::cmd("LMOVE")
                    .arg(&list)
                    .arg(queue(bucket))
                    .arg("RIGHT")
                    .arg("LEFT")
                    .query_async(redis)
                    .await?;
                match key {
                    Some(k) => {
                        moved += 1;
                        counters.add("requeued", 1);
                        eprintln!(
                            "requeued {k} from {list} (idle {}s)",
                            idle.unwrap_or_default()
                        );
                    }
                    None => break,
                }
            }
        }
        cursor = next;
        if cursor == 0 {
            counters.add("scans", 1);
            return Ok(moved);
        }
    }
}

async fn run() -> anyhow::Result<()> {
    embargo_components::exit_on_sigterm();
    let bucket = env("BUCKET")?;
    let idle_max: u64 = env_or("IDLE_MAX", 30)?;
    let counters = Counters::new(COUNTERS);
    let healthy = embargo_components::spawn_health(counters.clone())?;
    let mut redis = embargo_components::redis().await?;
    eprintln!("idle reaper for WORKER:{bucket}:* every {idle_max}s");
    loop {
        match reap(&mut redis, &bucket, idle_max, &counters).await {
            Ok(_) => healthy.store(true, Ordering::Relaxed),
            Err(e) => {
                healthy.store(false, Ordering::Relaxed);
                eprintln!("error: reaping: {e}");
            }
        }
        tokio::time::sleep(Duration::from_secs(idle_max.max(1))).await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    embargo_components::exit_code(run().await)
}
