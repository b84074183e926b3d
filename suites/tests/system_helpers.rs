//! component cases for the `testware-systems` Kafka and InfluxDB helpers
//! themselves, against the real systems the efd chart deploys (Apache Kafka in
//! KRaft mode and InfluxDB 1.13, containers of the chart's images started as
//! the chart starts them: `suites::efd_containers`), not through the EFD's
//! connector: what adopters call in their own cases must hold on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use suites::containers::free_ports;
use suites::efd_containers::{start_influxdb, start_kafka, CaseDir, ChartImages};
use testware::{cases, check, check_eq, ChartSet, Ctx, Suite};
use testware_systems::influx::Influx;
use testware_systems::kafka::rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use testware_systems::kafka::rdkafka::{Offset, TopicPartitionList};
use testware_systems::kafka::{Kafka, KafkaAccess};

fn main() -> std::process::ExitCode {
    Suite::new("system_helpers")
        .charts(suites::charts_dir())
        .cases(cases![component(kafka):
            kafka_helper_round_trips_keyed_records,
            kafka_helper_reads_what_a_group_committed,
            kafka_helper_errors_name_the_broker_and_the_operation,
            influx_helper_writes_queries_and_counts,
            influx_helper_errors_carry_influxdbs_message,
        ])
        .run()
}

/// A broker of the chart's image and a client of it; the directory holds its
/// configuration and data until the case ends.
async fn broker(ctx: &Ctx, charts: &ChartSet) -> anyhow::Result<(Kafka, impl Drop)> {
    let images = ChartImages::of(charts).await?;
    let [kafka, controller] = free_ports::<2>()?;
    let dir = CaseDir::new(ctx)?;
    let container = start_kafka(ctx, &images, &dir, (kafka, controller)).await?;
    let client = Kafka::over(KafkaAccess::direct(SocketAddr::from((
        [127, 0, 0, 1],
        kafka,
    ))))?;
    // Dropped together, the container before its mounts.
    struct Running(
        Option<testcontainers::ContainerAsync<testcontainers::GenericImage>>,
        Option<CaseDir>,
    );
    impl Drop for Running {
        fn drop(&mut self) {
            drop(self.0.take());
            drop(self.1.take());
        }
    }
    Ok((client, Running(Some(container), Some(dir))))
}

/// InfluxDB of the chart's image with database `helpers`, and a client of it.
async fn influxdb(
    ctx: &Ctx,
    charts: &ChartSet,
) -> anyhow::Result<(
    testcontainers::ContainerAsync<testcontainers::GenericImage>,
    Influx,
)> {
    let images = ChartImages::of(charts).await?;
    let [http, rpc] = free_ports::<2>()?;
    start_influxdb(ctx, &images, (http, rpc), "helpers").await
}

/// Keyed records through `produce_all`, `describe_topic` and `read_log`: every
/// record comes back once with its key, a key always lands on one partition,
/// and the watermarks count what was written. Creating the topic twice is fine.
async fn kafka_helper_round_trips_keyed_records(
    ctx: Ctx,
    charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    let (kafka, _broker) = broker(&ctx, &charts).await?;
    let topic = "helpers.keyed";
    kafka.create_topic(topic, 3).await?;
    kafka.create_topic(topic, 3).await?;
    let records: Vec<(String, Option<Vec<u8>>, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                topic.to_owned(),
                Some(format!("key-{}", i % 10).into_bytes()),
                format!("{{\"n\": {i}}}").into_bytes(),
            )
        })
        .collect();
    check_eq!(kafka.produce_all(records.clone(), 100).await?, 300);

    let described = kafka.describe_topic(topic).await?;
    check_eq!(described.partitions.len(), 3, "partitions: {described:?}");
    check!(
        described.partitions.iter().all(|p| p.leader == 0),
        "the one broker (node 0) leads every partition: {described:?}"
    );
    let written: i64 = described.partitions.iter().map(|p| p.high - p.low).sum();
    check_eq!(written, 300, "records between the watermarks");

    let log = kafka
        .read_log(topic, ctx.deadline().cap(Duration::from_secs(30)))
        .await?;
    check_eq!(log.len(), 300, "records read back");
    let payloads: BTreeSet<Vec<u8>> = log.iter().filter_map(|r| r.payload.clone()).collect();
    check_eq!(payloads.len(), 300, "distinct payloads read back");
    let mut partition_of_key: BTreeMap<Vec<u8>, BTreeSet<i32>> = BTreeMap::new();
    for record in &log {
        check_eq!(record.topic.as_str(), topic);
        let key = record.key.clone().unwrap_or_default();
        partition_of_key
            .entry(key)
            .or_default()
            .insert(record.partition);
    }
    check_eq!(partition_of_key.len(), 10, "keys read back");
    check!(
        partition_of_key.values().all(|p| p.len() == 1),
        "each key on one partition: {partition_of_key:?}"
    );
    Ok(())
}

/// `committed_offsets` reads a group's commits without joining it: nothing for
/// a group that never committed, the offset for the partition it committed.
async fn kafka_helper_reads_what_a_group_committed(
    ctx: Ctx,
    charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    let (kafka, _broker) = broker(&ctx, &charts).await?;
    let topic = "helpers.committed";
    kafka.create_topic(topic, 2).await?;
    let records = (0..50).map(|i| (topic.to_owned(), None, vec![i]));
    kafka.produce_all(records, 50).await?;
    check_eq!(
        kafka.committed_offsets("nobody", topic).await?,
        vec![(0, None), (1, None)],
        "a group that never committed"
    );

    // A client of the harness's kind (its configuration and context) commits.
    let committer: BaseConsumer<_> = kafka
        .access()
        .client_config()
        .set("group.id", "committer")
        .set("enable.auto.commit", "false")
        .create_with_context(kafka.access().context())?;
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset(topic, 1, Offset::Offset(7))?;
    tokio::task::spawn_blocking(move || committer.commit(&offsets, CommitMode::Sync)).await??;
    check_eq!(
        kafka.committed_offsets("committer", topic).await?,
        vec![(0, None), (1, Some(7))],
        "the committed offset of partition 1 only"
    );
    Ok(())
}

/// A broker that is not there and a setting librdkafka refuses: the errors say
/// what was attempted, against which broker, and why.
async fn kafka_helper_errors_name_the_broker_and_the_operation(
    _ctx: Ctx,
    _charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    let [port] = free_ports::<1>()?;
    let nowhere = Kafka::over(KafkaAccess::direct(SocketAddr::from((
        [127, 0, 0, 1],
        port,
    ))))?;
    let error = match nowhere.describe_topic("helpers.absent").await {
        Ok(described) => anyhow::bail!("a broker that is not there described {described:?}"),
        Err(e) => format!("{:#}", anyhow::Error::from(e)),
    };
    check!(
        error.contains("describe topic helpers.absent") && error.contains(&port.to_string()),
        "the error should name the operation and the broker's address: {error}"
    );

    let refused = match nowhere.producer_with(&[("acks", "sometimes")]) {
        Ok(_) => anyhow::bail!("librdkafka accepted acks=sometimes"),
        Err(e) => format!("{:#}", anyhow::Error::from(e)),
    };
    check!(
        refused.contains("creating a producer") && refused.contains("acks"),
        "the error should name the producer and the setting: {refused}"
    );
    Ok(())
}

/// Line protocol in, InfluxQL out: measurements, field types, counts with a
/// filter, a wait that is met and one that is not (whose error says the last
/// count it saw).
async fn influx_helper_writes_queries_and_counts(
    ctx: Ctx,
    charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    let (_container, influx) = influxdb(&ctx, &charts).await?;
    let lines: String = (0..20)
        .map(|i| {
            format!(
                "weather,site=s{} temperature={}.5,count={i}i,ok=true,label=\"a b\" {}\n",
                i % 2,
                i,
                1_700_000_000_000_000_i64 + i64::from(i)
            )
        })
        .collect();
    influx.write(lines).await?;
    influx
        .write("wind speed=3.0 1700000000000000\n".to_owned())
        .await?;

    check_eq!(
        influx.measurements().await?,
        vec!["weather".to_owned(), "wind".to_owned()]
    );
    check_eq!(
        influx.field_keys("weather").await?,
        vec![
            ("count".to_owned(), "integer".to_owned()),
            ("label".to_owned(), "string".to_owned()),
            ("ok".to_owned(), "boolean".to_owned()),
            ("temperature".to_owned(), "float".to_owned()),
        ]
    );
    check_eq!(influx.count("weather", "temperature", "").await?, 20);
    check_eq!(
        influx
            .count("weather", "temperature", "site = 's1'")
            .await?,
        10
    );
    let rows = influx
        .query("SELECT label, count FROM weather WHERE count = 3")
        .await?
        .first()
        .map(testware_systems::influx::Series::rows)
        .unwrap_or_default();
    check_eq!(rows.len(), 1, "rows: {rows:?}");
    check_eq!(rows[0]["label"], serde_json::json!("a b"));
    check_eq!(
        rows[0]["time"],
        serde_json::json!(1_700_000_000_000_003_i64)
    );

    check_eq!(
        influx
            .wait_for_count("weather", "count", "", 20, Duration::from_secs(10))
            .await?,
        20
    );
    let short = influx
        .wait_for_count("weather", "count", "", 21, Duration::from_secs(1))
        .await;
    let message = match short {
        Ok(n) => anyhow::bail!("waiting for 21 points ended with {n}"),
        Err(e) => e.to_string(),
    };
    check!(
        message.contains("21 points in weather") && message.contains("count 20"),
        "the timeout should say what it waited for and the last count: {message}"
    );
    Ok(())
}

/// InfluxDB's own reasons reach the caller: a query it cannot parse, a line it
/// cannot parse, a database that does not exist.
async fn influx_helper_errors_carry_influxdbs_message(
    ctx: Ctx,
    charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    let (_container, influx) = influxdb(&ctx, &charts).await?;

    let parse = influx
        .query("SELEC nothing")
        .await
        .map_err(|e| e.to_string());
    check!(
        parse
            .as_ref()
            .is_err_and(|e| e.contains("SELEC nothing") && e.contains("error parsing query")),
        "a query InfluxDB cannot parse: {parse:?}"
    );
    let line = influx
        .write("weather temperature=\n".to_owned())
        .await
        .map_err(|e| e.to_string());
    check!(
        line.as_ref()
            .is_err_and(|e| e.contains("write") && e.contains("400")),
        "a line InfluxDB cannot parse: {line:?}"
    );
    let elsewhere = Influx::new(influx.url().to_owned(), "absent");
    let missing = elsewhere
        .write("weather temperature=1\n".to_owned())
        .await
        .map_err(|e| e.to_string());
    check!(
        missing
            .as_ref()
            .is_err_and(|e| e.contains("database not found")),
        "a database that does not exist: {missing:?}"
    );
    Ok(())
}
