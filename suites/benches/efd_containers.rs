//! The EFD's servers as containers (the component tier's way of running them):
//! how long Apache Kafka (storage formatted, then the broker answering a
//! metadata request) and InfluxDB (answering with its database created) take
//! to start, and their resident memory once up — the container engine's
//! processes on this machine (podman runs them as host processes).
//!
//! Run with `DOCKER_HOST="$(ci/container-engine up)" cargo bench -p suites
//! --bench efd_containers` (`EFD_CONTAINER_ROUNDS=N`, default 3). Figures are
//! printed, never asserted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use suites::containers::free_ports;
use suites::efd_containers::{start_influxdb, start_kafka, CaseDir, ChartImages};
use suites::processes::{efd_server, memory_of};
use testware::{ChartSet, Ctx, RunConfig};
use testware_systems::kafka::{Kafka, KafkaAccess};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::var("EFD_CONTAINER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (config, _) = RunConfig::parse(["bench".to_owned()], |key| std::env::var(key).ok())?;
    let ctx = Ctx::detached(
        Arc::new(config),
        "bench-efd-containers",
        Duration::from_secs(600),
    );
    let images = ChartImages::of(&ChartSet::new(suites::charts_dir())).await?;
    for round in 1..=rounds {
        let dir = CaseDir::new(&ctx)?;
        let [kafka, controller, http, rpc] = free_ports::<4>()?;
        let started = Instant::now();
        let broker = start_kafka(&ctx, &images, &dir, (kafka, controller)).await?;
        let client = Kafka::over(KafkaAccess::direct(SocketAddr::from((
            [127, 0, 0, 1],
            kafka,
        ))))?;
        client.create_topic("bench.start", 1).await?;
        let kafka_up = started.elapsed();
        let started = Instant::now();
        let influxdb = start_influxdb(&ctx, &images, (http, rpc), "efd").await?;
        let influx_up = started.elapsed();
        println!(
            "round {round}: Apache Kafka container formatted and answering in {:.1} s, InfluxDB with its database in {:.1} s",
            kafka_up.as_secs_f64(),
            influx_up.as_secs_f64()
        );
        print_memory(round);
        drop(influxdb);
        drop(broker);
        drop(dir);
    }
    Ok(())
}

/// The resident memory of the broker and InfluxDB processes on this machine.
fn print_memory(round: usize) {
    for server in memory_of(efd_server) {
        println!(
            "round {round}: {} container: {} MiB resident after its start",
            server.name, server.resident_mib
        );
    }
}
