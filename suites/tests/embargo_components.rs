//! component cases for the embargo ingest service: enqueue, two ingest workers
//! and the idle reaper against a real Redis, each a container of the image the
//! embargo-ingest chart deploys, started with `testcontainers` — no cluster.
//! Notified keys must be ingested once each, also when a worker is killed in
//! the middle of a batch and never comes back.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use suites::containers::{chart_image, free_ports, log_tail, start};
use testcontainers::core::Mount;
use testcontainers::{ContainerAsync, GenericImage, ImageExt as _};
use testware::embargo::{get_metrics, EmbargoPath, Notifier};
use testware::redis::Redis;
use testware::{cases, check, check_eq, ChartOptions, ChartSet, Ctx, Suite};

const BUCKET: &str = "component-embargo";
const SECRET: &str = "component-webhook-secret";
const PASSWORD: &str = "component-redis-password";
/// The reaper's limit: a worker list idle this long is requeued.
const IDLE_MAX: u64 = 2;
const PATIENCE: Duration = Duration::from_secs(60);

fn main() -> std::process::ExitCode {
    Suite::new("embargo_components")
        .charts(suites::CHARTS_DIR)
        .cases(cases![component(redis):
            notified_keys_are_ingested_once_between_real_containers,
            worker_killed_mid_batch_is_requeued_and_finished_by_the_other,
        ])
        .run()
}

/// A Redis, the webhook, two workers and the reaper, each in its container.
struct Containers {
    path: EmbargoPath,
    /// The workers by their worker name (`POD_NAME`), with their metrics port.
    workers: Vec<(String, ContainerAsync<GenericImage>, u16)>,
    idle: (ContainerAsync<GenericImage>, u16),
    _enqueue: ContainerAsync<GenericImage>,
    _redis: ContainerAsync<GenericImage>,
}

async fn start_path(
    ctx: &Ctx,
    charts: &ChartSet,
    ingest_seconds: &str,
) -> anyhow::Result<Containers> {
    let rendered = charts
        .render(
            "embargo-ingest",
            ChartOptions::default().values("ci/offline.yaml"),
        )
        .await?;
    // The chart's workloads for release `test`.
    let image = |kind: &str, component: &str| {
        chart_image(
            &rendered,
            kind,
            &format!("test-embargo-ingest-{component}"),
            component,
        )
    };
    let [redis_port, webhook, health_a, health_b, health_idle] = free_ports::<5>()?;
    let redis = start(ctx, &image("StatefulSet", "redis")?, |r| {
        r.with_cmd([
            "--bind".to_owned(),
            "127.0.0.1".to_owned(),
            "--port".to_owned(),
            redis_port.to_string(),
            "--dir".to_owned(),
            "/data".to_owned(),
            "--appendonly".to_owned(),
            "yes".to_owned(),
            "--requirepass".to_owned(),
            PASSWORD.to_owned(),
        ])
        .with_mount(Mount::tmpfs_mount("/data"))
    })
    .await?;
    let client_env = |r: testcontainers::core::ContainerRequest<GenericImage>| {
        r.with_env_var("REDIS_HOST", "127.0.0.1")
            .with_env_var("REDIS_PORT", redis_port.to_string())
            .with_env_var("REDIS_PASSWORD", PASSWORD)
            .with_env_var("BUCKET", BUCKET)
    };
    let enqueue = start(ctx, &image("Deployment", "enqueue")?, |r| {
        client_env(r)
            .with_env_var("LISTEN", format!("127.0.0.1:{webhook}"))
            .with_env_var("NOTIFICATION_SECRET", SECRET)
    })
    .await?;
    let mut workers = Vec::new();
    for (name, health) in [("worker-a", health_a), ("worker-b", health_b)] {
        let worker = start(ctx, &image("Deployment", "ingest")?, |r| {
            client_env(r)
                .with_env_var("POD_NAME", name)
                .with_env_var("INGEST_SECONDS", ingest_seconds)
                .with_env_var("MAX_INGESTS", "10")
                .with_env_var("HEALTH_LISTEN", format!("127.0.0.1:{health}"))
        })
        .await?;
        workers.push((name.to_owned(), worker, health));
    }
    let idle = start(ctx, &image("Deployment", "idle")?, |r| {
        client_env(r)
            .with_env_var("IDLE_MAX", IDLE_MAX.to_string())
            .with_env_var("HEALTH_LISTEN", format!("127.0.0.1:{health_idle}"))
    })
    .await?;
    let redis_client =
        Redis::direct(SocketAddr::from(([127, 0, 0, 1], redis_port)), PASSWORD).await?;
    Ok(Containers {
        path: EmbargoPath {
            notifier: Notifier::new(format!("http://127.0.0.1:{webhook}"), BUCKET, SECRET),
            redis: redis_client,
        },
        workers,
        idle: (idle, health_idle),
        _enqueue: enqueue,
        _redis: redis,
    })
}

/// A component's counter `name`, read from its `/metrics` on `port`.
async fn counter(port: u16, who: &str, name: &str) -> anyhow::Result<u64> {
    let metrics = get_metrics(
        &reqwest::Client::new(),
        &format!("http://127.0.0.1:{port}"),
        who,
    )
    .await?;
    Ok(metrics[name].as_u64().unwrap_or(0))
}

async fn notified_keys_are_ingested_once_between_real_containers(
    ctx: Ctx,
    charts: std::sync::Arc<ChartSet>,
) -> anyhow::Result<()> {
    let containers = start_path(&ctx, &charts, "0.01").await?;
    let path = &containers.path;
    let keys: Vec<String> = (0..100)
        .map(|i| format!("raw/component/AT O {i:04}.fits"))
        .collect();
    let mut notified = keys.clone();
    notified.push("raw/component/sidecar.json".to_owned());
    let accepted = path
        .notifier
        .deliver_all(&notified, 10, 4, PATIENCE)
        .await?;
    check_eq!(accepted, 100, "keys the webhook accepted");
    let wrong = path
        .notifier
        .notification_signed(&["raw/component/unsigned.fits"], "not-the-secret");
    let answer = path.notifier.post(&wrong).await?;
    check_eq!(
        answer.body["accepted"],
        0,
        "a wrongly signed record: {}",
        answer.body
    );

    let all: BTreeSet<String> = keys.iter().cloned().collect();
    path.wait_for_ingested(&all, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    check_eq!(path.ingested().await?, all, "INGESTED");
    let counts = path.ingest_counts().await?;
    check!(
        counts.values().all(|n| *n == 1),
        "each key's work should be done once: {counts:?}"
    );
    let mut total = 0;
    for (name, worker, port) in &containers.workers {
        match counter(*port, name, "ingested").await {
            Ok(n) => total += n,
            Err(e) => anyhow::bail!("{e:#}; worker log: {}", log_tail(worker).await),
        }
    }
    check_eq!(total, 100, "keys the two workers counted as ingested");
    Ok(())
}

async fn worker_killed_mid_batch_is_requeued_and_finished_by_the_other(
    ctx: Ctx,
    charts: std::sync::Arc<ChartSet>,
) -> anyhow::Result<()> {
    let containers = start_path(&ctx, &charts, "0.3").await?;
    let path = &containers.path;
    let keys: Vec<String> = (0..40)
        .map(|i| format!("raw/component/{i:04}.fits"))
        .collect();
    path.notifier.deliver_all(&keys, 10, 2, PATIENCE).await?;

    let (list, _) = path
        .wait_for_worker_holding(4, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    let name = list.rsplit(':').next().unwrap_or_default();
    let (_, victim, _) = containers
        .workers
        .iter()
        .find(|(n, _, _)| n == name)
        .ok_or_else(|| anyhow::anyhow!("{list} belongs to no worker container"))?;
    // SIGKILL: no chance to finish the batch; the container stays stopped.
    victim.stop_with_timeout(Some(0)).await?;
    let stranded: BTreeSet<String> = path
        .worker_lists()
        .await?
        .into_iter()
        .filter(|(l, _)| *l == list)
        .flat_map(|(_, items)| items)
        .collect();
    check!(
        !stranded.is_empty(),
        "{name} finished its batch before it was killed"
    );

    let all: BTreeSet<String> = keys.iter().cloned().collect();
    let bound =
        Duration::from_secs(2 * IDLE_MAX + 30) + Duration::from_secs_f64(keys.len() as f64 * 0.3);
    let took = path
        .wait_for_ingested(&all, ctx.deadline().cap(bound))
        .await
        .map_err(|e| {
            e.context(format!(
                "after {name} was killed holding {} keys",
                stranded.len()
            ))
        })?;
    println!(
        "{name} killed holding {} keys; all {} keys ingested {:.1} s later (IDLE_MAX {IDLE_MAX} s)",
        stranded.len(),
        keys.len(),
        took.as_secs_f64()
    );
    let counts = path.ingest_counts().await?;
    check!(
        counts.values().all(|n| *n == 1),
        "each key's work should be done once: {counts:?}"
    );
    let (idle, port) = &containers.idle;
    let requeued = counter(*port, "idle", "requeued").await?;
    check!(
        requeued >= 1,
        "the reaper should have requeued {list}; its log: {}",
        log_tail(idle).await
    );
    Ok(())
}
