//! Logging pipeline figures on the cluster in `KUBECONFIG` (the local one in CI):
//! the time from `EchoServer::print_to_stdout` to the line being searchable in
//! the store, median and p99 over `LINES` lines printed at `RATE` per second,
//! for each store implementation. Anchor: fluentd / fluent-bit pipelines flush
//! every 1–5 s; the target is under 1 s median.
//!
//! Run with `cargo bench -p suites --bench logging`. Figures are printed, never asserted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use testware::echo::EchoServer;
use testware::namespace::TestNamespace;
use testware::{Ctx, RunConfig};
use testware_systems::logs::{LogQuery, LoggingStack};

const LINES: usize = 200;
const RATE: u64 = 10;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let (config, client) = suites::bench_cluster().await?;
    for (store, values) in [
        ("noida-db", "ci/offline.yaml"),
        ("osmem-server", "ci/osmem.yaml"),
    ] {
        // The shipper reads the node's log files (hostPath): privileged only.
        let ns = TestNamespace::create_with(
            &client,
            &config,
            "bench-logging",
            testware::PodSecurity::Privileged,
        )
        .await?;
        let outcome = run(&config, &ns, store, values).await;
        ns.delete(Duration::from_secs(120)).await?;
        outcome?;
    }
    Ok(())
}

async fn run(
    config: &Arc<RunConfig>,
    ns: &TestNamespace,
    store: &str,
    values: &str,
) -> anyhow::Result<()> {
    let ctx = Ctx::detached(config.clone(), "bench-logging", Duration::from_secs(1800));
    let deployment = testware::ChartSet::new(suites::charts_dir())
        .install("logging")
        .values(values)
        .run(&ctx, ns)
        .await?;
    let stack = LoggingStack::connect(&deployment).await?;
    let echo = EchoServer::deploy_bundled(&ctx, ns).await?;
    let marker = format!("bench {}", config.run_id);

    // Printed at a steady rate; a poller notes when each line is first found.
    let printed: Arc<tokio::sync::Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let printer = {
        let (printed, marker) = (printed.clone(), marker.clone());
        let echo = Arc::new(echo);
        let echo_for_task = echo.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / RATE));
            for i in 0..LINES {
                tick.tick().await;
                let line = format!("{marker} {i:05}");
                printed.lock().await.insert(line.clone(), Instant::now());
                echo_for_task.print_to_stdout(&line).await?;
            }
            anyhow::Ok(echo)
        })
    };
    let query = LogQuery::namespace(ns.name()).text(&marker);
    let mut seen: BTreeMap<String, Instant> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(LINES as u64 / RATE + 120);
    while seen.len() < LINES && Instant::now() < deadline {
        for line in stack.find(&query).await? {
            seen.entry(line.message).or_insert_with(Instant::now);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _echo = printer.await??;
    let printed = printed.lock().await;
    let mut latencies: Vec<f64> = seen
        .iter()
        .filter_map(|(line, at)| Some(at.duration_since(*printed.get(line)?).as_secs_f64()))
        .collect();
    latencies.sort_by(f64::total_cmp);
    if latencies.is_empty() {
        anyhow::bail!("{store}: no line found; {}", stack.shipper_report().await);
    }
    let at = |q: usize| latencies[(latencies.len() * q / 100).min(latencies.len() - 1)];
    println!(
        "{store} ({}): {} of {LINES} lines found; print -> searchable median {:.3} s, p99 {:.3} s, max {:.3} s (polled every 50 ms)",
        stack.server().await?,
        latencies.len(),
        at(50),
        at(99),
        latencies[latencies.len() - 1]
    );
    Ok(())
}
