//! no_deploy cases for the embargo-ingest chart: Redis, enqueue, ingest, idle.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use testware::manifest::EnvValue;
use testware::{cases, check, check_eq, ChartSet, RenderOptions, Rendered, Suite};

const CHART: &str = "embargo-ingest";
const REDIS: &str = "test-embargo-ingest-redis";
const WORKLOADS: [(&str, &str, &str); 4] = [
    ("StatefulSet", "test-embargo-ingest-redis", "redis"),
    ("Deployment", "test-embargo-ingest-enqueue", "enqueue"),
    ("Deployment", "test-embargo-ingest-ingest", "ingest"),
    ("Deployment", "test-embargo-ingest-idle", "idle"),
];

fn main() -> std::process::ExitCode {
    Suite::new("embargo_ingest")
        .charts(suites::charts_dir())
        .cases(cases![no_deploy:
            every_component_uses_the_same_redis_secret,
            existing_secret_is_used_and_not_created,
            redis_is_append_only_and_password_protected,
            ingest_replicas_and_batches_follow_values,
            ingest_worker_list_is_named_after_the_pod,
            idle_reaper_is_a_single_replica,
            enqueue_gets_the_webhook_secret_and_dataset_filter,
        ])
        .run()
}

fn password_refs(r: &Rendered) -> anyhow::Result<Vec<EnvValue>> {
    WORKLOADS
        .iter()
        .map(|(kind, name, container)| {
            let pod = r.pod_template(kind, name)?;
            let c = pod
                .container(container)
                .ok_or_else(|| anyhow::anyhow!("{kind}/{name} has no container {container}"))?;
            r.env_var(c, "REDIS_PASSWORD")
                .ok_or_else(|| anyhow::anyhow!("{kind}/{name} lacks REDIS_PASSWORD"))
        })
        .collect()
}

async fn every_component_uses_the_same_redis_secret(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts
        .render(CHART, RenderOptions::default().values("ci/offline.yaml"))
        .await?;
    let refs = password_refs(&r)?;
    let expected = EnvValue::Secret {
        name: REDIS.into(),
        key: "password".into(),
        value: Some("ci-redis-password".into()),
    };
    for (value, (kind, name, _)) in refs.iter().zip(WORKLOADS) {
        check_eq!(value, &expected, "{kind}/{name} REDIS_PASSWORD");
    }
    let defaults = charts.render(CHART, RenderOptions::default()).await?;
    let generated = defaults
        .secret_data(REDIS)?
        .get("password")
        .cloned()
        .unwrap_or_default();
    check!(
        generated.len() >= 32,
        "a generated password should be long, is {generated:?}"
    );
    Ok(())
}

async fn existing_secret_is_used_and_not_created(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts
        .render(
            CHART,
            RenderOptions::default().values("ci/existing-secret.yaml"),
        )
        .await?;
    check!(
        r.get::<Secret>(REDIS).is_err(),
        "the chart must not create its own Redis Secret"
    );
    for value in password_refs(&r)? {
        check!(
            matches!(&value, EnvValue::Secret { name, key, value: None } if name == "site-redis-auth" && key == "password"),
            "{value:?}"
        );
    }
    Ok(())
}

async fn redis_is_append_only_and_password_protected(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts.render(CHART, RenderOptions::default()).await?;
    let pod = r.pod_template("StatefulSet", REDIS)?;
    let args = pod
        .container("redis")
        .and_then(|c| c.args.clone())
        .unwrap_or_default();
    let pairs: Vec<(&str, &str)> = args
        .chunks(2)
        .filter_map(|p| Some((p.first()?.as_str(), p.get(1)?.as_str())))
        .collect();
    check!(
        pairs.contains(&("--appendonly", "yes")),
        "no --appendonly yes in {args:?}"
    );
    check!(
        pairs.contains(&("--requirepass", "$(REDIS_PASSWORD)")),
        "no --requirepass from the env in {args:?}"
    );
    check!(pairs.contains(&("--dir", "/data")), "data dir: {args:?}");
    let mounts = pod
        .container("redis")
        .and_then(|c| c.volume_mounts.clone())
        .unwrap_or_default();
    check!(
        mounts
            .iter()
            .any(|m| m.name == "data" && m.mount_path == "/data"),
        "/data is not on the data volume"
    );
    Ok(())
}

async fn ingest_replicas_and_batches_follow_values(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    for (values, replicas, max_ingests) in [
        (None, 2, "10"),
        (Some("scaled"), 5, "50"),
        (Some("existing-secret"), 1, "10"),
    ] {
        let mut options = RenderOptions::default();
        options
            .values
            .files
            .extend(values.map(|v| format!("ci/{v}.yaml").into()));
        let r = charts.render(CHART, options).await?;
        let ingest = r.get::<Deployment>("test-embargo-ingest-ingest")?;
        check_eq!(
            ingest.spec.as_ref().and_then(|s| s.replicas),
            Some(replicas),
            "{values:?}: replicas"
        );
        let pod = r.pod_template("Deployment", "test-embargo-ingest-ingest")?;
        let c = pod
            .container("ingest")
            .ok_or_else(|| anyhow::anyhow!("no ingest container"))?;
        check_eq!(
            r.env_var(c, "MAX_INGESTS")
                .and_then(|v| v.resolved().map(str::to_owned))
                .as_deref(),
            Some(max_ingests),
            "{values:?}: MAX_INGESTS"
        );
    }
    Ok(())
}

async fn ingest_worker_list_is_named_after_the_pod(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts.render(CHART, RenderOptions::default()).await?;
    let pod = r.pod_template("Deployment", "test-embargo-ingest-ingest")?;
    let c = pod
        .container("ingest")
        .ok_or_else(|| anyhow::anyhow!("no ingest container"))?;
    check_eq!(
        r.env_var(c, "POD_NAME"),
        Some(EnvValue::Downward("metadata.name".into()))
    );
    check_eq!(
        r.env_var(c, "BUCKET")
            .and_then(|v| v.resolved().map(str::to_owned))
            .as_deref(),
        Some("rubin-embargo")
    );
    Ok(())
}

async fn idle_reaper_is_a_single_replica(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let r = charts
        .render(CHART, RenderOptions::default().values("ci/scaled.yaml"))
        .await?;
    let idle = r.get::<Deployment>("test-embargo-ingest-idle")?;
    let spec = idle
        .spec
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("idle has no spec"))?;
    check_eq!(spec.replicas, Some(1));
    check_eq!(
        spec.strategy
            .as_ref()
            .and_then(|s| s.type_.clone())
            .as_deref(),
        Some("Recreate"),
        "two reapers must never overlap"
    );
    Ok(())
}

async fn enqueue_gets_the_webhook_secret_and_dataset_filter(
    charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    let r = charts
        .render(CHART, RenderOptions::default().values("ci/offline.yaml"))
        .await?;
    let pod = r.pod_template("Deployment", "test-embargo-ingest-enqueue")?;
    let c = pod
        .container("enqueue")
        .ok_or_else(|| anyhow::anyhow!("no enqueue container"))?;
    check_eq!(
        r.env_var(c, "NOTIFICATION_SECRET")
            .and_then(|v| v.resolved().map(str::to_owned))
            .as_deref(),
        Some("ci-webhook-secret")
    );
    check_eq!(
        r.env_var(c, "DATASET_REGEXP")
            .and_then(|v| v.resolved().map(str::to_owned))
            .as_deref(),
        Some("fits$")
    );
    check_eq!(pod.ports()[0].container_port, 8080);
    Ok(())
}
