//! full_stack cases for the embargo ingest service: object-store notifications
//! posted from the test process to the enqueue webhook must end with every
//! accepted key ingested once — with keys that need decoding, duplicates and
//! keys the dataset rejects, with bad notifications in between, and while an
//! ingest pod is killed mid-batch, Redis restarts or the workers are scaled up.
//! An upgrade from the chart as last committed (read from git) to the working
//! tree's, with values changed across it, keeps the password and the data.
//! Each case installs the embargo-ingest chart into its own namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Pod, Secret};
use redis::AsyncCommands as _;
use testware::namespace::TestNamespace;
use testware::status::State;
use testware::wait::{wait_until, watch_until};
use testware::{cases, check, check_eq, Ctx, Install, Suite, Upgrade, Values};
use testware_systems::embargo::{image_keys, EmbargoStack};
use tokio::sync::watch;

/// The release name; the chart's objects are named `embargo-ingest-<component>`.
const RELEASE: &str = "embargo-ingest";
/// How long a notification is resent while the webhook answers 5xx.
const PATIENCE: Duration = Duration::from_secs(60);
/// The CI values' `idle.idleMax`: a dead worker's list is requeued within two of these.
const IDLE_MAX: Duration = Duration::from_secs(5);
/// Longer than the components' liveness window (3 failed probes, 10 s apart): a
/// liveness probe that asks Redis would have their pods restarted by then.
const REDIS_OUTAGE: Duration = Duration::from_secs(40);

fn main() -> std::process::ExitCode {
    Suite::new("embargo_stack")
        .charts(suites::charts_dir())
        .cases(cases![chart_deploy(full_stack, redis):
            notified_keys_are_ingested_once,
            bad_notifications_are_refused_or_skipped_and_nothing_is_half_written,
            ingest_pod_killed_mid_batch_loses_nothing,
            redis_down_for_longer_than_the_liveness_window_keeps_queued_and_in_flight_keys,
            ingest_scaled_from_one_to_four_during_a_burst_ingests_each_key_once,
            upgrade_from_the_committed_chart_keeps_the_password_and_the_ingested_keys,
        ])
        .run()
}

/// Installs the chart (CI values plus `sets`) and reaches it from the test.
async fn install(
    ctx: &Ctx,
    ns: &TestNamespace,
    sets: &[(&str, &str)],
) -> anyhow::Result<Arc<EmbargoStack>> {
    let mut values = Values::default().file("ci/offline.yaml");
    for (key, value) in sets {
        values = values.set(*key, *value);
    }
    let deployment = ctx
        .charts()?
        .install("embargo-ingest")
        .release(RELEASE)
        .with_values(values)
        .run(ctx, ns)
        .await?;
    Ok(Arc::new(EmbargoStack::connect(&deployment).await?))
}

async fn notified_keys_are_ingested_once(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(&ctx, &ns, &[]).await?;
    let notifier = stack.notifier();
    let mut accepted = image_keys(&ctx.config.run_id, "plain", 40);
    // Keys an object store sends encoded: spaces as `+`, the rest as %XX.
    accepted.extend(
        [
            "raw/with space/a b.fits",
            "raw/comma,plus+/x.fits",
            "raw/ünïcödé/ß.fits",
            "raw/percent%20literal.fits",
            "raw/amp&eq=/q?.fits",
        ]
        .map(str::to_owned),
    );
    let rejected = ["raw/x/sidecar.json", "raw/x/AT_O_1.fits.tmp"].map(str::to_owned);
    let mut all = accepted.clone();
    all.extend(rejected.iter().cloned());
    let n = notifier.deliver_all(&all, 5, 4, PATIENCE).await?;
    check_eq!(n, accepted.len() as u64, "keys the webhook accepted");

    let expected: BTreeSet<String> = accepted.iter().cloned().collect();
    let took = stack
        .wait_for_ingested(&expected, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    println!(
        "{} keys ingested in {:.2} s",
        expected.len(),
        took.as_secs_f64()
    );
    check_eq!(stack.ingested().await?, expected, "INGESTED");

    let mut redis = stack.redis.connection();
    let ingest_pods: BTreeSet<String> = stack
        .metrics("ingest")
        .await?
        .into_iter()
        .map(|(pod, _)| pod)
        .collect();
    for key in &accepted {
        let file: BTreeMap<String, String> = redis.hgetall(format!("FILE:{key}")).await?;
        let time = |field: &str| -> anyhow::Result<f64> {
            file.get(field)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("FILE:{key} lacks a numeric {field}: {file:?}"))
        };
        check!(
            time("ingest_time")? >= time("recv_time")?,
            "FILE:{key} ingested before it was received: {file:?}"
        );
        check!(
            file.get("ingested_by")
                .is_some_and(|p| ingest_pods.contains(p)),
            "FILE:{key} ingested_by should name an ingest pod of {ingest_pods:?}: {file:?}"
        );
        let ttl: i64 = redis.ttl(format!("FILE:{key}")).await?;
        check!(
            (7 * 24 * 3600 - 600..=7 * 24 * 3600).contains(&ttl),
            "FILE:{key} should expire in 7 days, TTL is {ttl} s"
        );
    }
    // Notified again after their ingest (object stores deliver at least once):
    // queued again, and not ingested a second time.
    let again: Vec<String> = accepted.iter().take(5).cloned().collect();
    notifier.deliver_all(&again, 5, 1, PATIENCE).await?;
    wait_until(
        "the workers to see the 5 keys notified again",
        ctx.deadline().cap(Duration::from_secs(30)),
        || async {
            let seen = stack
                .counter("ingest", "already_ingested")
                .await
                .map_err(|e| format!("{e:#}"))?;
            if seen >= 5 {
                Ok(())
            } else {
                Err(format!("already_ingested = {seen}"))
            }
        },
    )
    .await?;
    stack.check_ingested_once(&expected).await?;

    let bucket = stack.bucket();
    let day_counts = stack.redis.keys(&format!("COUNT:{bucket}:*")).await?;
    let mut counted = 0u64;
    for key in &day_counts {
        let n: u64 = redis.get(key).await?;
        counted += n;
    }
    check_eq!(
        counted,
        (accepted.len() + again.len()) as u64,
        "accepted notifications counted per day ({day_counts:?})"
    );
    check_eq!(
        stack.counter("enqueue", "skipped_regexp").await?,
        rejected.len() as u64,
        "keys skipped by the dataset regexp"
    );
    Ok(())
}

async fn bad_notifications_are_refused_or_skipped_and_nothing_is_half_written(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(&ctx, &ns, &[]).await?;
    let notifier = stack.notifier();

    let wrong = notifier.notification_signed(&["raw/x/signed-wrong.fits"], "not-the-secret");
    let answer = notifier.post(&wrong).await?;
    check_eq!(
        answer.status,
        200,
        "a wrongly signed record: {}",
        answer.body
    );
    check_eq!(answer.body["accepted"], 0, "accepted: {}", answer.body);
    check!(
        answer.body["skipped"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("opaqueData")),
        "the answer should say why the record was skipped: {}",
        answer.body
    );

    // A valid record first, then one whose key is not a string: the whole
    // notification is refused, so the valid record must not be queued either.
    let mut half = notifier.notification(&["raw/x/half.fits"]).to_json();
    let mut bad_record = half["Records"][0].clone();
    bad_record["s3"]["object"]["key"] = serde_json::json!(42);
    half["Records"]
        .as_array_mut()
        .ok_or_else(|| anyhow::anyhow!("Records is not an array"))?
        .push(bad_record);
    let refused = [
        (
            reqwest::Method::POST,
            "/notify",
            "this is not JSON".to_owned(),
            400,
            "not an object-store notification",
        ),
        (
            reqwest::Method::POST,
            "/notify",
            half.to_string(),
            400,
            "invalid type",
        ),
        (
            reqwest::Method::GET,
            "/notify",
            String::new(),
            405,
            "use POST",
        ),
        (
            reqwest::Method::POST,
            "/webhook",
            half.to_string(),
            404,
            "POST /notify",
        ),
    ];
    for (method, path, body, status, reason) in refused {
        let answer = notifier.send(method.clone(), path, body).await?;
        check_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        check!(
            answer.body["error"]
                .as_str()
                .is_some_and(|e| e.contains(reason)),
            "{method} {path}: the answer should give the reason ({reason:?}): {}",
            answer.body
        );
    }

    let bucket = stack.bucket();
    let written: Vec<String> = [
        format!("QUEUE:{bucket}"),
        "FILE:*".to_owned(),
        format!("COUNT:{bucket}:*"),
        format!("INGESTED:{bucket}"),
    ]
    .iter()
    .map(|pattern| stack.redis.keys(pattern))
    .collect::<futures::future::TryJoinAll<_>>()
    .await?
    .concat();
    check!(
        written.is_empty(),
        "nothing should be written for refused or skipped notifications, found {written:?}"
    );
    check_eq!(
        stack.counter("enqueue", "skipped_secret").await?,
        1,
        "skipped_secret"
    );
    check_eq!(stack.counter("enqueue", "refused").await?, 4, "refused");

    // The webhook still works after all that.
    let good = BTreeSet::from(["raw/x/good.fits".to_owned()]);
    let good_keys: Vec<String> = good.iter().cloned().collect();
    notifier.deliver_all(&good_keys, 1, 1, PATIENCE).await?;
    stack
        .wait_for_ingested(&good, ctx.deadline().cap(Duration::from_secs(30)))
        .await?;
    Ok(())
}

/// The ingest pods of the release, live ones only.
async fn live_ingest_pods(ns: &TestNamespace) -> anyhow::Result<Vec<Pod>> {
    let pods = ns
        .api::<Pod>()
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/component=ingest"))
        .await?;
    Ok(pods
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

/// Kills an ingest pod (grace 0) while its worker list holds part of a batch:
/// the idle reaper must requeue that list once it has been idle for
/// `idleMax`, and another worker must finish it. With the reaper scaled to 0
/// this case fails, naming the keys stuck in the dead pod's list.
async fn ingest_pod_killed_mid_batch_loses_nothing(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    // Half a second per key and batches of 10: a batch takes 5 s, long enough
    // to be caught in the middle.
    let stack = install(
        &ctx,
        &ns,
        &[("ingest.ingestSeconds", "0.5"), ("ingest.maxIngests", "10")],
    )
    .await?;
    let keys = image_keys(&ctx.config.run_id, "kill", 60);
    stack.notifier().deliver_all(&keys, 10, 2, PATIENCE).await?;
    let all: BTreeSet<String> = keys.iter().cloned().collect();

    // A worker list with at least 5 keys still to do.
    let killed_worker = stack
        .kill_worker_holding(5, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    let killed = Instant::now();
    let (pod, list, stranded) = (
        killed_worker.pod,
        killed_worker.list,
        killed_worker.stranded,
    );
    println!("killed {pod} holding {} keys in {list}", stranded.len());
    check!(
        !stranded.is_empty(),
        "the kill came after {pod} had finished its batch: nothing to recover"
    );

    // Requeued within two reaper periods; then behind what is queued, at 0.5 s a key.
    let bound =
        2 * IDLE_MAX + Duration::from_secs_f64(keys.len() as f64 * 0.5) + Duration::from_secs(30);
    let stranded_set: BTreeSet<String> = stranded.iter().cloned().collect();
    stack
        .wait_for_ingested(&stranded_set, ctx.deadline().cap(bound))
        .await
        .map_err(|e| e.context(format!("after {pod} was killed holding {list}")))?;
    let recovery = killed.elapsed();
    stack
        .wait_for_ingested(&all, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    println!(
        "the {} stranded keys were ingested {:.1} s after the kill (idleMax {} s, bound {} s)",
        stranded.len(),
        recovery.as_secs_f64(),
        IDLE_MAX.as_secs(),
        bound.as_secs()
    );
    stack.check_ingested_once(&all).await?;
    check!(
        stack.counter("idle", "requeued").await? >= 1,
        "the idle reaper should have requeued the dead worker's keys"
    );
    let mut redis = stack.redis.connection();
    for key in &stranded {
        let by: Option<String> = redis.hget(format!("FILE:{key}"), "ingested_by").await?;
        check!(
            by.as_deref().is_some_and(|b| b != pod),
            "{key} stranded in {list} should be ingested by another worker, was by {by:?}"
        );
    }
    check!(
        stack.worker_list(&list).await?.is_empty(),
        "{list} should be empty"
    );
    Ok(())
}

/// Notifications delivered in the background (5 keys every 100 ms, resent while
/// the webhook answers 5xx) until stopped.
struct Stream {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<Vec<String>>>,
}

impl Stream {
    fn start(stack: &Arc<EmbargoStack>, run: &str) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let stack = stack.clone();
        let run = run.to_owned();
        let task = tokio::spawn(async move {
            let mut delivered = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for batch in 0.. {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let keys: Vec<String> = (0..5)
                    .map(|i| format!("raw/{run}/stream/{batch:05}-{i}.fits"))
                    .collect();
                let notification = stack.notifier().notification(&keys);
                // Resent through a whole Redis outage and the restart after it.
                stack
                    .notifier()
                    .deliver(&notification, REDIS_OUTAGE + PATIENCE)
                    .await?;
                delivered.extend(keys);
            }
            Ok(delivered)
        });
        Self { stop, task }
    }

    /// Stops; returns every key the webhook accepted.
    async fn finish(self) -> anyhow::Result<Vec<String>> {
        let _ = self.stop.send(true);
        self.task.await?
    }
}

async fn redis_down_for_longer_than_the_liveness_window_keeps_queued_and_in_flight_keys(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    // 50 keys/s notified, 20 keys/s ingested (2 workers, 0.1 s a key): a queue builds up.
    let stack = install(&ctx, &ns, &[("ingest.ingestSeconds", "0.1")]).await?;
    let stream = Stream::start(&stack, &ctx.config.run_id);
    tokio::time::sleep(Duration::from_secs(3)).await;

    let redis_pod = format!("{RELEASE}-redis-0");
    let before = ns.api::<Pod>().get(&redis_pod).await?;
    let mut pending: BTreeSet<String> = stack
        .worker_lists()
        .await?
        .into_iter()
        .flat_map(|(_, items)| items)
        .collect();
    let in_flight = pending.len();
    let queue: Vec<String> = stack
        .redis
        .connection()
        .lrange(format!("QUEUE:{}", stack.bucket()), 0, -1)
        .await?;
    pending.extend(queue.iter().cloned());
    check!(
        !queue.is_empty() && in_flight > 0,
        "Redis should hold queued ({}) and in-flight ({in_flight}) keys when it restarts",
        queue.len()
    );
    // Down: SIGTERM, Redis flushes its append-only file and exits; the
    // StatefulSet at 0 keeps it down for the whole outage.
    let statefulset = format!("{RELEASE}-redis");
    let down = Instant::now();
    ns.scale::<StatefulSet>(&statefulset, 0).await?;
    println!(
        "stopping {redis_pod} for {} s with {} queued and {in_flight} in-flight keys",
        REDIS_OUTAGE.as_secs(),
        queue.len()
    );
    watch_until(
        &ns.api::<Pod>(),
        &redis_pod,
        format!("{redis_pod} to be gone"),
        ctx.deadline().cap(Duration::from_secs(60)),
        |pod| match pod {
            None => State::Done,
            Some(_) => State::Pending("still there (terminating)".to_owned()),
        },
        || async { String::new() },
    )
    .await?;
    tokio::time::sleep(REDIS_OUTAGE.saturating_sub(down.elapsed())).await;
    ns.scale::<StatefulSet>(&statefulset, 1).await?;
    wait_until(
        "Redis to be back (a new pod answering)",
        ctx.deadline().cap(Duration::from_secs(90)),
        || async {
            let now = ns
                .api::<Pod>()
                .get(&redis_pod)
                .await
                .map_err(|e| e.to_string())?;
            if now.metadata.uid == before.metadata.uid {
                return Err("the old pod is still there".to_owned());
            }
            let mut redis = stack.redis.connection();
            redis::cmd("PING")
                .query_async::<String>(&mut redis)
                .await
                .map_err(|e| format!("PING: {e}"))
        },
    )
    .await?;
    println!(
        "Redis answered again {:.1} s after it was stopped",
        down.elapsed().as_secs_f64()
    );
    let located = stack.locate(&pending).await?;
    let lost: Vec<&String> = located
        .iter()
        .filter(|(_, place)| **place == testware_systems::embargo::Location::Nowhere)
        .map(|(key, _)| key)
        .collect();
    check!(
        lost.is_empty(),
        "keys queued or in flight before the restart are gone after it: {lost:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let delivered = stream.finish().await?;
    let all: BTreeSet<String> = delivered.into_iter().collect();
    let took = stack
        .wait_for_ingested(&all, ctx.deadline().cap(Duration::from_secs(120)))
        .await?;
    println!(
        "{} keys accepted, all ingested {:.1} s after the stream ended",
        all.len(),
        took.as_secs_f64()
    );
    let counts = stack.ingest_counts().await?;
    let twice = counts.values().filter(|n| **n > 1).count();
    println!("{twice} keys ingested more than once (allowed: at-least-once)");
    // The components reconnected by themselves: none of their pods restarted
    // (their liveness probes do not ask Redis).
    let mut restarted = Vec::new();
    for pod in ns.api::<Pod>().list(&Default::default()).await?.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if name.starts_with(&redis_pod) {
            continue;
        }
        for container in pod
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
            .filter(|c| c.restart_count > 0)
        {
            let last = container
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| {
                    format!(
                        "{} with exit code {}",
                        t.reason.as_deref().unwrap_or("terminated"),
                        t.exit_code
                    )
                })
                .unwrap_or_else(|| "unknown".to_owned());
            restarted.push(format!(
                "{name}/{}: {} restart(s), last ended {last}",
                container.name, container.restart_count
            ));
        }
    }
    check!(
        restarted.is_empty(),
        "components restarted while Redis was down; they should reconnect by themselves \
         (a liveness probe that asks Redis restarts them: see the Unhealthy events): {restarted:?}"
    );
    Ok(())
}

async fn ingest_scaled_from_one_to_four_during_a_burst_ingests_each_key_once(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(&ctx, &ns, &[("ingest.replicas", "1")]).await?;
    let keys = image_keys(&ctx.config.run_id, "burst", 300);
    stack.notifier().deliver_all(&keys, 10, 4, PATIENCE).await?;
    let started = Instant::now();
    ns.scale::<Deployment>(&format!("{RELEASE}-ingest"), 4)
        .await?;
    let all: BTreeSet<String> = keys.iter().cloned().collect();
    stack
        .wait_for_ingested(&all, ctx.deadline().cap(Duration::from_secs(120)))
        .await?;
    println!(
        "300 keys ingested {:.1} s after scaling 1 -> 4 workers",
        started.elapsed().as_secs_f64()
    );
    stack.check_ingested_once(&all).await?;
    let mut redis = stack.redis.connection();
    let mut workers = BTreeSet::new();
    for key in &keys {
        let by: Option<String> = redis.hget(format!("FILE:{key}"), "ingested_by").await?;
        workers.extend(by);
    }
    let live = live_ingest_pods(&ns).await?.len();
    check_eq!(live, 4, "ingest pods after scaling");
    check!(
        workers.len() >= 2,
        "the new workers should share the burst; ingested by {workers:?}"
    );
    Ok(())
}

/// The ref the upgrade case starts from: the chart as last committed. (A
/// merge request's pipeline would name its target branch, `origin/main`.)
const UPGRADE_FROM: &str = "HEAD";

/// The Redis password the release generated (the chart's Secret), and the
/// Redis pod's uid.
async fn redis_state(deployment: &testware::ChartDeployment) -> anyhow::Result<(String, String)> {
    let selector =
        format!("app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=redis");
    let params = kube::api::ListParams::default().labels(&selector);
    let secrets = deployment.api::<Secret>().list(&params).await?.items;
    let password = secrets
        .iter()
        .find_map(|s| s.data.as_ref()?.get("password"))
        .map(|p| String::from_utf8_lossy(&p.0).into_owned())
        .ok_or_else(|| anyhow::anyhow!("no Secret with {selector} holds a password"))?;
    let pods = deployment.api::<Pod>().list(&params).await?.items;
    let uid = pods
        .iter()
        .find(|p| p.metadata.deletion_timestamp.is_none())
        .and_then(|p| p.metadata.uid.clone())
        .ok_or_else(|| anyhow::anyhow!("no Redis pod with {selector}"))?;
    Ok((password, uid))
}

/// Installs the chart as it was at [`UPGRADE_FROM`] with a generated Redis
/// password, ingests keys, then upgrades to the working tree's chart with
/// values changed (Redis's memory limit, which rolls its pod; ingest scaled to
/// three): the password is kept, Redis comes back with what it held, the keys
/// ingested before are still recorded once, and keys sent after are ingested
/// once by the three workers.
async fn upgrade_from_the_committed_chart_keeps_the_password_and_the_ingested_keys(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let charts = ctx.charts()?;
    let before = testware::charts::changes::chart_at(
        UPGRADE_FROM,
        &charts.dir("embargo-ingest"),
        &ctx.artifacts_dir().join("chart-at-ref"),
    )?;
    let values = Values::default()
        .file("ci/offline.yaml")
        .set("redis.auth.password", "");
    let deployment = Install::chart(&before)
        .release(RELEASE)
        .with_values(values.clone())
        .run(&ctx, &ns)
        .await?;
    let stack = EmbargoStack::connect(&deployment).await?;
    let first: BTreeSet<String> = image_keys(&ctx.config.run_id, "before-upgrade", 20)
        .into_iter()
        .collect();
    let keys: Vec<String> = first.iter().cloned().collect();
    stack.notifier().deliver_all(&keys, 5, 4, PATIENCE).await?;
    stack
        .wait_for_ingested(&first, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    let (password, redis_pod) = redis_state(&deployment).await?;
    drop(stack);

    deployment
        .upgrade(
            Upgrade::default()
                .chart(charts.dir("embargo-ingest"))
                .with_values(
                    values
                        .set("redis.resources.limits.memory", "320Mi")
                        .set("ingest.replicas", "3"),
                ),
        )
        .await?;
    let (password_after, redis_pod_after) = redis_state(&deployment).await?;
    check!(
        password_after == password,
        "the generated Redis password changed in the upgrade (values shown nowhere)"
    );
    check!(
        redis_pod_after != redis_pod,
        "the upgrade should have replaced the Redis pod (its memory limit changed)"
    );
    let stack = EmbargoStack::connect(&deployment).await?;
    stack.check_ingested_once(&first).await?;

    let second: BTreeSet<String> = image_keys(&ctx.config.run_id, "after-upgrade", 20)
        .into_iter()
        .collect();
    let keys: Vec<String> = second.iter().cloned().collect();
    stack.notifier().deliver_all(&keys, 5, 4, PATIENCE).await?;
    let all: BTreeSet<String> = first.union(&second).cloned().collect();
    stack
        .wait_for_ingested(&all, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    stack.check_ingested_once(&all).await?;
    let workers = stack.metrics("ingest").await?.len();
    check_eq!(workers, 3, "ingest pods answering after the upgrade");
    Ok(())
}
