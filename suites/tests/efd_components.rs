//! component cases for the EFD: the connector image between a real broker
//! (Apache Kafka, in KRaft mode) and a real InfluxDB, each a container of the
//! image the efd chart deploys, started as the chart starts them (the broker's
//! properties, its storage formatted first, its command line from the render),
//! started with `testcontainers` in a container engine (Docker, or podman's
//! Docker-compatible service) — no cluster. Records go in at the broker and must
//! come out of InfluxDB exactly once, also when the connector is restarted.
//!
//! The containers share the host's network: each listens on loopback ports this
//! case picked, so the broker can advertise the address the test reaches it at.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;

use suites::containers::{chart_image, free_ports, log_tail, start};
use testcontainers::core::Mount;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};
use testware::wait::wait_until;
use testware::{cases, check_eq, ChartSet, Ctx, RenderOptions, Rendered, Suite};
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

/// The broker's workload in the render of release `test`.
const BROKER: &str = "test-efd-kafka";

/// The images the efd chart deploys (with the CI values), by component, and
/// the render itself (the broker's configuration and command lines).
struct ChartImages {
    broker: (String, String),
    influxdb: (String, String),
    connector: (String, String),
    rendered: Arc<Rendered>,
}

impl ChartImages {
    async fn of(charts: &ChartSet) -> anyhow::Result<Self> {
        let rendered = charts
            .render("efd", RenderOptions::default().values("ci/offline.yaml"))
            .await?;
        // The chart's workloads for release `test`.
        Ok(Self {
            broker: chart_image(&rendered, "StatefulSet", BROKER, "kafka")?,
            influxdb: chart_image(&rendered, "StatefulSet", "test-efd-influxdb", "influxdb")?,
            connector: chart_image(&rendered, "Deployment", "test-efd-connector", "connector")?,
            rendered,
        })
    }

    /// The args of the first broker pod's container `name` in the render, as
    /// Kubernetes expands them (`$(POD_INDEX)`: the pod's ordinal).
    fn broker_args(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let args = self
            .rendered
            .pod_template("StatefulSet", BROKER)?
            .container(name)
            .and_then(|c| c.args.clone())
            .ok_or_else(|| {
                anyhow::anyhow!("StatefulSet/{BROKER} has no container {name} with args")
            })?;
        Ok(args
            .into_iter()
            .map(|a| a.replace("$(POD_INDEX)", "0"))
            .collect())
    }
}

/// A directory of this case's, removed with it: the broker's configuration
/// (`config/`, the chart's ConfigMap) and its data (`data/`), mounted into
/// the containers as the chart mounts its volumes.
struct CaseDir(PathBuf);

impl CaseDir {
    fn new(ctx: &Ctx) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "testware-efd-{}-{}-{}",
            ctx.config.run_id,
            std::process::id(),
            testware::namespace::label_value(&ctx.case)
        ));
        std::fs::create_dir_all(dir.join("config"))?;
        std::fs::create_dir_all(dir.join("data"))?;
        // Written by the containers' user, whichever the engine maps it to.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join("data"), std::fs::Permissions::from_mode(0o777))?;
        Ok(Self(dir))
    }

    fn path(&self, part: &str) -> String {
        self.0.join(part).display().to_string()
    }
}

impl Drop for CaseDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Apache Kafka as the chart starts it: its storage formatted by a first
/// container (the chart's init container, run to its end), then the broker
/// and controller with the chart's command line, listening on `kafka` and
/// `controller` of this machine's loopback.
async fn start_kafka(
    ctx: &Ctx,
    images: &ChartImages,
    dir: &CaseDir,
    (kafka, controller): (u16, u16),
) -> anyhow::Result<ContainerAsync<GenericImage>> {
    let config = images
        .rendered
        .get::<ConfigMap>(BROKER)?
        .data
        .clone()
        .unwrap_or_default();
    for (file, text) in &config {
        std::fs::write(Path::new(&dir.path("config")).join(file), text)?;
    }
    let mounts = |r: testcontainers::core::ContainerRequest<GenericImage>| {
        r.with_mount(Mount::bind_mount(dir.path("config"), "/etc/kafka"))
            .with_mount(Mount::bind_mount(dir.path("data"), "/var/lib/kafka"))
            .with_mount(Mount::tmpfs_mount("/tmp"))
    };
    let format = start(ctx, &images.broker, |r| {
        mounts(r.with_cmd(images.broker_args("format-storage").unwrap_or_default()))
    })
    .await?;
    let exited = std::sync::Mutex::new(None);
    wait_until(
        "the broker's storage to be formatted",
        ctx.deadline().cap(Duration::from_secs(60)),
        || async {
            match format.exit_code().await.map_err(|e| e.to_string())? {
                Some(code) => {
                    *exited.lock().expect("not poisoned") = Some(code);
                    Ok(())
                }
                None => Err("still formatting".to_owned()),
            }
        },
    )
    .await?;
    let code = exited.lock().expect("not poisoned").unwrap_or(-1);
    anyhow::ensure!(
        code == 0,
        "formatting the broker's storage (the chart's init container) exited {code}: {}",
        log_tail(&format).await
    );
    // The chart's command up to its properties file; this machine's ports after it.
    let mut args = images.broker_args("kafka")?;
    let end = args
        .iter()
        .position(|a| a == "/etc/kafka/server-0.properties")
        .ok_or_else(|| {
            anyhow::anyhow!("the broker's args name no /etc/kafka/server-0.properties: {args:?}")
        })?;
    args.truncate(end + 1);
    for setting in [
        format!("listeners=PLAINTEXT://127.0.0.1:{kafka},CONTROLLER://127.0.0.1:{controller}"),
        format!("advertised.listeners=PLAINTEXT://127.0.0.1:{kafka}"),
        format!("controller.quorum.voters=0@127.0.0.1:{controller}"),
    ] {
        args.extend(["--override".to_owned(), setting]);
    }
    start(ctx, &images.broker, |r| mounts(r.with_cmd(args))).await
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
