//! no_deploy cases for the efd chart: broker, InfluxDB, connector, topics, Chronograf.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, Service};
use testware::manifest::EnvValue;
use testware::{cases, check, check_eq, ChartSet, RenderOptions, Rendered, Suite};

const CHART: &str = "efd";
const KAFKA: &str = "test-efd-kafka";
const INFLUXDB: &str = "test-efd-influxdb";
const CONNECTOR: &str = "test-efd-connector";

fn main() -> std::process::ExitCode {
    Suite::new("efd")
        .charts(suites::charts_dir())
        .cases(cases![no_deploy:
            connector_points_at_the_broker_and_database_the_chart_creates,
            broker_runs_kraft_mode,
            three_brokers_form_one_quorum_by_pod_name,
            replication_beyond_the_brokers_is_refused,
            chronograf_is_optional,
            topic_job_creates_the_configured_topics,
            persistence_toggles_volume_claims,
            influxdb_listens_where_its_service_points,
        ])
        .run()
}

fn container<'a>(
    r: &'a Rendered,
    kind: &str,
    workload: &str,
    name: &str,
) -> anyhow::Result<&'a Container> {
    r.pod_template(kind, workload)?
        .container(name)
        .ok_or_else(|| anyhow::anyhow!("{kind}/{workload} has no container {name}"))
}

fn literal(r: &Rendered, c: &Container, var: &str) -> anyhow::Result<String> {
    match r.env_var(c, var) {
        Some(EnvValue::Literal(v)) => Ok(v),
        other => anyhow::bail!(
            "container {} should set {var} literally, has {other:?}",
            c.name
        ),
    }
}

fn service_port(r: &Rendered, name: &str) -> anyhow::Result<i32> {
    let ports = r
        .get::<Service>(name)?
        .spec
        .as_ref()
        .and_then(|s| s.ports.clone())
        .unwrap_or_default();
    ports
        .first()
        .map(|p| p.port)
        .ok_or_else(|| anyhow::anyhow!("Service/{name} has no ports"))
}

async fn connector_points_at_the_broker_and_database_the_chart_creates(
    charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    for values in [
        None,
        Some("offline"),
        Some("chronograf"),
        Some("three-brokers"),
        Some("ephemeral"),
    ] {
        let mut options = RenderOptions::default();
        options
            .values
            .files
            .extend(values.map(|v| format!("ci/{v}.yaml").into()));
        let r = charts.render(CHART, options).await?;
        let connector = container(&r, "Deployment", CONNECTOR, "connector")?;
        let brokers = literal(&r, connector, "KAFKA_BROKERS")?;
        check_eq!(
            brokers,
            format!("{KAFKA}:{}", service_port(&r, KAFKA)?),
            "{values:?}: KAFKA_BROKERS"
        );
        let url = literal(&r, connector, "INFLUXDB_URL")?;
        check_eq!(
            url,
            format!("http://{INFLUXDB}:{}", service_port(&r, INFLUXDB)?),
            "{values:?}: INFLUXDB_URL"
        );
        let influxdb = container(&r, "StatefulSet", INFLUXDB, "influxdb")?;
        check_eq!(
            literal(&r, connector, "INFLUXDB_DATABASE")?,
            literal(&r, influxdb, "INFLUXDB_DB")?,
            "{values:?}: database"
        );
        check_eq!(literal(&r, influxdb, "INFLUXDB_DB")?, "efd");
    }
    Ok(())
}

/// The server properties of broker `node` in the render.
fn broker_properties(r: &Rendered, node: usize) -> anyhow::Result<String> {
    r.get::<k8s_openapi::api::core::v1::ConfigMap>(KAFKA)?
        .data
        .as_ref()
        .and_then(|d| d.get(&format!("server-{node}.properties")).cloned())
        .ok_or_else(|| anyhow::anyhow!("ConfigMap/{KAFKA} has no server-{node}.properties"))
}

async fn broker_runs_kraft_mode(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts
        .render(CHART, RenderOptions::default().namespace("obs"))
        .await?;
    let kafka = container(&r, "StatefulSet", KAFKA, "kafka")?;
    check!(
        kafka
            .image
            .as_deref()
            .is_some_and(|i| i.starts_with("localhost/kafka:4.")),
        "image {:?}",
        kafka.image
    );
    let args = kafka.args.clone().unwrap_or_default();
    // $(POD_INDEX) is the pod's ordinal, set from the StatefulSet's pod-index label.
    check!(
        args.iter().any(|a| a == "kafka.Kafka")
            && args
                .iter()
                .any(|a| a == "/etc/kafka/server-$(POD_INDEX).properties"),
        "each broker runs from its own properties: {args:?}"
    );
    check!(
        args.iter().any(|a| a
            == &format!(
                "advertised.listeners=PLAINTEXT://$(POD_NAME).{KAFKA}.obs.svc.cluster.local:9092"
            )),
        "each pod advertises its own DNS name: {args:?}"
    );
    check!(
        r.env_var(kafka, "POD_INDEX").is_some(),
        "POD_INDEX must be set for $(POD_INDEX) to expand"
    );
    let properties = broker_properties(&r, 0)?;
    for line in [
        "process.roles=broker,controller",
        "node.id=0",
        "controller.quorum.voters=0@localhost:9093",
        "controller.listener.names=CONTROLLER",
        "log.dirs=/var/lib/kafka/data",
        "offsets.topic.replication.factor=1",
    ] {
        check!(
            properties.lines().any(|l| l == line),
            "{line} in server-0.properties:\n{properties}"
        );
    }
    let format = container(&r, "StatefulSet", KAFKA, "format-storage")?;
    let format_args = format.args.clone().unwrap_or_default();
    check!(
        format_args.iter().any(|a| a == "kafka.tools.StorageTool")
            && format_args.iter().any(|a| a == "--ignore-formatted")
            && format_args
                .iter()
                .any(|a| a == "--config=/etc/kafka/server-$(POD_INDEX).properties"),
        "storage formatted once with the pod's own properties: {format_args:?}"
    );
    let service = r.get::<Service>(KAFKA)?;
    check_eq!(
        service
            .spec
            .as_ref()
            .and_then(|s| s.cluster_ip.clone())
            .as_deref(),
        Some("None"),
        "broker Service must be headless"
    );
    let sts = r.get::<StatefulSet>(KAFKA)?;
    check_eq!(
        sts.spec
            .as_ref()
            .and_then(|s| s.service_name.clone())
            .as_deref(),
        Some(KAFKA),
        "pod DNS names come from serviceName"
    );
    Ok(())
}

/// Three brokers: three nodes, each its own node.id, voting in one quorum
/// that names every controller by its pod's DNS name; topics and the offsets
/// topic on all three, acks=all needing two.
async fn three_brokers_form_one_quorum_by_pod_name(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts
        .render(
            CHART,
            RenderOptions::default()
                .namespace("obs")
                .values("ci/three-brokers.yaml"),
        )
        .await?;
    check_eq!(
        r.get::<StatefulSet>(KAFKA)?
            .spec
            .as_ref()
            .and_then(|s| s.replicas),
        Some(3)
    );
    let voters = (0..3)
        .map(|i| format!("{i}@{KAFKA}-{i}.{KAFKA}.obs.svc.cluster.local:9093"))
        .collect::<Vec<_>>()
        .join(",");
    for node in 0..3 {
        let properties = broker_properties(&r, node)?;
        for line in [
            format!("node.id={node}"),
            format!("controller.quorum.voters={voters}"),
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093".to_owned(),
            "default.replication.factor=3".to_owned(),
            "offsets.topic.replication.factor=3".to_owned(),
            "min.insync.replicas=2".to_owned(),
        ] {
            check!(
                properties.lines().any(|l| l == line),
                "{line} in server-{node}.properties:\n{properties}"
            );
        }
    }
    let job = r.get::<Job>("test-efd-topics")?;
    let args = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers[0].args.clone().unwrap_or_default())
        .unwrap_or_default();
    check!(
        args.iter().any(|a| a == "--replication-factor=3"),
        "topics on all three brokers: {args:?}"
    );
    Ok(())
}

async fn replication_beyond_the_brokers_is_refused(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let refused = charts
        .render(
            CHART,
            RenderOptions::default().set("kafka.replicationFactor", "3"),
        )
        .await;
    let message = match refused {
        Ok(_) => anyhow::bail!("replicationFactor 3 with one broker rendered"),
        Err(e) => format!("{:#}", anyhow::Error::from(e)),
    };
    check!(
        message.contains("kafka.replicationFactor (3) cannot exceed kafka.replicas (1)"),
        "the error should name both values: {message}"
    );
    Ok(())
}

async fn chronograf_is_optional(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let off = charts.render(CHART, RenderOptions::default()).await?;
    check!(
        off.objects()
            .iter()
            .all(|o| !o.name().contains("chronograf")),
        "chronograf rendered while disabled"
    );
    let on = charts
        .render(CHART, RenderOptions::default().values("ci/chronograf.yaml"))
        .await?;
    on.get::<Service>("test-efd-chronograf")?;
    let chronograf = container(&on, "Deployment", "test-efd-chronograf", "chronograf")?;
    check_eq!(
        literal(&on, chronograf, "INFLUXDB_URL")?,
        format!("http://{INFLUXDB}:8086")
    );
    Ok(())
}

async fn topic_job_creates_the_configured_topics(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts.render(CHART, RenderOptions::default()).await?;
    let job = r.get::<Job>("test-efd-topics")?;
    let args = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .map(|s| s.containers[0].args.clone().unwrap_or_default())
        .unwrap_or_default();
    for topic in ["lsst.sal.Test.scalars", "lsst.sal.MTM1M3.forceActuatorData"] {
        check!(
            args.iter().any(|a| a == topic),
            "topic {topic} not in {args:?}"
        );
    }
    check!(
        args.contains(&format!("--brokers={KAFKA}:9092")),
        "job must use the chart's broker: {args:?}"
    );
    let off = charts
        .render(
            CHART,
            RenderOptions::default().set("topics.create", "false"),
        )
        .await?;
    check!(
        off.get::<Job>("test-efd-topics").is_err(),
        "topics.create=false still renders the Job"
    );
    Ok(())
}

async fn persistence_toggles_volume_claims(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let offline = charts
        .render(CHART, RenderOptions::default().values("ci/offline.yaml"))
        .await?;
    for (name, size) in [(KAFKA, "256Mi"), (INFLUXDB, "512Mi")] {
        let claims = offline
            .get::<StatefulSet>(name)?
            .spec
            .as_ref()
            .and_then(|s| s.volume_claim_templates.clone())
            .unwrap_or_default();
        check_eq!(claims.len(), 1, "{name} claim templates");
        let request = claims[0]
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.clone());
        check_eq!(request.as_deref(), Some(size), "{name} storage request");
    }
    let ephemeral = charts
        .render(CHART, RenderOptions::default().values("ci/ephemeral.yaml"))
        .await?;
    for name in [KAFKA, INFLUXDB] {
        let sts = ephemeral.get::<StatefulSet>(name)?;
        check!(
            sts.spec
                .as_ref()
                .and_then(|s| s.volume_claim_templates.as_ref())
                .is_none_or(|v| v.is_empty()),
            "{name} still claims volumes"
        );
        let pod = ephemeral.pod_template("StatefulSet", name)?;
        check!(
            pod.volumes()
                .iter()
                .any(|v| v.name == "data" && v.empty_dir.is_some()),
            "{name} lacks an emptyDir data volume"
        );
    }
    check_eq!(
        ephemeral
            .get::<Deployment>(CONNECTOR)?
            .spec
            .as_ref()
            .and_then(|s| s.replicas),
        Some(2)
    );
    Ok(())
}

async fn influxdb_listens_where_its_service_points(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts
        .render(
            CHART,
            RenderOptions::default().set("influxdb.port", "18086"),
        )
        .await?;
    let conf = r
        .config_map_data(INFLUXDB)?
        .get("influxdb.conf")
        .cloned()
        .unwrap_or_default();
    check!(
        conf.contains("bind-address = \":18086\""),
        "influxdb.conf does not bind 18086:\n{conf}"
    );
    check_eq!(service_port(&r, INFLUXDB)?, 18086);
    let pod = r.pod_template("StatefulSet", INFLUXDB)?;
    check_eq!(pod.ports()[0].container_port, 18086);
    Ok(())
}
