//! The EFD (Engineering and Facility Database) path: SAL-shaped telemetry records,
//! the InfluxDB points they must become, [`EfdPath`] (a broker and an InfluxDB the
//! test process reaches: produce records, await and check their points) and
//! [`EfdStack`], a deployed efd release reached that way (Kafka through
//! [`crate::kafka`], InfluxDB through a port-forward, the connector's counters and log).
//!
//! Records follow `../shared/design/data-paths.md`: the `private_*` fields,
//! `salIndex`, scalars, arrays (flattened to `name0 … nameN-1` in InfluxDB) and
//! events. Every record of a generator carries its identity (`harness@<run>-<n>`)
//! and a `private_efdStamp` unique to the microsecond within the process, so
//! parallel cases and generators never overwrite each other's points.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Map, Value};

use crate::influx::{quote_string, Influx};
use crate::kafka::{Kafka, KafkaAccess};
use testware::deployment::ChartDeployment;
use testware::net::PortForward;

/// TAI - UTC, in seconds (since 2017).
const TAI_OFFSET: f64 = 37.0;

/// The last `private_efdStamp` handed out in this process, in microseconds.
static LAST_STAMP: AtomicI64 = AtomicI64::new(0);

/// A microsecond timestamp later than every earlier one of this process.
fn unique_stamp_micros() -> i64 {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000;
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let mut last = LAST_STAMP.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST_STAMP.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// One telemetry record and what InfluxDB must hold for it.
#[derive(Debug, Clone, PartialEq)]
pub struct EfdRecord {
    /// Kafka topic = InfluxDB measurement.
    pub topic: String,
    /// The record as produced.
    pub value: Value,
    /// `private_efdStamp` in microseconds: the point's time.
    pub stamp_micros: i64,
    /// `private_seqNum`.
    pub seq: i64,
}

impl EfdRecord {
    /// The JSON payload.
    pub fn payload(&self) -> Vec<u8> {
        serde_json::to_vec(&self.value).unwrap_or_default()
    }

    /// The fields the point must have: scalars as they are, arrays flattened to
    /// `name0 … nameN-1`, nulls dropped (the connector's mapping).
    pub fn expected_fields(&self) -> BTreeMap<String, Value> {
        let mut fields = BTreeMap::new();
        for (name, value) in self.value.as_object().into_iter().flatten() {
            match value {
                Value::Null | Value::Object(_) => {}
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate().filter(|(_, v)| !v.is_null()) {
                        fields.insert(format!("{name}{i}"), item.clone());
                    }
                }
                other => {
                    fields.insert(name.clone(), other.clone());
                }
            }
        }
        fields
    }

    /// Differences between the expected fields and a point read back (its row as
    /// column -> value, `time` included); empty when they agree.
    pub fn differences(&self, point: &Map<String, Value>) -> Vec<String> {
        let mut differences = Vec::new();
        match point.get("time").and_then(Value::as_i64) {
            Some(t) if t == self.stamp_micros => {}
            other => differences.push(format!(
                "time {other:?} != private_efdStamp {} µs",
                self.stamp_micros
            )),
        }
        let expected = self.expected_fields();
        for (name, want) in &expected {
            match point.get(name) {
                Some(got) if same_value(want, got) => {}
                got => differences.push(format!("{name}: {got:?} != {want}")),
            }
        }
        for name in point.keys() {
            if name != "time" && !expected.contains_key(name) {
                differences.push(format!("unexpected field {name}"));
            }
        }
        differences
    }
}

/// Equal as InfluxDB returns them: integers exactly, floats by value within two
/// units in the last place (InfluxDB writes the float 2.0 as `2`, and seen here,
/// 1795763886.6962721 came back as 1795763886.696272), everything else exactly.
fn same_value(want: &Value, got: &Value) -> bool {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) => match (a.as_i64(), b.as_i64()) {
            (Some(a), Some(b)) => a == b,
            _ => match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() <= 2.0 * f64::EPSILON * a.abs().max(b.abs()),
                _ => false,
            },
        },
        _ => want == got,
    }
}

/// Makes SAL-shaped records with one identity and increasing sequence numbers.
#[derive(Debug)]
pub struct RecordGenerator {
    identity: String,
    origin: i64,
    next_seq: i64,
    sal_index: i64,
}

impl RecordGenerator {
    /// A generator whose identity is `harness@<run>-<random>`: a filter that only
    /// its own points match.
    pub fn new(run: &str) -> Self {
        Self {
            identity: format!("harness@{run}-{:06x}", rand::random::<u32>() & 0xff_ffff),
            origin: i64::from(std::process::id()),
            next_seq: 1,
            sal_index: 1,
        }
    }

    /// `private_identity` of its records.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The InfluxQL condition matching its points.
    pub fn filter(&self) -> String {
        format!("private_identity = {}", quote_string(&self.identity))
    }

    fn record(&mut self, topic: &str, fields: Value) -> EfdRecord {
        let stamp_micros = unique_stamp_micros();
        let seq = self.next_seq;
        self.next_seq += 1;
        #[allow(clippy::cast_precision_loss)] // microseconds since 1970 fit a double's 53 bits
        let efd_stamp = stamp_micros as f64 / 1e6;
        let mut value = json!({
            "salIndex": self.sal_index,
            "private_sndStamp": efd_stamp + TAI_OFFSET - 0.001,
            "private_efdStamp": efd_stamp,
            "private_kafkaStamp": efd_stamp + TAI_OFFSET,
            "private_seqNum": seq,
            "private_identity": self.identity,
            "private_origin": self.origin,
        });
        if let (Some(record), Value::Object(extra)) = (value.as_object_mut(), fields) {
            record.extend(extra);
        }
        EfdRecord {
            topic: topic.to_owned(),
            value,
            stamp_micros,
            seq,
        }
    }

    /// A telemetry sample of scalars: doubles, a long, a string, a bool and a null
    /// (which InfluxDB must not get).
    pub fn scalars(&mut self, topic: &str) -> EfdRecord {
        #[allow(clippy::cast_precision_loss)]
        let n = self.next_seq as f64;
        self.record(
            topic,
            json!({
                "temperature": 20.0 + n / 1000.0,
                "pressure": 101_325.5,
                "counter": self.next_seq * 3,
                "mode": format!("mode-{}", self.next_seq % 4),
                "enabled": self.next_seq % 2 == 0,
                "spare": null,
            }),
        )
    }

    /// A telemetry sample with arrays of `len` doubles and longs (one null inside).
    pub fn arrays(&mut self, topic: &str, len: usize) -> EfdRecord {
        #[allow(clippy::cast_precision_loss)]
        let forces: Vec<Value> = (0..len)
            .map(|i| {
                if i == 1 {
                    Value::Null
                } else {
                    json!(i as f64 * 0.5 + self.next_seq as f64)
                }
            })
            .collect();
        let ids: Vec<i64> = (0..len as i64).map(|i| i + 100).collect();
        self.record(topic, json!({"force": forces, "actuatorId": ids}))
    }

    /// An event (`logevent_…`): a few scalar fields.
    pub fn event(&mut self, topic: &str) -> EfdRecord {
        self.record(
            topic,
            json!({"heartbeat": true, "summaryState": self.next_seq % 5, "priority": 1}),
        )
    }

    /// An M1M3-sized sample: `values` doubles in arrays of 156 (812 ≈ 5.4 KB).
    pub fn large(&mut self, topic: &str, values: usize) -> EfdRecord {
        let mut fields = Map::new();
        for (a, start) in (0..values).step_by(156).enumerate() {
            #[allow(clippy::cast_precision_loss)]
            let items: Vec<f64> = (start..values.min(start + 156))
                .map(|i| i as f64 * 0.25)
                .collect();
            fields.insert(format!("force{a}_"), json!(items));
        }
        self.record(topic, Value::Object(fields))
    }
}

/// The two ends of the EFD's data path as the test process reaches them: records
/// go in at the broker, points come out of InfluxDB. Wherever they run — a deployed
/// release ([`EfdStack`]) or containers a component case started.
pub struct EfdPath {
    /// Producer/consumer/admin for the broker.
    pub kafka: Kafka,
    /// The InfluxDB database the connector writes to.
    pub influx: Influx,
}

/// A deployed efd release, reached from the test process; its [`EfdPath`] is
/// reached through the stack (`stack.produce(…)`, `stack.influx`).
pub struct EfdStack {
    path: EfdPath,
    deployment: ChartDeployment,
    _influx_forward: PortForward,
}

impl std::fmt::Debug for EfdPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "EfdPath({}, {:?})",
            self.kafka.access().view(),
            self.influx
        )
    }
}

impl std::ops::Deref for EfdStack {
    type Target = EfdPath;

    fn deref(&self) -> &EfdPath {
        &self.path
    }
}

impl std::fmt::Debug for EfdStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EfdStack({:?})", self.deployment)
    }
}

/// Why the stack could not be reached or read.
pub type EfdError = anyhow::Error;

impl EfdStack {
    /// Reaches the broker (Service with `app.kubernetes.io/component=kafka`) and
    /// InfluxDB (`component=influxdb`, database `database`) of `deployment`.
    ///
    /// # Errors
    /// A Service is missing, or cannot be forwarded to.
    pub async fn connect(deployment: &ChartDeployment, database: &str) -> Result<Self, EfdError> {
        let services = deployment.services().await?;
        let service = |component: &str| {
            services
                .iter()
                .find(|s| is_component(&s.metadata, component))
                .and_then(|s| {
                    let name = s.metadata.name.clone()?;
                    let port = s.spec.as_ref()?.ports.as_ref()?.first()?.port;
                    Some((name, u16::try_from(port).ok()?))
                })
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "release {} has no Service with app.kubernetes.io/component={component}",
                        deployment.release()
                    )
                })
        };
        let (kafka_service, kafka_port) = service("kafka")?;
        let (influx_service, influx_port) = service("influxdb")?;
        let access = KafkaAccess::to_service(
            deployment.client(),
            deployment.namespace(),
            &kafka_service,
            kafka_port,
        )
        .await?;
        let kafka = Kafka::over(access)?;
        let forward = deployment
            .port_forward(&format!("svc/{influx_service}"), influx_port)
            .await?;
        let explained = deployment.clone();
        let influx = Influx::new(forward.url(), database).explain_with(move || {
            let deployment = explained.clone();
            async move { connector_report(&deployment).await }
        });
        Ok(Self {
            path: EfdPath { kafka, influx },
            deployment: deployment.clone(),
            _influx_forward: forward,
        })
    }

    /// The connector pods' counters (`GET /metrics`), by pod.
    ///
    /// # Errors
    /// The pods cannot be listed.
    pub async fn connector_metrics(&self) -> Result<Vec<(String, Value)>, EfdError> {
        connector_metrics(&self.deployment).await
    }

    /// Points the connector replicas have written to InfluxDB so far, together
    /// (their `written` counters): more than zero once the data path flows.
    ///
    /// # Errors
    /// A replica's metrics cannot be read.
    pub async fn connector_written(&self) -> Result<u64, EfdError> {
        Ok(self
            .connector_metrics()
            .await?
            .iter()
            .filter_map(|(_, m)| m["written"].as_u64())
            .sum())
    }

    /// The release this stack belongs to.
    pub fn deployment(&self) -> &ChartDeployment {
        &self.deployment
    }
}

impl EfdPath {
    /// Produces `records` (unkeyed), up to 1,000 awaiting delivery at once.
    ///
    /// # Errors
    /// A record was not delivered.
    pub async fn produce(&self, records: &[EfdRecord]) -> Result<(), EfdError> {
        let owned: Vec<(String, Option<Vec<u8>>, Vec<u8>)> = records
            .iter()
            .map(|r| (r.topic.clone(), None, r.payload()))
            .collect();
        self.kafka.produce_all(owned, 1000).await?;
        Ok(())
    }

    /// Waits until `topic` holds exactly `n` points of `generator`'s identity.
    ///
    /// # Errors
    /// Fewer in time (the message has the last count and the connector's
    /// counters and log), or more.
    pub async fn wait_for_points(
        &self,
        topic: &str,
        generator: &RecordGenerator,
        n: u64,
        timeout: Duration,
    ) -> Result<u64, EfdError> {
        Ok(self
            .influx
            .wait_for_count(topic, "private_seqNum", &generator.filter(), n, timeout)
            .await?)
    }

    /// Every point of `topic` with `generator`'s identity, as column -> value maps.
    ///
    /// # Errors
    /// The query fails.
    pub async fn points(
        &self,
        topic: &str,
        generator: &RecordGenerator,
    ) -> Result<Vec<Map<String, Value>>, EfdError> {
        let series = self
            .influx
            .query(&format!(
                "SELECT * FROM {} WHERE {}",
                self.influx.qualified(topic),
                generator.filter()
            ))
            .await?;
        Ok(series.iter().flat_map(|s| s.rows()).collect())
    }

    /// Checks that `topic` holds exactly one point per record, each equal to its
    /// record; returns the problems found (empty when all is well).
    ///
    /// # Errors
    /// The query fails.
    pub async fn check_points(
        &self,
        topic: &str,
        generator: &RecordGenerator,
        records: &[EfdRecord],
    ) -> Result<Vec<String>, EfdError> {
        let points = self.points(topic, generator).await?;
        let mut by_time: BTreeMap<i64, &Map<String, Value>> = BTreeMap::new();
        let mut problems = Vec::new();
        for point in &points {
            let time = point
                .get("time")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            if by_time.insert(time, point).is_some() {
                problems.push(format!("two points at time {time}"));
            }
        }
        let expected: Vec<&EfdRecord> = records.iter().filter(|r| r.topic == topic).collect();
        for record in &expected {
            match by_time.remove(&record.stamp_micros) {
                None => problems.push(format!("record seq {} is missing", record.seq)),
                Some(point) => {
                    let diff = record.differences(point);
                    if !diff.is_empty() {
                        problems.push(format!("record seq {}: {}", record.seq, diff.join(", ")));
                    }
                }
            }
        }
        for time in by_time.keys() {
            problems.push(format!("point at {time} matches no record"));
        }
        Ok(problems)
    }

    /// Waits until each topic of `records` holds one point per record of
    /// `generator`, then checks every point against its record.
    ///
    /// # Errors
    /// Points missing at the timeout (with the last count and the writer's
    /// explanation), or a topic with missing, duplicated, unexpected or wrong
    /// points (the first five problems and how many in all).
    pub async fn expect_exactly_once(
        &self,
        generator: &RecordGenerator,
        records: &[EfdRecord],
        timeout: Duration,
    ) -> Result<(), EfdError> {
        let mut topics: Vec<(&str, u64)> = Vec::new();
        for record in records {
            match topics.iter_mut().find(|(t, _)| *t == record.topic) {
                Some((_, n)) => *n += 1,
                None => topics.push((&record.topic, 1)),
            }
        }
        for (topic, n) in topics {
            self.wait_for_points(topic, generator, n, timeout).await?;
            let problems = self.check_points(topic, generator, records).await?;
            if !problems.is_empty() {
                let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
                anyhow::bail!("{topic}: {} problems: {}", problems.len(), shown.join("; "));
            }
        }
        Ok(())
    }
}

/// The release's connector pods (`app.kubernetes.io/component=connector`).
async fn connector_pods(deployment: &ChartDeployment) -> Result<Vec<Pod>, EfdError> {
    Ok(deployment
        .pods()
        .await?
        .into_iter()
        .filter(|p| is_component(&p.metadata, "connector"))
        .collect())
}

/// Whether an object is labelled `app.kubernetes.io/component=<component>`.
fn is_component(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    component: &str,
) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get("app.kubernetes.io/component"))
        .is_some_and(|c| c == component)
}

async fn connector_metrics(deployment: &ChartDeployment) -> Result<Vec<(String, Value)>, EfdError> {
    let mut metrics = Vec::new();
    for pod in connector_pods(deployment).await? {
        let Some(name) = pod.metadata.name.clone() else {
            continue;
        };
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if !running {
            continue;
        }
        let (_, body) = testware::net::port_forward_http(
            &deployment.api(),
            &name,
            8080,
            "GET",
            "/metrics",
            b"",
        )
        .await?;
        metrics.push((name, serde_json::from_str(&body).unwrap_or(Value::Null)));
    }
    Ok(metrics)
}

/// The connectors' counters and last log lines, for timeout messages.
async fn connector_report(deployment: &ChartDeployment) -> String {
    let pods = match connector_pods(deployment).await {
        Ok(pods) => pods,
        Err(e) => return format!("connector pods unreadable: {e:#}"),
    };
    if pods.is_empty() {
        return "no connector pod".into();
    }
    let metrics: BTreeMap<String, Value> = connector_metrics(deployment)
        .await
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut report = Vec::new();
    for pod in &pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let log = deployment
            .logs(&name, None, false)
            .await
            .unwrap_or_else(|e| format!("(log unreadable: {e})"));
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        report.push(format!(
            "pod {name} ({}), counters {}, last log lines: {}",
            testware::explain::describe_pod(pod),
            metrics
                .get(&name)
                .map_or_else(|| "unknown".into(), Value::to_string),
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    report.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_unique_and_increasing() {
        let mut generator = RecordGenerator::new("t");
        let records: Vec<EfdRecord> = (0..1000).map(|_| generator.scalars("a")).collect();
        assert!(records
            .windows(2)
            .all(|w| w[1].stamp_micros > w[0].stamp_micros));
        assert_eq!(records[999].seq, 1000);
    }

    #[test]
    fn stamp_survives_the_double_in_the_record() {
        let record = RecordGenerator::new("t").scalars("a");
        let stamp = record.value["private_efdStamp"].as_f64().unwrap();
        let back: f64 = serde_json::from_slice::<Value>(&record.payload()).unwrap()
            ["private_efdStamp"]
            .as_f64()
            .unwrap();
        #[allow(clippy::cast_possible_truncation)]
        let micros = (back * 1e6).round() as i64;
        assert_eq!(stamp, back);
        assert_eq!(micros, record.stamp_micros);
    }

    #[test]
    fn arrays_flatten_and_nulls_drop() {
        let record = RecordGenerator::new("t").arrays("a", 3);
        let fields = record.expected_fields();
        assert!(fields.contains_key("force0") && fields.contains_key("force2"));
        assert!(
            !fields.contains_key("force1"),
            "the null element is dropped"
        );
        assert_eq!(fields.get("actuatorId2"), Some(&json!(102)));
        assert!(!fields.contains_key("force"));
    }

    #[test]
    fn differences_name_wrong_missing_and_extra_fields() {
        let record = RecordGenerator::new("t").scalars("a");
        let mut point: Map<String, Value> = record.expected_fields().into_iter().collect();
        point.insert("time".into(), json!(record.stamp_micros));
        assert!(record.differences(&point).is_empty());
        point.insert("pressure".into(), json!(101_325)); // a float written as 101325.5
        point.remove("mode");
        point.insert("spare".into(), json!(1));
        let diff = record.differences(&point).join("; ");
        assert!(
            diff.contains("pressure")
                && diff.contains("mode")
                && diff.contains("unexpected field spare"),
            "{diff}"
        );
    }

    #[test]
    fn floats_compare_by_value_as_influxdb_returns_them() {
        assert!(same_value(&json!(2.0), &json!(2)));
        assert!(!same_value(&json!(2.5), &json!(2)));
        assert!(same_value(
            &json!(1_795_763_886.696_272_1),
            &json!(1_795_763_886.696_272)
        ));
        assert!(!same_value(
            &json!(1_795_763_886.696_272),
            &json!(1_795_763_886.696_273)
        ));
        assert!(same_value(&json!("x"), &json!("x")));
    }
}
