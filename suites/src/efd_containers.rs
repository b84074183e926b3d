//! The efd chart's broker and InfluxDB as containers of the images the chart
//! deploys, started as the chart starts them (the broker's properties from
//! its render, its storage formatted first): what the component tier's EFD
//! cases and the system helpers' own cases run against, no cluster.
//!
//! The containers share the host's network: each listens on loopback ports
//! the case picked, so the broker can advertise the address the test reaches
//! it at.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use testcontainers::core::Mount;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};
use testware::wait::wait_until;
use testware::{ChartSet, Ctx, RenderOptions, Rendered};
use testware_systems::influx::Influx;

use crate::containers::{chart_image, log_tail, start};

/// The broker's workload in the render of release `test`.
const BROKER: &str = "test-efd-kafka";

/// The images the efd chart deploys (with the CI values), by component, and
/// the render itself (the broker's configuration and command lines).
pub struct ChartImages {
    /// (repository, tag) of each component's image.
    pub broker: (String, String),
    pub influxdb: (String, String),
    pub connector: (String, String),
    rendered: Arc<Rendered>,
}

impl ChartImages {
    /// The images of the chart's render with `ci/offline.yaml`.
    ///
    /// # Errors
    /// The chart does not render, or a workload is missing.
    pub async fn of(charts: &ChartSet) -> anyhow::Result<Self> {
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
pub struct CaseDir(PathBuf);

impl CaseDir {
    /// A new directory named after the run and the case.
    ///
    /// # Errors
    /// It cannot be created.
    pub fn new(ctx: &Ctx) -> anyhow::Result<Self> {
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
///
/// # Errors
/// A container does not start, or formatting fails (its log is in the error).
pub async fn start_kafka(
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

/// InfluxDB as the chart runs it, serving HTTP on `http` (and its RPC on
/// `rpc`) of this machine's loopback, with `database` created; returns the
/// container and a client of `database` once the database exists.
///
/// # Errors
/// The container does not start, or the database is not there within 60 s.
pub async fn start_influxdb(
    ctx: &Ctx,
    images: &ChartImages,
    (http, rpc): (u16, u16),
    database: &str,
) -> anyhow::Result<(ContainerAsync<GenericImage>, Influx)> {
    let influxdb = start(ctx, &images.influxdb, |r| {
        r.with_env_var("INFLUXDB_HTTP_BIND_ADDRESS", format!("127.0.0.1:{http}"))
            .with_env_var("INFLUXDB_BIND_ADDRESS", format!("127.0.0.1:{rpc}"))
            .with_env_var("INFLUXDB_META_DIR", "/var/lib/influxdb/meta")
            .with_env_var("INFLUXDB_DATA_DIR", "/var/lib/influxdb/data")
            .with_env_var("INFLUXDB_DATA_WAL_DIR", "/var/lib/influxdb/wal")
            .with_env_var("INFLUXDB_REPORTING_DISABLED", "true")
            .with_env_var("INFLUXDB_DB", database)
            .with_mount(Mount::tmpfs_mount("/var/lib/influxdb"))
    })
    .await?;
    let influx = Influx::new(format!("http://127.0.0.1:{http}"), database);
    // The database exists once the image's entrypoint has created it.
    let timeout = ctx.deadline().cap(Duration::from_secs(60));
    wait_until(
        format!("InfluxDB at {} to hold database {database}", influx.url()),
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
            if names.iter().any(|n| n == database) {
                Ok(())
            } else {
                Err(format!("databases {names:?}"))
            }
        },
    )
    .await?;
    Ok((influxdb, influx))
}
