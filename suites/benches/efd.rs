//! EFD full-stack figures on the cluster in `KUBECONFIG` (the local one in CI):
//!
//! - produce -> visible in InfluxDB latency, median and p99, over `LATENCY_RECORDS`
//!   records at a steady `LATENCY_RATE` per second;
//! - sustained end-to-end rate (records produced as fast as the producer goes,
//!   until the last is visible);
//! - burst drain: connector scaled to 0, `BURST` records produced, connector
//!   scaled back; the drain rate, and InfluxDB's own write rate for the same
//!   points (line protocol straight to it, batches of the connector's size) in
//!   the same run, with the ratio;
//! - the connector's peak RSS after the burst, and the records' sizes.
//!
//! Run with `cargo bench -p suites --bench efd` (`EFD_BENCH_BURST=N` to change
//! the burst, default 200000; `EFD_BENCH_PARTITIONS=P` and
//! `EFD_BENCH_CONNECTORS=C` for the topics' partitions and the connector
//! replicas, default 1 and 1). Figures are printed, never asserted; the broker's
//! start and its resident memory (its process on this machine, for the
//! embedded cluster) are among them, and InfluxDB's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use suites::processes::{efd_server, memory_of};
use testware::namespace::TestNamespace;
use testware::status::WorkloadKind;
use testware::wait::{rolled_out, wait_until};
use testware::{Ctx, RunConfig};
use testware_systems::efd::{EfdRecord, EfdStack, RecordGenerator};

const LATENCY_RECORDS: usize = 1000;
const LATENCY_RATE: u64 = 100;
const SUSTAINED: usize = 50_000;
const TOPIC: &str = "lsst.sal.Test.scalars";
/// Only the latency records go here, so polling it stays cheap.
const LATENCY_TOPIC: &str = "lsst.sal.Test.logevent_heartbeat";
const BURST_TOPIC: &str = "lsst.sal.MTM1M3.forceActuatorData";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let shape = Shape {
        burst: env_or("EFD_BENCH_BURST", 200_000),
        partitions: env_or("EFD_BENCH_PARTITIONS", 1),
        connectors: env_or("EFD_BENCH_CONNECTORS", 1),
    };
    let (config, client) = suites::bench_cluster().await?;
    let ns = TestNamespace::create(&client, &config, "bench-efd").await?;
    let outcome = run(&config, &ns, &shape).await;
    ns.delete(Duration::from_secs(120)).await?;
    outcome
}

/// What the benchmark deploys and sends.
struct Shape {
    /// Records produced while the connector is stopped.
    burst: usize,
    /// Partitions of every topic.
    partitions: usize,
    /// Connector replicas (each consumes its share of the partitions).
    connectors: usize,
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run(config: &Arc<RunConfig>, ns: &TestNamespace, shape: &Shape) -> anyhow::Result<()> {
    let ctx = Ctx::detached(config.clone(), "bench-efd", Duration::from_secs(1800));
    let started = Instant::now();
    let deployment = testware::ChartSet::new(suites::charts_dir())
        .install("efd")
        .values("ci/offline.yaml")
        .set("topics.partitions", shape.partitions.to_string())
        .set("connector.replicas", shape.connectors.to_string())
        .run(&ctx, ns)
        .await?;
    println!(
        "efd install -> ready: {:.1} s ({} partition(s) per topic, {} connector replica(s))",
        started.elapsed().as_secs_f64(),
        shape.partitions,
        shape.connectors
    );
    let stack = EfdStack::connect(&deployment, "efd").await?;
    start_times(ns, &["efd-kafka-0", "efd-influxdb-0"]).await?;
    server_memory("after the install");
    warm_up(&stack, &config.run_id).await?;

    latency(&stack, &config.run_id).await?;
    sustained(&stack, &config.run_id).await?;
    burst_drain(&stack, ns, &config.run_id, shape).await?;
    server_memory("after the burst");
    Ok(())
}

/// Sends a record and waits until the connector has written them, so the
/// figures below are the data path's steady state, not its start; prints how
/// long that took after the install.
async fn warm_up(stack: &EfdStack, run: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut generator = RecordGenerator::new(&format!("{run}-warm"));
    // One record: the connector's own latency figures (its latest points) keep
    // just the one start-up point beside the 1,000 measured.
    let records = vec![generator.event(LATENCY_TOPIC)];
    stack.produce(&records).await?;
    wait_until(
        "the connector writing the warm-up record",
        Duration::from_secs(180),
        || async {
            let written = stack.connector_written().await.map_err(|e| e.to_string())?;
            if written >= records.len() as u64 {
                Ok(())
            } else {
                Err(format!("{written} of {} written", records.len()))
            }
        },
    )
    .await?;
    println!(
        "first records written {:.1} s after the install was ready",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Prints the resident and peak memory of the broker (`kafka.Kafka`) and
/// InfluxDB (`influxd`) processes, found among this machine's processes (the
/// embedded cluster runs pods as host processes).
fn server_memory(when: &str) {
    for server in memory_of(efd_server) {
        println!(
            "{} memory {when}: {} MiB resident, {} MiB peak",
            server.name, server.resident_mib, server.peak_mib
        );
    }
}

/// Prints how long each pod of `pods` took from its start to Ready (the
/// broker's includes formatting its storage in the init container).
async fn start_times(ns: &TestNamespace, pods: &[&str]) -> anyhow::Result<()> {
    for name in pods {
        let pod = ns.api::<Pod>().get(name).await?;
        let status = pod.status.unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready" && c.status == "True")
            .and_then(|c| c.last_transition_time);
        if let (Some(started), Some(ready)) = (status.start_time, ready) {
            let seconds = ready.0.duration_since(started.0).as_secs_f64();
            println!("pod {name}: Ready {seconds:.1} s after it started");
        }
    }
    Ok(())
}

/// Records produced one by one at a steady rate; a poller notes when each
/// becomes visible (the highest `private_seqNum` InfluxDB returns).
async fn latency(stack: &EfdStack, run: &str) -> anyhow::Result<()> {
    let mut generator = RecordGenerator::new(run);
    let records: Vec<EfdRecord> = (0..LATENCY_RECORDS)
        .map(|_| generator.event(LATENCY_TOPIC))
        .collect();
    // A time bound keeps each poll to the points of this run.
    let query = format!(
        "SELECT last(private_seqNum) FROM {} WHERE time >= {}",
        stack.influx.qualified(LATENCY_TOPIC),
        records[0].stamp_micros * 1000 // nanoseconds, as InfluxQL compares times
    );
    let produced_at: Vec<std::sync::Mutex<Option<Instant>>> = (0..LATENCY_RECORDS)
        .map(|_| std::sync::Mutex::new(None))
        .collect();
    let produced_at = Arc::new(produced_at);

    let producer = {
        let produced_at = produced_at.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / LATENCY_RATE));
            let mut acks = Vec::with_capacity(LATENCY_RECORDS);
            for (i, record) in records.iter().enumerate() {
                tick.tick().await;
                let at = Instant::now();
                if let Ok(mut slot) = produced_at[i].lock() {
                    *slot = Some(at);
                }
                stack
                    .kafka
                    .produce(LATENCY_TOPIC, None, &record.payload())
                    .await?;
                acks.push(at.elapsed());
            }
            anyhow::Ok(acks)
        }
    };
    // Several pollers at once: a record is seen by the first poll that completes
    // after it became visible, so more pollers mean a finer reading. Each poll's
    // answer is taken at the poll's completion (an upper bound).
    let visible_at = std::sync::Mutex::new(vec![None; LATENCY_RECORDS]);
    let poll_durations = std::sync::Mutex::new(Vec::new());
    let poll = || async {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let seen = visible_at
                .lock()
                .map(|v| v.iter().filter(|s| s.is_some()).count())
                .unwrap_or(0);
            if seen >= LATENCY_RECORDS || Instant::now() > deadline {
                return anyhow::Ok(());
            }
            let asked = Instant::now();
            let series = stack.influx.query(&query).await?;
            let now = Instant::now();
            if let Ok(mut d) = poll_durations.lock() {
                d.push(now - asked);
            }
            let last = series
                .first()
                .and_then(|s| s.values.first())
                .and_then(|row| row.get(1))
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            let last = usize::try_from(last).unwrap_or(0).min(LATENCY_RECORDS);
            if let Ok(mut v) = visible_at.lock() {
                for slot in v.iter_mut().take(last).filter(|s| s.is_none()) {
                    *slot = Some(now);
                }
            }
        }
    };
    let poller = async {
        let (a, b, c, d) = tokio::join!(poll(), poll(), poll(), poll());
        a.and(b).and(c).and(d)
    };
    let started = Instant::now();
    let (produced, polled) = tokio::join!(producer, poller);
    let mut acks = produced?;
    acks.sort();
    polled?;
    let visible_at = visible_at.into_inner().unwrap_or_default();
    let mut durations = poll_durations.into_inner().unwrap_or_default();
    durations.sort();
    let polls = durations.len();
    let mut latencies: Vec<Duration> = Vec::new();
    for (i, visible) in visible_at.iter().enumerate() {
        let produced = produced_at[i].lock().ok().and_then(|p| *p);
        if let (Some(p), Some(v)) = (produced, visible) {
            latencies.push(v.saturating_duration_since(p));
        }
    }
    latencies.sort();
    anyhow::ensure!(
        !latencies.is_empty(),
        "no record became visible in {LATENCY_TOPIC}"
    );
    let missing = LATENCY_RECORDS - latencies.len();
    let pct = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1000.0
    };
    println!(
        "produce -> broker acknowledged (through the relay): median {:.1} ms, p99 {:.1} ms",
        acks[acks.len() / 2].as_secs_f64() * 1000.0,
        acks[acks.len() * 99 / 100].as_secs_f64() * 1000.0
    );
    println!(
        "produce -> visible in InfluxDB: median {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} records at {LATENCY_RATE}/s ({missing} not seen; 4 pollers, {polls} polls, one completed every {:.1} ms, a poll takes {:.1} ms median)",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        latencies.len(),
        started.elapsed().as_secs_f64() * 1000.0 / polls.max(1) as f64,
        durations.get(durations.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
    // The same path timed without polling: the connector notes, for each point,
    // the time from its record's Kafka timestamp (set by the producer) to
    // InfluxDB's acknowledgement (one host clock for both).
    for (pod, metrics) in stack.connector_metrics().await? {
        let l = &metrics["latency_ms"];
        println!(
            "produce -> acknowledged by InfluxDB, as the connector {pod} measured it: median {} ms, p99 {} ms, max {} ms over {} records",
            l["p50"], l["p99"], l["max"], l["count"]
        );
    }
    Ok(())
}

/// Records produced as fast as the producer goes while the connector runs.
async fn sustained(stack: &EfdStack, run: &str) -> anyhow::Result<()> {
    let mut generator = RecordGenerator::new(run);
    let records: Vec<EfdRecord> = (0..SUSTAINED).map(|_| generator.scalars(TOPIC)).collect();
    let started = Instant::now();
    stack.produce(&records).await?;
    let produced = started.elapsed();
    stack
        .wait_for_points(
            TOPIC,
            &generator,
            SUSTAINED as u64,
            Duration::from_secs(600),
        )
        .await?;
    let total = started.elapsed();
    println!(
        "sustained: {SUSTAINED} records produced in {:.2} s ({:.0} msg/s), all visible after {:.2} s: {:.0} msg/s end to end",
        produced.as_secs_f64(),
        SUSTAINED as f64 / produced.as_secs_f64(),
        total.as_secs_f64(),
        SUSTAINED as f64 / total.as_secs_f64()
    );
    Ok(())
}

/// Connector paused, `burst` records produced, connector resumed: the drain rate
/// beside InfluxDB's own rate for the same points.
async fn burst_drain(
    stack: &EfdStack,
    ns: &TestNamespace,
    run: &str,
    shape: &Shape,
) -> anyhow::Result<()> {
    let burst = shape.burst;
    let mut generator = RecordGenerator::new(run);
    let records: Vec<EfdRecord> = (0..burst).map(|_| generator.scalars(BURST_TOPIC)).collect();
    let bytes: usize = records.iter().map(|r| r.payload().len()).sum();
    let fields = records[0].expected_fields().len();

    // InfluxDB alone, from inside the cluster as the connector writes: the same
    // points (mapped by the connector's code), batches of 500, one at a time.
    let (pod, _) = stack
        .connector_metrics()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no connector pod"))?;
    let answer = stack
        .deployment()
        .exec(
            &pod,
            &[
                "/efd-connector",
                "write-points",
                "--url=http://efd-influxdb:8086",
                "--database=efd",
                "--topic=bench.direct",
                &format!("--points={burst}"),
                "--batch=500",
                &records[0].value.to_string(),
            ],
        )
        .await?;
    let direct: serde_json::Value = serde_json::from_str(answer.trim())?;
    let direct_rate = direct["rate"].as_f64().unwrap_or(0.0);

    ns.scale::<Deployment>("efd-connector", 0).await?;
    testware::wait::wait_until("connector pods gone", Duration::from_secs(60), || async {
        let pods = stack.connector_metrics().await.map_err(|e| e.to_string())?;
        if pods.is_empty() {
            Ok(())
        } else {
            Err(format!("{} connector pods", pods.len()))
        }
    })
    .await?;
    let produce_started = Instant::now();
    stack.produce(&records).await?;
    let produced = produce_started.elapsed();

    let resumed = Instant::now();
    ns.scale::<Deployment>("efd-connector", shape.connectors as i32)
        .await?;
    rolled_out(
        ns.client(),
        ns.name(),
        WorkloadKind::Deployment,
        "efd-connector",
        Duration::from_secs(120),
    )
    .await?;
    let ready = resumed.elapsed();
    // Watched through the connector's own counter (points InfluxDB acknowledged):
    // counting 200k points in InfluxDB every few hundred ms would load the very
    // server being measured. The count is checked once at the end. The drain is
    // timed by the connector itself, so rare polls lose no precision and leave
    // the CPU (each poll is a port-forward through the API server) to the drain.
    testware::wait::wait_until_with(
        "the connector to write the burst",
        Duration::from_secs(900),
        testware::wait::Backoff {
            first: Duration::from_millis(500),
            max: Duration::from_millis(500),
        },
        || async {
            let written = stack.connector_written().await.map_err(|e| e.to_string())?;
            if written >= burst as u64 {
                Ok(())
            } else {
                Err(format!("{written} written"))
            }
        },
    )
    .await?;
    let drained = resumed.elapsed();
    stack
        .wait_for_points(
            BURST_TOPIC,
            &generator,
            burst as u64,
            Duration::from_secs(60),
        )
        .await?;
    // The drain window on the connector's clock: from its first batch of
    // records to InfluxDB's last acknowledgement (it starts consuming before
    // its readiness probe passes, so the pod's readiness does not mark it).
    let metrics = stack.connector_metrics().await?;
    let times = |key: &'static str| -> Vec<i64> {
        metrics
            .iter()
            .filter_map(|(_, m)| m[key].as_i64())
            .collect()
    };
    let first = times("first_consumed_ms").into_iter().min().unwrap_or(0);
    let last = times("last_written_ms").into_iter().max().unwrap_or(0);
    anyhow::ensure!(
        first > 0 && last > first,
        "the connector reported no drain window (first batch {first}, last write {last})"
    );
    let drain = Duration::from_millis((last - first) as u64);
    let drain_rate = burst as f64 / drain.as_secs_f64();
    println!(
        "burst: {burst} records of {:.0} bytes ({fields} fields) produced in {:.2} s ({:.0} msg/s)",
        bytes as f64 / burst as f64,
        produced.as_secs_f64(),
        burst as f64 / produced.as_secs_f64()
    );
    println!(
        "burst drain: all written {:.2} s after scale-up (seen by a 0.5 s poll; pod ready after {:.2} s); first batch -> last write {:.2} s: {drain_rate:.0} msg/s; InfluxDB direct (same points, batches of 500, from the connector pod): {} s, {direct_rate:.0} points/s; connector / direct = {:.2}",
        drained.as_secs_f64(),
        ready.as_secs_f64(),
        drain.as_secs_f64(),
        direct["seconds"],
        drain_rate / direct_rate
    );
    for (pod, metrics) in stack.connector_metrics().await? {
        println!(
            "connector {pod} after the burst: peak RSS {} KiB, batches {}, written {}",
            metrics["peak_rss_kib"], metrics["batches"], metrics["written"]
        );
    }
    Ok(())
}
