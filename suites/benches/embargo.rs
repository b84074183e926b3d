//! Embargo ingest figures on the cluster in `KUBECONFIG` (the local one in CI):
//!
//! - keys per second end to end (notified through the webhook until recorded
//!   as ingested) with 1, 2 and 4 workers, at `INGEST_SECONDS=0` (the queue's
//!   own overhead) and at the default 0.05 s (scaling), with the 4 / 1 ratio;
//! - the webhook's own rate (one key per notification) with 1, 4 and 16 clients;
//! - the time from a worker killed mid-batch to its keys ingested by another,
//!   for two `idleMax` settings.
//!
//! Run with `cargo bench -p suites --bench embargo`. Figures are printed, never asserted.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use testware::namespace::TestNamespace;
use testware::{Ctx, RunConfig, Upgrade, Values};
use testware_systems::embargo::EmbargoStack;

const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let (config, client) = suites::bench_cluster().await?;
    let ns = TestNamespace::create(&client, &config, "bench-embargo").await?;
    let outcome = run(&config, &ns).await;
    ns.delete(Duration::from_secs(120)).await?;
    outcome
}

fn values(workers: u32, ingest_seconds: &str, idle_max: u32) -> Values {
    Values::default()
        .file("ci/offline.yaml")
        .set("ingest.replicas", workers.to_string())
        .set("ingest.ingestSeconds", ingest_seconds)
        .set("idle.idleMax", idle_max.to_string())
}

async fn run(config: &Arc<RunConfig>, ns: &TestNamespace) -> anyhow::Result<()> {
    let ctx = Ctx::detached(config.clone(), "bench-embargo", Duration::from_secs(1800));
    let deployment = testware::ChartSet::new(suites::charts_dir())
        .install("embargo-ingest")
        .with_values(values(1, "0", 5))
        .run(&ctx, ns)
        .await?;
    let mut round = 0;
    for (seconds, keys) in [("0", 2000), ("0.05", 200)] {
        let mut rates = Vec::new();
        for workers in [1, 2, 4] {
            deployment
                .upgrade(Upgrade::default().with_values(values(workers, seconds, 5)))
                .await?;
            let stack = EmbargoStack::connect(&deployment).await?;
            round += 1;
            let rate = end_to_end(&stack, &format!("e2e-{round}"), keys).await?;
            println!(
                "INGEST_SECONDS={seconds}: {workers} worker(s): {keys} keys end to end at {rate:.0} keys/s"
            );
            rates.push(rate);
        }
        println!(
            "INGEST_SECONDS={seconds}: scaling ratio 4 workers / 1 worker = {:.2}",
            rates[2] / rates[0]
        );
    }

    deployment
        .upgrade(Upgrade::default().with_values(values(4, "0", 5)))
        .await?;
    let stack = EmbargoStack::connect(&deployment).await?;
    for clients in [1, 4, 16] {
        round += 1;
        let keys: Vec<String> = (0..1000)
            .map(|i| format!("raw/bench/webhook-{round}/{i:06}.fits"))
            .collect();
        let started = Instant::now();
        stack
            .notifier()
            .deliver_all(&keys, 1, clients, PATIENCE)
            .await?;
        let rate = keys.len() as f64 / started.elapsed().as_secs_f64();
        println!(
            "webhook: {} notifications of one key with {clients} client(s): {rate:.0}/s",
            keys.len()
        );
        let all: BTreeSet<String> = keys.into_iter().collect();
        stack
            .wait_for_ingested(&all, Duration::from_secs(120))
            .await?;
    }

    for idle_max in [5, 10] {
        deployment
            .upgrade(Upgrade::default().with_values(values(2, "0.5", idle_max)))
            .await?;
        let stack = EmbargoStack::connect(&deployment).await?;
        round += 1;
        let recovery = kill_recovery(&stack, &format!("kill-{round}")).await?;
        println!(
            "worker killed mid-batch, idleMax {idle_max} s: its keys ingested {:.1} s later ({:.2} x idleMax)",
            recovery.as_secs_f64(),
            recovery.as_secs_f64() / f64::from(idle_max)
        );
    }
    Ok(())
}

/// Notifies `n` keys (10 a notification, 8 at a time) and waits until all are
/// ingested; returns keys per second over the whole.
async fn end_to_end(stack: &EmbargoStack, prefix: &str, n: usize) -> anyhow::Result<f64> {
    let keys: Vec<String> = (0..n)
        .map(|i| format!("raw/bench/{prefix}/{i:06}.fits"))
        .collect();
    let started = Instant::now();
    stack.notifier().deliver_all(&keys, 10, 8, PATIENCE).await?;
    let all: BTreeSet<String> = keys.into_iter().collect();
    stack
        .wait_for_ingested(&all, Duration::from_secs(600))
        .await?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Kills a worker holding at least 4 keys; returns the time until those keys
/// were ingested by another worker.
async fn kill_recovery(stack: &EmbargoStack, prefix: &str) -> anyhow::Result<Duration> {
    let keys: Vec<String> = (0..40)
        .map(|i| format!("raw/bench/{prefix}/{i:06}.fits"))
        .collect();
    stack.notifier().deliver_all(&keys, 10, 2, PATIENCE).await?;
    let killed_worker = stack
        .kill_worker_holding(4, Duration::from_secs(60))
        .await?;
    let killed = Instant::now();
    let stranded: BTreeSet<String> = killed_worker.stranded.into_iter().collect();
    stack
        .wait_for_ingested(&stranded, Duration::from_secs(120))
        .await?;
    let recovery = killed.elapsed();
    let all: BTreeSet<String> = keys.into_iter().collect();
    stack
        .wait_for_ingested(&all, Duration::from_secs(120))
        .await?;
    Ok(recovery)
}
