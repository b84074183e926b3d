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
use testware::wait::wait_until;
use testware::{cases, check, check_eq, ChartSet, Ctx, RenderOptions, Suite};
use testware_systems::embargo::{get_metrics, EmbargoPath, Notifier};
use testware_systems::redis::Redis;

const BUCKET: &str = "component-embargo";
const SECRET: &str = "component-webhook-secret";
const PASSWORD: &str = "component-redis-password";
/// The reaper's limit: a worker list idle this long is requeued.
const IDLE_MAX: u64 = 2;
const PATIENCE: Duration = Duration::from_secs(60);

fn main() -> std::process::ExitCode {
    Suite::new("embargo_components")
        .charts(suites::charts_dir())
        .cases(cases![component(redis):
            notified_keys_are_ingested_once_between_real_containers,
            worker_killed_mid_batch_is_requeued_and_finished_by_the_other,
            failing_keys_are_retried_then_given_up_after_max_failures,
            flaky_keys_are_retried_until_ingested,
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

/// Starts the path; `worker_env` is added to each worker's environment
/// (`INGEST_SECONDS`, `FAIL_PATTERN`, `FAIL_RATE`, `MAX_FAILURES`…).
async fn start_path(
    ctx: &Ctx,
    charts: &ChartSet,
    worker_env: &[(&str, &str)],
) -> anyhow::Result<Containers> {
    let rendered = charts
        .render(
            "embargo-ingest",
            RenderOptions::default().values("ci/offline.yaml"),
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
            let mut r = client_env(r)
                .with_env_var("POD_NAME", name)
                .with_env_var("MAX_INGESTS", "10")
                .with_env_var("HEALTH_LISTEN", format!("127.0.0.1:{health}"));
            for (key, value) in worker_env {
                r = r.with_env_var(*key, *value);
            }
            r
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

impl Containers {
    /// The sum of counter `name` over the workers.
    async fn workers_counted(&self, name: &str) -> anyhow::Result<u64> {
        let mut sum = 0;
        for (worker, _, port) in &self.workers {
            sum += counter(*port, worker, name).await?;
        }
        Ok(sum)
    }
}

/// A component's counter `name`, read from its `/metrics` on `port`.
async fn counter(port: u16, who: &str, name: &str) -> anyhow::Result<u64> {
    let metrics = get_metrics(SocketAddr::from(([127, 0, 0, 1], port)), who).await?;
    Ok(metrics[name].as_u64().unwrap_or(0))
}

async fn notified_keys_are_ingested_once_between_real_containers(
    ctx: Ctx,
    charts: std::sync::Arc<ChartSet>,
) -> anyhow::Result<()> {
    let containers = start_path(&ctx, &charts, &[("INGEST_SECONDS", "0.01")]).await?;
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
    let containers = start_path(&ctx, &charts, &[("INGEST_SECONDS", "0.3")]).await?;
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
    let stranded: BTreeSet<String> = path.worker_list(&list).await?.into_iter().collect();
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

/// `n` keys named `raw/component/{kind}-{i}.fits`.
fn keys_of(kind: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("raw/component/{kind}-{i:03}.fits"))
        .collect()
}

/// Keys whose ingest always fails are tried `MAX_FAILURES` times, then given up
/// (in `FAILED`, never in `INGESTED`); the keys around them are ingested.
async fn failing_keys_are_retried_then_given_up_after_max_failures(
    ctx: Ctx,
    charts: std::sync::Arc<ChartSet>,
) -> anyhow::Result<()> {
    let containers = start_path(
        &ctx,
        &charts,
        &[
            ("INGEST_SECONDS", "0"),
            ("FAIL_PATTERN", "broken"),
            ("FAIL_RATE", "1"),
            ("MAX_FAILURES", "3"),
        ],
    )
    .await?;
    let path = &containers.path;
    let good = keys_of("good", 30);
    let broken = keys_of("broken", 5);
    let mut all = good.clone();
    all.extend(broken.iter().cloned());
    path.notifier.deliver_all(&all, 7, 2, PATIENCE).await?;

    let good_set: BTreeSet<String> = good.into_iter().collect();
    path.wait_for_ingested(&good_set, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    let broken_set: BTreeSet<String> = broken.into_iter().collect();
    let failed_key = format!("FAILED:{BUCKET}");
    let given_up = wait_until(
        "the broken keys to be given up",
        ctx.deadline().cap(Duration::from_secs(60)),
        || async {
            let failed: BTreeSet<String> =
                redis::AsyncCommands::smembers(&mut path.redis.connection(), &failed_key)
                    .await
                    .map_err(|e| format!("SMEMBERS {failed_key}: {e}"))?;
            if failed.len() >= broken_set.len() {
                Ok(failed)
            } else {
                Err(format!("FAILED holds {failed:?}"))
            }
        },
    )
    .await?;
    check_eq!(given_up, broken_set, "keys given up");
    let fails: std::collections::BTreeMap<String, u64> =
        redis::AsyncCommands::hgetall(&mut path.redis.connection(), format!("FAILS:{BUCKET}"))
            .await?;
    check!(
        broken_set.iter().all(|k| fails.get(k) == Some(&3)) && fails.len() == broken_set.len(),
        "each broken key should have failed exactly MAX_FAILURES = 3 times: {fails:?}"
    );
    check!(
        path.ingested().await?.is_disjoint(&broken_set),
        "a key given up must not be recorded as ingested"
    );
    check!(
        path.worker_lists()
            .await?
            .iter()
            .all(|(_, items)| items.is_empty()),
        "nothing should stay in the worker lists"
    );
    check_eq!(
        containers.workers_counted("given_up").await?,
        5,
        "given_up counted by the workers"
    );
    Ok(())
}

/// Keys that fail half of the time are retried (the worker list keeps them)
/// until they are ingested, each recorded once.
async fn flaky_keys_are_retried_until_ingested(
    ctx: Ctx,
    charts: std::sync::Arc<ChartSet>,
) -> anyhow::Result<()> {
    let containers = start_path(
        &ctx,
        &charts,
        &[
            ("INGEST_SECONDS", "0"),
            ("FAIL_PATTERN", "flaky"),
            ("FAIL_RATE", "0.5"),
            // 0.5^30: never given up in practice.
            ("MAX_FAILURES", "30"),
        ],
    )
    .await?;
    let path = &containers.path;
    let keys = keys_of("flaky", 40);
    path.notifier.deliver_all(&keys, 10, 2, PATIENCE).await?;
    let all: BTreeSet<String> = keys.into_iter().collect();
    path.wait_for_ingested(&all, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    let counts = path.ingest_counts().await?;
    check!(
        counts.values().all(|n| *n == 1),
        "each key's work should succeed once: {counts:?}"
    );
    let failed = containers.workers_counted("failed").await?;
    check!(
        failed >= 5,
        "about half of the 40 first attempts should have failed, counted {failed}"
    );
    Ok(())
}
