//! full_stack cases for the EFD: records produced to Kafka from the test process
//! arrive in InfluxDB exactly once — as a plain stream, with malformed records in
//! it, and while the connector, InfluxDB or the broker is killed, scaled away or
//! unreachable. Each case installs the efd chart into its own namespace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use testware::namespace::TestNamespace;
use testware::status::WorkloadKind;
use testware::wait::{rolled_out, wait_until};
use testware::{cases, check, check_eq, Ctx, Suite, Values};
use testware_systems::efd::{EfdRecord, EfdStack, RecordGenerator};
use tokio::sync::watch;

const SCALARS: &str = "lsst.sal.Test.scalars";
const ARRAYS: &str = "lsst.sal.Test.arrays";
const EVENTS: &str = "lsst.sal.Test.logevent_heartbeat";
/// The connector's consumer group (the chart's default).
const GROUP: &str = "efd-connector";
/// Records per second of the background stream in the fault cases.
const RATE: u32 = 200;
/// Records per 50 ms batch of the broker-loss case (2,000 a second): enough in
/// flight when the leader dies for an unsafe producer to lose or double some.
const FAST_BATCH: usize = 100;
/// How long the stream may take to catch up after a fault: the consumer
/// group's session timeout (6 s) plus a pod restart, with room for a loaded machine.
const CATCH_UP: Duration = Duration::from_secs(90);

fn main() -> std::process::ExitCode {
    Suite::new("efd_stack")
        .charts(suites::charts_dir())
        .cases(cases![chart_deploy(full_stack, kafka):
            round_trip_arrives_exactly_once,
            malformed_records_are_skipped_and_logged,
            connector_pod_deleted_loses_nothing,
            connector_scaled_to_zero_and_back_loses_nothing,
            influxdb_pod_deleted_loses_nothing,
            broker_pod_deleted_loses_nothing,
            influxdb_unreachable_writes_retried_offsets_held,
            two_connectors_share_partitions_exactly_once,
            partition_leader_killed_every_record_once,
        ])
        .run()
}

/// Installs the efd chart (CI values plus `sets`) and reaches it from the test.
async fn install(
    ctx: &Ctx,
    ns: &TestNamespace,
    sets: &[(&str, &str)],
) -> anyhow::Result<Arc<EfdStack>> {
    install_from(ctx, ns, "ci/offline.yaml", sets).await
}

/// Installs the efd chart with the chart's value file `file` plus `sets`.
async fn install_from(
    ctx: &Ctx,
    ns: &TestNamespace,
    file: &str,
    sets: &[(&str, &str)],
) -> anyhow::Result<Arc<EfdStack>> {
    let mut values = Values::default().file(file);
    for (key, value) in sets {
        values = values.set(*key, *value);
    }
    let deployment = ctx
        .charts()?
        .install("efd")
        .with_values(values)
        .run(ctx, ns)
        .await?;
    Ok(Arc::new(EfdStack::connect(&deployment, "efd").await?))
}

async fn round_trip_arrives_exactly_once(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(&ctx, &ns, &[]).await?;
    let mut generator = RecordGenerator::new(&ctx.config.run_id);
    let mut records: Vec<EfdRecord> = (0..300).map(|_| generator.scalars(SCALARS)).collect();
    records.extend((0..100).map(|_| generator.arrays(ARRAYS, 12)));
    records.extend((0..50).map(|_| generator.event(EVENTS)));
    stack.produce(&records).await?;

    let timeout = ctx.deadline().cap(Duration::from_secs(60));
    stack
        .expect_exactly_once(&generator, &records, timeout)
        .await?;
    check_eq!(
        stack.influx.measurements().await?,
        vec![ARRAYS.to_owned(), EVENTS.to_owned(), SCALARS.to_owned()],
        "SHOW MEASUREMENTS"
    );
    let keys = stack.influx.field_keys(SCALARS).await?;
    let expected: Vec<(String, String)> = [
        ("counter", "integer"),
        ("enabled", "boolean"),
        ("mode", "string"),
        ("pressure", "float"),
        ("private_efdStamp", "float"),
        ("private_identity", "string"),
        ("private_kafkaStamp", "float"),
        ("private_origin", "integer"),
        ("private_seqNum", "integer"),
        ("private_sndStamp", "float"),
        ("salIndex", "integer"),
        ("temperature", "float"),
    ]
    .iter()
    .map(|(k, t)| ((*k).to_owned(), (*t).to_owned()))
    .collect();
    check_eq!(
        keys,
        expected,
        "SHOW FIELD KEYS FROM {SCALARS} (the null field `spare` must be absent)"
    );
    let array_keys = stack.influx.field_keys(ARRAYS).await?;
    check!(
        array_keys.iter().any(|(k, _)| k == "force11")
            && array_keys.iter().any(|(k, _)| k == "actuatorId0")
            && !array_keys
                .iter()
                .any(|(k, _)| k == "force1" || k == "force"),
        "arrays flatten to name0…name11 with the null element dropped: {array_keys:?}"
    );
    Ok(())
}

async fn malformed_records_are_skipped_and_logged(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(&ctx, &ns, &[]).await?;
    let mut generator = RecordGenerator::new(&ctx.config.run_id);
    let before: Vec<EfdRecord> = (0..5).map(|_| generator.scalars(SCALARS)).collect();
    stack.produce(&before).await?;
    let bad: [&[u8]; 5] = [
        b"not json at all",
        br#"{"private_seqNum": 1, "value": 2.0}"#,
        br#"{"private_efdStamp": "soon", "value": 2.0}"#,
        b"[1, 2, 3]",
        br#"{"private_efdStamp": 1700000000.5}"#,
    ];
    for payload in bad {
        stack.kafka.produce(SCALARS, None, payload).await?;
    }
    let after: Vec<EfdRecord> = (0..5).map(|_| generator.scalars(SCALARS)).collect();
    stack.produce(&after).await?;

    let records: Vec<EfdRecord> = before.into_iter().chain(after).collect();
    let timeout = ctx.deadline().cap(Duration::from_secs(60));
    stack
        .expect_exactly_once(&generator, &records, timeout)
        .await?;
    // The last bad record maps to a point with no field but its stamp, which the
    // connector writes; the other four are skipped, counted and logged.
    let skipped: u64 = stack
        .connector_metrics()
        .await?
        .iter()
        .filter_map(|(_, m)| m["skipped"].as_u64())
        .sum();
    check_eq!(skipped, 4, "records skipped as malformed");
    let mut log = String::new();
    for pod in stack.deployment().pods().await? {
        let name = pod.metadata.name.unwrap_or_default();
        if name.contains("connector") {
            log.push_str(&stack.deployment().logs(&name, None, false).await?);
        }
    }
    for reason in [
        "not JSON",
        "no numeric private_efdStamp",
        "not a JSON object",
    ] {
        check!(
            log.contains(&format!("skipping record {SCALARS}/0@")) && log.contains(reason),
            "the connector log should name the skipped record and why ({reason}): {log}"
        );
    }
    Ok(())
}

/// Records produced in the background at [`RATE`] per second until stopped.
struct Stream {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<(RecordGenerator, Vec<EfdRecord>)>>,
}

impl Stream {
    fn start(stack: &Arc<EfdStack>, run: &str, topic: &'static str) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let stack = stack.clone();
        let mut generator = RecordGenerator::new(run);
        let task = tokio::spawn(async move {
            let mut records = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stopped.changed() => break,
                }
                let batch: Vec<EfdRecord> =
                    (0..RATE / 20).map(|_| generator.scalars(topic)).collect();
                // Delivered (acknowledged by the broker) before the next batch: a
                // broker outage slows the stream down instead of piling it up.
                // A batch the broker refused is sent again, as a producing
                // application would (a re-sent record overwrites its own point).
                let mut refused = 0;
                while let Err(e) = stack.produce(&batch).await {
                    refused += 1;
                    anyhow::ensure!(refused < 100, "the broker refused a batch 100 times: {e:#}");
                    if refused == 1 {
                        println!("batch refused, sending it again until accepted: {e:#}");
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                records.extend(batch);
            }
            Ok((generator, records))
        });
        Self { stop, task }
    }

    /// Stops producing; returns the generator and every record delivered.
    async fn finish(self) -> anyhow::Result<(RecordGenerator, Vec<EfdRecord>)> {
        let _ = self.stop.send(true);
        self.task.await?
    }
}

/// Runs a stream of scalars, applies `fault` after 3 s, streams 5 s more, then
/// waits until InfluxDB holds every record exactly once. Returns the catch-up
/// time (from the end of the stream to the last point visible).
async fn stream_through<F, Fut>(
    ctx: &Ctx,
    stack: &Arc<EfdStack>,
    fault: F,
) -> anyhow::Result<Duration>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let stream = Stream::start(stack, &ctx.config.run_id, SCALARS);
    // The fault hits a flowing path: records written to InfluxDB already (a
    // JVM broker and a new consumer group take a while after the install).
    let flowing = Instant::now();
    wait_until(
        "the connector writing the stream to InfluxDB",
        ctx.deadline().cap(Duration::from_secs(120)),
        || async {
            let written = stack.connector_written().await.map_err(|e| e.to_string())?;
            if written > 0 {
                Ok(())
            } else {
                Err("nothing written yet".to_owned())
            }
        },
    )
    .await?;
    println!(
        "stream flowing {:.1} s after it started",
        flowing.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    fault().await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (generator, records) = stream.finish().await?;
    let ended = Instant::now();
    let n = records.len() as u64;
    check!(n >= 100, "the stream delivered only {n} records");
    stack
        .wait_for_points(SCALARS, &generator, n, ctx.deadline().cap(CATCH_UP))
        .await?;
    let catch_up = ended.elapsed();
    stack
        .expect_exactly_once(&generator, &records, ctx.deadline().cap(CATCH_UP))
        .await?;
    println!(
        "{n} records, 0 lost, 0 duplicated; caught up {:.2} s after the stream ended",
        catch_up.as_secs_f64()
    );
    Ok(catch_up)
}

/// The one pod of the release's `component`.
async fn pod_of(ns: &TestNamespace, component: &str) -> anyhow::Result<String> {
    let pods = ns
        .api::<Pod>()
        .list(
            &kube::api::ListParams::default()
                .labels(&format!("app.kubernetes.io/component={component}")),
        )
        .await?;
    pods.items
        .into_iter()
        .find(|p| p.metadata.deletion_timestamp.is_none())
        .and_then(|p| p.metadata.name)
        .ok_or_else(|| anyhow::anyhow!("no {component} pod in {}", ns.name()))
}

/// Deletes `pod` at once (grace period 0, as a node failure would).
async fn kill(ns: &TestNamespace, pod: &str) -> anyhow::Result<()> {
    ns.api::<Pod>()
        .delete(pod, &DeleteParams::default().grace_period(0))
        .await?;
    Ok(())
}

async fn connector_pod_deleted_loses_nothing(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(&ctx, &ns, &[]).await?;
    stream_through(&ctx, &stack, || async {
        kill(&ns, &pod_of(&ns, "connector").await?).await
    })
    .await?;
    Ok(())
}

async fn connector_scaled_to_zero_and_back_loses_nothing(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(&ctx, &ns, &[]).await?;
    stream_through(&ctx, &stack, || async {
        ns.scale::<Deployment>("efd-connector", 0).await?;
        Ok(ns.scale::<Deployment>("efd-connector", 1).await?)
    })
    .await?;
    Ok(())
}

async fn influxdb_pod_deleted_loses_nothing(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(&ctx, &ns, &[]).await?;
    stream_through(&ctx, &stack, || async { kill(&ns, "efd-influxdb-0").await }).await?;
    Ok(())
}

async fn broker_pod_deleted_loses_nothing(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(&ctx, &ns, &[]).await?;
    stream_through(&ctx, &stack, || async { kill(&ns, "efd-kafka-0").await }).await?;
    Ok(())
}

/// InfluxDB scaled away for ~8 s: the connector retries its writes and commits
/// nothing it has not written; when InfluxDB is back, everything arrives.
async fn influxdb_unreachable_writes_retried_offsets_held(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(&ctx, &ns, &[]).await?;
    let outage = || async {
        ns.scale::<StatefulSet>("efd-influxdb", 0).await?;
        wait_until(
            "InfluxDB pod gone",
            ctx.deadline().cap(Duration::from_secs(60)),
            || async {
                match pod_of(&ns, "influxdb").await {
                    Ok(pod) => Err(format!("{pod} still there")),
                    Err(_) => Ok(()),
                }
            },
        )
        .await?;
        // Whatever was being written when InfluxDB went is retried; after that
        // the committed offset must stand still while records keep coming.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let held = committed(&stack).await?;
        tokio::time::sleep(Duration::from_secs(4)).await;
        let still = committed(&stack).await?;
        check_eq!(
            still,
            held,
            "offsets committed while InfluxDB was unreachable"
        );
        let metrics = stack.connector_metrics().await?;
        let sum = |key: &str| -> u64 { metrics.iter().filter_map(|(_, m)| m[key].as_u64()).sum() };
        check!(
            sum("write_failures") > 0,
            "the connector should have retried failed writes"
        );
        // One partition, offsets from 0, one connector that did not restart: what is
        // committed must not run ahead of what InfluxDB acknowledged.
        let acknowledged = sum("written") + sum("skipped");
        check!(
            still.unwrap_or(0) <= i64::try_from(acknowledged)?,
            "committed offset {still:?} runs ahead of the {acknowledged} records InfluxDB acknowledged (at-least-once broken)"
        );
        ns.scale::<StatefulSet>("efd-influxdb", 1).await?;
        rolled_out(
            ns.client(),
            ns.name(),
            WorkloadKind::StatefulSet,
            "efd-influxdb",
            ctx.deadline().cap(Duration::from_secs(90)),
        )
        .await?;
        Ok(())
    };
    stream_through(&ctx, &stack, outage).await?;
    Ok(())
}

/// The connector group's committed offset of the scalars topic (partition 0).
async fn committed(stack: &EfdStack) -> anyhow::Result<Option<i64>> {
    let offsets = stack.kafka.committed_offsets(GROUP, SCALARS).await?;
    Ok(offsets.first().and_then(|(_, o)| *o))
}

/// Four partitions, two connector replicas in one consumer group: each
/// consumes a share, and every keyed record arrives once. Then one replica is
/// killed: the group moves its share to the other (after the session timeout)
/// and to the Deployment's replacement, and again every record arrives once.
async fn two_connectors_share_partitions_exactly_once(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install(
        &ctx,
        &ns,
        &[("connector.replicas", "2"), ("topics.partitions", "4")],
    )
    .await?;
    let topic = stack.kafka.describe_topic(SCALARS).await?;
    check_eq!(topic.partitions.len(), 4, "partitions of {SCALARS}");
    // Ready replicas join the group in their own time (the first may take
    // every partition before the second is in): records go once both hold some.
    wait_until(
        "both connector replicas holding partitions",
        ctx.deadline().cap(Duration::from_secs(60)),
        || async {
            let metrics = stack.connector_metrics().await.map_err(|e| e.to_string())?;
            let holding = metrics
                .iter()
                .filter(|(_, m)| m["partitions"].as_array().is_some_and(|p| !p.is_empty()))
                .count();
            if metrics.len() == 2 && holding == 2 {
                Ok(())
            } else {
                Err(format!(
                    "{holding} of {} replicas hold partitions",
                    metrics.len()
                ))
            }
        },
    )
    .await?;
    let mut generator = RecordGenerator::new(&ctx.config.run_id);
    let mut records: Vec<EfdRecord> = (0..2000).map(|_| generator.scalars(SCALARS)).collect();
    produce_keyed(&stack, &records).await?;
    let spread = stack.kafka.describe_topic(SCALARS).await?;
    check!(
        spread.partitions.iter().all(|p| p.high > 0),
        "keyed records should reach every partition: {spread:?}"
    );
    stack
        .expect_exactly_once(
            &generator,
            &records,
            ctx.deadline().cap(Duration::from_secs(90)),
        )
        .await?;
    let metrics = stack.connector_metrics().await?;
    check_eq!(metrics.len(), 2, "connector pods answering /metrics");
    check!(
        metrics
            .iter()
            .all(|(_, m)| m["written"].as_u64().unwrap_or(0) > 0),
        "both replicas should have written a share: {metrics:?}"
    );

    let (victim, survivor) = (&metrics[0].0, &metrics[1].0);
    let rebalances = |metrics: &[(String, serde_json::Value)]| {
        metrics
            .iter()
            .find(|(pod, _)| pod == survivor)
            .map_or(0, |(_, m)| m["rebalances"].as_u64().unwrap_or(0))
    };
    let before = rebalances(&metrics);
    kill(&ns, victim).await?;
    let more: Vec<EfdRecord> = (0..2000).map(|_| generator.scalars(SCALARS)).collect();
    produce_keyed(&stack, &more).await?;
    records.extend(more);
    stack
        .expect_exactly_once(&generator, &records, ctx.deadline().cap(CATCH_UP))
        .await?;
    let after = stack.connector_metrics().await?;
    check!(
        rebalances(&after) > before,
        "the group should have rebalanced {survivor}'s partitions after {victim} was killed: {after:?}"
    );
    Ok(())
}

/// Produces `records` keyed by their sequence number (spread over the partitions).
async fn produce_keyed(stack: &EfdStack, records: &[EfdRecord]) -> anyhow::Result<()> {
    let keyed: Vec<(String, Option<Vec<u8>>, Vec<u8>)> = records
        .iter()
        .map(|r| {
            (
                r.topic.clone(),
                Some(r.seq.to_string().into_bytes()),
                r.payload(),
            )
        })
        .collect();
    stack.kafka.produce_all(keyed, 1000).await?;
    Ok(())
}

/// Three brokers, every partition on all three: the broker leading the
/// stream's partition is killed (grace period 0) mid-stream. Every record the
/// producer had acknowledged is in the log once and in InfluxDB once; the
/// producer's longest wait and the catch-up are printed.
///
/// Counter-proofs, the same case with a producer without one guarantee:
/// `EFD_FAULT_PRODUCER=acks1` (`acks=1`, which rules idempotence out too):
/// records acknowledged by the dying leader alone are lost;
/// `EFD_FAULT_PRODUCER=not-idempotent` (`acks=all`): a retried request whose
/// answer died with the leader can be written twice. The case fails naming
/// the records.
async fn partition_leader_killed_every_record_once(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let stack = install_from(&ctx, &ns, "ci/three-brokers.yaml", &[]).await?;
    let producer = match std::env::var("EFD_FAULT_PRODUCER").as_deref() {
        Ok("acks1") => stack
            .kafka
            .producer_with(&[("acks", "1"), ("enable.idempotence", "false")])?,
        Ok("not-idempotent") => stack
            .kafka
            .producer_with(&[("enable.idempotence", "false")])?,
        Ok(other) => {
            anyhow::bail!("EFD_FAULT_PRODUCER={other}: `acks1` and `not-idempotent` are known")
        }
        Err(_) => stack.kafka.producer_with(&[])?,
    };
    let before = stack.kafka.describe_topic(SCALARS).await?;
    let leader = before
        .partitions
        .first()
        .map(|p| p.leader)
        .ok_or_else(|| anyhow::anyhow!("{SCALARS} has no partition: {before:?}"))?;
    let mut generator = RecordGenerator::new(&ctx.config.run_id);
    let mut records: Vec<EfdRecord> = Vec::new();
    let send = |batch: &[EfdRecord]| {
        let owned: Vec<_> = batch
            .iter()
            .map(|r| (r.topic.clone(), None, r.payload()))
            .collect();
        producer.produce_all(owned, 1000)
    };
    // A flowing path first (three JVMs and a new consumer group take a while).
    let first: Vec<EfdRecord> = (0..FAST_BATCH)
        .map(|_| generator.scalars(SCALARS))
        .collect();
    send(&first).await?;
    records.extend(first);
    wait_until(
        "the connector writing the first records",
        ctx.deadline().cap(Duration::from_secs(120)),
        || async {
            match stack.connector_written().await.map_err(|e| e.to_string())? {
                0 => Err("nothing written yet".to_owned()),
                _ => Ok(()),
            }
        },
    )
    .await?;

    let started = Instant::now();
    let mut killed = None;
    let mut longest_wait = Duration::ZERO;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    while started.elapsed() < Duration::from_secs(12) {
        tick.tick().await;
        if killed.is_none() && started.elapsed() >= Duration::from_secs(4) {
            kill(&ns, &format!("efd-kafka-{leader}")).await?;
            killed = Some(Instant::now());
        }
        let batch: Vec<EfdRecord> = (0..FAST_BATCH)
            .map(|_| generator.scalars(SCALARS))
            .collect();
        let sent = Instant::now();
        send(&batch).await.map_err(|e| {
            anyhow::anyhow!(
                "records not acknowledged after broker {leader} (the partition's leader) was killed: {e:#}"
            )
        })?;
        longest_wait = longest_wait.max(sent.elapsed());
        records.extend(batch);
    }
    let ended = Instant::now();
    let after = stack.kafka.describe_topic(SCALARS).await?;
    let n = records.len();

    // The log: each record once.
    let log = stack
        .kafka
        .read_log(SCALARS, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    let mut copies: std::collections::BTreeMap<i64, usize> = std::collections::BTreeMap::new();
    for record in &log {
        let value: serde_json::Value =
            serde_json::from_slice(record.payload.as_deref().unwrap_or_default())
                .unwrap_or_default();
        if value["private_identity"].as_str() == Some(generator.identity()) {
            if let Some(seq) = value["private_seqNum"].as_i64() {
                *copies.entry(seq).or_default() += 1;
            }
        }
    }
    let lost: Vec<i64> = records
        .iter()
        .map(|r| r.seq)
        .filter(|seq| !copies.contains_key(seq))
        .collect();
    let doubled: Vec<i64> = copies
        .iter()
        .filter(|(_, c)| **c > 1)
        .map(|(seq, _)| *seq)
        .collect();
    check!(
        lost.is_empty() && doubled.is_empty(),
        "the log of {SCALARS} after broker {leader} was killed: {} of {n} acknowledged records lost (first {:?}), {} written more than once (first {:?})",
        lost.len(),
        &lost[..lost.len().min(5)],
        doubled.len(),
        &doubled[..doubled.len().min(5)]
    );
    // InfluxDB: each record once.
    stack
        .expect_exactly_once(&generator, &records, ctx.deadline().cap(CATCH_UP))
        .await?;
    println!(
        "{n} records through broker {leader}'s loss (leader now {:?}): longest producer wait {:.2} s, \
         killed {:.1} s before the stream ended, InfluxDB caught up {:.2} s after it ended",
        after.partitions.first().map(|p| p.leader),
        longest_wait.as_secs_f64(),
        killed.map_or(0.0, |k| (ended - k).as_secs_f64()),
        ended.elapsed().as_secs_f64()
    );
    Ok(())
}
