//! component cases for the EFD: the connector image between a real broker
//! (Apache Kafka, in KRaft mode) and a real InfluxDB, each a container of the
//! image the efd chart deploys, started as the chart starts them (the broker's
//! properties, its storage formatted first, its command line from the render),
//! started with `testcontainers` in a container engine (Docker, or podman's
//! Docker-compatible service) — no cluster. Records go in at the broker and must
//! come out of InfluxDB exactly once, also when the connector is restarted.
//! The broker and InfluxDB start as `suites::efd_containers` starts them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use suites::containers::{free_ports, log_tail, start};
use suites::efd_containers::{start_influxdb, start_kafka, CaseDir, ChartImages};
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};
use testware::{cases, check_eq, ChartSet, Ctx, Suite};
use testware_systems::efd::{EfdPath, EfdRecord, RecordGenerator};
use testware_systems::kafka::{Kafka, KafkaAccess};

const SCALARS: &str = "lsst.sal.Test.scalars";
const ARRAYS: &str = "lsst.sal.Test.arrays";
const EVENTS: &str = "lsst.sal.Test.logevent_heartbeat";
const DATABASE: &str = "efd";

fn main() -> std::process::ExitCode {
    Suite::new("efd_components")
        .charts(suites::charts_dir())
        .cases(cases![component(kafka):
            connector_carries_records_exactly_once_between_real_containers,
            connector_restarted_mid_stream_loses_and_duplicates_nothing,
        ])
        .run()
}

/// A broker, an InfluxDB and a connector between them, each in its container.
struct Containers {
    path: EfdPath,
    connector: Arc<ContainerAsync<GenericImage>>,
    _broker: ContainerAsync<GenericImage>,
    _influxdb: ContainerAsync<GenericImage>,
    /// Dropped last: the containers' mounts.
    _dir: CaseDir,
}

async fn start_path(ctx: &Ctx, charts: &ChartSet) -> anyhow::Result<Containers> {
    let images = ChartImages::of(charts).await?;
    let [kafka, controller, http, rpc, health] = free_ports::<5>()?;
    let dir = CaseDir::new(ctx)?;
    let broker = start_kafka(ctx, &images, &dir, (kafka, controller)).await?;
    let (influxdb, influx) = start_influxdb(ctx, &images, (http, rpc), DATABASE).await?;
    let connector = Arc::new(
        start(ctx, &images.connector, |r| {
            r.with_env_var("KAFKA_BROKERS", format!("127.0.0.1:{kafka}"))
                .with_env_var("KAFKA_GROUP_ID", "efd-connector")
                .with_env_var("KAFKA_TOPIC_REGEX", r"^lsst\.sal\..*")
                .with_env_var("INFLUXDB_URL", format!("http://127.0.0.1:{http}"))
                .with_env_var("INFLUXDB_DATABASE", DATABASE)
                .with_env_var("HEALTH_LISTEN", format!("127.0.0.1:{health}"))
        })
        .await?,
    );

    let bootstrap = SocketAddr::from(([127, 0, 0, 1], kafka));
    let kafka = Kafka::over(KafkaAccess::direct(bootstrap))?;
    // What the chart's topic Job does.
    for topic in [SCALARS, ARRAYS, EVENTS] {
        kafka.create_topic(topic, 1).await?;
    }
    let explained = connector.clone();
    let influx = influx.explain_with(move || {
        let connector = explained.clone();
        async move { format!("connector log: {}", log_tail(&connector).await) }
    });
    Ok(Containers {
        path: EfdPath { kafka, influx },
        connector,
        _broker: broker,
        _influxdb: influxdb,
        _dir: dir,
    })
}

async fn connector_carries_records_exactly_once_between_real_containers(
    ctx: Ctx,
    charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    let containers = start_path(&ctx, &charts).await?;
    let path = &containers.path;
    let mut generator = RecordGenerator::new(&ctx.config.run_id);
    let mut records: Vec<EfdRecord> = (0..300).map(|_| generator.scalars(SCALARS)).collect();
    records.extend((0..100).map(|_| generator.arrays(ARRAYS, 12)));
    records.extend((0..50).map(|_| generator.event(EVENTS)));
    path.produce(&records).await?;

    let timeout = ctx.deadline().cap(Duration::from_secs(90));
    path.expect_exactly_once(&generator, &records, timeout)
        .await?;
    check_eq!(
        path.influx.measurements().await?,
        vec![ARRAYS.to_owned(), EVENTS.to_owned(), SCALARS.to_owned()],
        "SHOW MEASUREMENTS"
    );
    Ok(())
}

async fn connector_restarted_mid_stream_loses_and_duplicates_nothing(
    ctx: Ctx,
    charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    let containers = start_path(&ctx, &charts).await?;
    let path = &containers.path;
    let mut generator = RecordGenerator::new(&ctx.config.run_id);
    let mut records = Vec::new();
    for round in 0..30 {
        if round == 10 {
            // Killed (SIGKILL, no time to finish a batch or commit), then started again.
            containers.connector.stop_with_timeout(Some(0)).await?;
            containers.connector.start().await?;
        }
        let batch: Vec<EfdRecord> = (0..20).map(|_| generator.scalars(SCALARS)).collect();
        path.produce(&batch).await?;
        records.extend(batch);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let timeout = ctx.deadline().cap(Duration::from_secs(120));
    path.expect_exactly_once(&generator, &records, timeout)
        .await
        .map_err(|e| e.context("after the connector was killed and started again"))
}
