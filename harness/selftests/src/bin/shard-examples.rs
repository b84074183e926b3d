//! Cases for the `shards` suite to split over concurrent shard processes: three
//! install echo-server with its cluster-wide ClusterRole (named by
//! `SHARD_EXAMPLES_READER`), so they collide unless claimed one at a time;
//! three only use a namespace; one holds the ClusterRole until it is killed.
//! Not part of any test run by itself.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::ClusterRole;
use testware::cluster::labels;
use testware::{Case, CaseResult, Ctx, Suite, Tier};

/// How long a reader case keeps its release after checking it: long enough
/// for two unclaimed installs to overlap.
const HOLD: Duration = Duration::from_secs(3);

fn main() -> std::process::ExitCode {
    let readers = (1..=3).map(|i| Case::from_fn(Tier::ChartDeploy, format!("reader_{i}"), reader));
    let plain =
        (1..=3).map(|i| Case::from_fn(Tier::ChartDeploy, format!("namespace_{i}"), namespace_only));
    Suite::new("shard_examples")
        .charts(testware_selftests::charts_dir())
        .cases(readers)
        .cases(plain)
        .case(Case::from_fn(
            Tier::ChartDeploy,
            "waits_to_be_killed",
            waits_to_be_killed,
        ))
        .run()
}

fn reader_name() -> String {
    std::env::var("SHARD_EXAMPLES_READER").unwrap_or_else(|_| "shard-examples-reader".into())
}

/// Installs echo-server with its ClusterRole; checks the role is there,
/// created for this release's namespace and labelled with this run.
async fn install_reader(ctx: &Ctx) -> anyhow::Result<String> {
    let ns = ctx.create_namespace().await?;
    let name = reader_name();
    ctx.charts()?
        .install("echo-server")
        .release("echo")
        .values("ci/cluster-reader.yaml")
        .set("clusterReader.name", &name)
        .run(ctx, &ns)
        .await?;
    let role = kube::Api::<ClusterRole>::all(ctx.client().await?)
        .get(&name)
        .await?;
    let annotations = role.metadata.annotations.unwrap_or_default();
    let owner = annotations.get("meta.helm.sh/release-namespace");
    anyhow::ensure!(
        owner.map(String::as_str) == Some(ns.name()),
        "ClusterRole/{name} belongs to namespace {owner:?}, not {}",
        ns.name()
    );
    if ctx.config.claim_cluster_objects {
        let labels_now = role.metadata.labels.unwrap_or_default();
        anyhow::ensure!(
            labels_now.get(labels::RUN_ID) == Some(&ctx.config.run_id),
            "ClusterRole/{name} is not labelled with run {}: {labels_now:?}",
            ctx.config.run_id
        );
    }
    Ok(ns.name().to_owned())
}

async fn reader(ctx: Ctx) -> CaseResult {
    install_reader(&ctx).await?;
    tokio::time::sleep(HOLD).await;
    Ok(())
}

async fn namespace_only(ctx: Ctx) -> CaseResult {
    let ns = ctx.create_namespace().await?;
    let map: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shard"}, "data": {"case": ctx.case}
    }))?;
    ns.api::<ConfigMap>()
        .create(&Default::default(), &map)
        .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

async fn waits_to_be_killed(ctx: Ctx) -> CaseResult {
    let ns = install_reader(&ctx).await?;
    eprintln!("READY-TO-BE-KILLED {ns}");
    std::future::pending::<()>().await;
    Ok(())
}
