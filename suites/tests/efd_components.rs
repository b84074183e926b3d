//! component cases for the EFD: the connector image between a real broker (tansu)
//! and a real InfluxDB, each a container of the image the efd chart deploys,
//! started with `testcontainers` in a container engine (Docker, or podman's
//! Docker-compatible service) — no cluster. Records go in at the broker and must
//! come out of InfluxDB exactly once, also when the connector is restarted.
//!
//! The containers share the host's network: each listens on loopback ports this
//! case picked, so the broker can advertise the address the test reaches it at.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use suites::containers::{chart_image, free_ports, log_tail, start};
use testcontainers::core::Mount;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};
use testware::wait::wait_until;
use testware::{cases, check_eq, ChartSet, Ctx, RenderOptions, Suite};
use testware_systems::efd::{EfdPath, EfdRecord, RecordGenerator};
use testware_systems::influx::Influx;
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

/// The images the efd chart deploys (with the CI values), by component.
struct ChartImages {
    broker: (String, String),
    influxdb: (String, String),
    connector: (String, String),
}

impl ChartImages {
    async fn of(charts: &ChartSet) -> anyhow::Result<Self> {
        let rendered = charts
            .render("efd", RenderOptions::default().values("ci/offline.yaml"))
            .await?;
        // The chart's workloads for release `test`.
        Ok(Self {
            broker: chart_image(&rendered, "StatefulSet", "test-efd-kafka", "kafka")?,
            influxdb: chart_image(&rendered, "StatefulSet", "test-efd-influxdb", "influxdb")?,
            connector: chart_image(&rendered, "StatefulSet", "test-efd-connector", "connector")?,
        })
    }
}

/// A broker, an InfluxDB and a connector between them, each in its container.
struct Containers {
    path: EfdPath,
    connector: Arc<ContainerAsync<GenericImage>>,
    _broker: ContainerAsync<GenericImage>,
    _influxdb: ContainerAsync<GenericImage>,
}

async fn start_path(ctx: &Ctx, charts: &ChartSet) -> anyhow::Result<Containers> {
    let images = ChartImages::of(charts).await?;
    let [kafka, http, rpc, health] = free_ports::<4>()?;
    let broker = start(ctx, &images.broker, |r| {
        r.with_cmd([
            "broker".to_owned(),
            "--kafka-cluster-id=component".to_owned(),
            format!("--kafka-listener-url=tcp://127.0.0.1:{kafka}"),
            format!("--kafka-advertised-listener-url=tcp://127.0.0.1:{kafka}"),
            "--storage-engine=sqlite:///var/lib/kafka/tansu.db".to_owned(),
        ])
        .with_mount(Mount::tmpfs_mount("/var/lib/kafka"))
    })
    .await?;
    let influxdb = start(ctx, &images.influxdb, |r| {
        r.with_env_var("INFLUXDB_HTTP_BIND_ADDRESS", format!("127.0.0.1:{http}"))
            .with_env_var("INFLUXDB_BIND_ADDRESS", format!("127.0.0.1:{rpc}"))
            .with_env_var("INFLUXDB_META_DIR", "/var/lib/influxdb/meta")
            .with_env_var("INFLUXDB_DATA_DIR", "/var/lib/influxdb/data")
            .with_env_var("INFLUXDB_DATA_WAL_DIR", "/var/lib/influxdb/wal")
            .with_env_var("INFLUXDB_REPORTING_DISABLED", "true")
            .with_env_var("INFLUXDB_DB", DATABASE)
            .with_mount(Mount::tmpfs_mount("/var/lib/influxdb"))
    })
    .await?;
    let connector = Arc::new(
        start(ctx, &images.connector, |r| {
            r.with_env_var("KAFKA_BROKERS", format!("127.0.0.1:{kafka}"))
                .with_env_var("KAFKA_GROUP_ID", "efd-connector")
                .with_env_var("KAFKA_TOPIC_REGEX", r"^lsst\.sal\..*")
                .with_env_var("INFLUXDB_URL", format!("http://127.0.0.1:{http}"))
                .with_env_var("INFLUXDB_DATABASE", DATABASE)
                .with_env_var("HEALTH_LISTEN", format!("127.0.0.1:{health}"))
                .with_env_var("REPLICA_ORDINAL", "0")
                .with_env_var("CONNECTOR_REPLICAS", "1")
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
    let influx =
        Influx::new(format!("http://127.0.0.1:{http}"), DATABASE).explain_with(move || {
            let connector = explained.clone();
            async move { format!("connector log: {}", log_tail(&connector).await) }
        });
    // The database exists once the image's entrypoint has created it.
    let timeout = ctx.deadline().cap(Duration::from_secs(60));
    wait_until(
        format!("InfluxDB at {} to hold database {DATABASE}", influx.url()),
        timeout,
        || async {
            let names: Vec<String> = influx
                .query("SHOW DATABASES")
                .await
                .map_err(|e| format!("{e:#}"))?
                .iter()
                .flat_map(|s| s.values.iter())
                .filter_map(|row| row.first()?.as_str().map(str::to_owned))
                .collect();
            if names.iter().any(|n| n == DATABASE) {
                Ok(())
            } else {
                Err(format!("databases {names:?}"))
            }
        },
    )
    .await?;
    Ok(Containers {
        path: EfdPath { kafka, influx },
        connector,
        _broker: broker,
        _influxdb: influxdb,
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
