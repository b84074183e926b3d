//! The full_stack example of the README, compiled with every build of the
//! workspace's targets: `cargo run -p suites --example efd_full_stack_case`
//! runs it against `KUBECONFIG` (add `-- --require-cluster` to fail without one).

use std::time::Duration;

use harness::deployment::{ChartDeployment, DeployOptions};
use harness::efd::{EfdStack, RecordGenerator};
use harness::{Case, Ctx, Suite};
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use suites::{chart_dir, check};

fn main() -> std::process::ExitCode {
    Suite::new("efd_stack")
        .case(
            Case::chart_deploy("connector_pod_deleted_loses_nothing", |ctx| async move {
                connector_deleted(ctx).await
            })
            .mark("full_stack")
            .mark("kafka"),
        )
        .run()
}

async fn connector_deleted(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.namespace().await?;
    let efd = ChartDeployment::install(
        &ctx,
        &ns,
        "efd",
        chart_dir("efd"),
        DeployOptions::default().values("ci/offline.yaml"),
    )
    .await?;
    // Kafka through a port-forward with the brokers' addresses rewritten,
    // InfluxDB through another; timeouts show the connector's counters and log.
    let stack = EfdStack::connect(&efd, "efd").await?;
    let mut records = RecordGenerator::new(&ctx.config.run_id); // its own identity
    let first: Vec<_> = (0..500)
        .map(|_| records.scalars("lsst.sal.Test.scalars"))
        .collect();
    stack.produce(&first).await?; // delivery reports awaited
    ns.api::<Pod>()
        .delete("efd-connector-0", &DeleteParams::default().grace_period(0))
        .await?;
    let second: Vec<_> = (0..500)
        .map(|_| records.scalars("lsst.sal.Test.scalars"))
        .collect();
    stack.produce(&second).await?;
    stack
        .wait_for_points(
            "lsst.sal.Test.scalars",
            &records,
            1000,
            ctx.deadline().cap(Duration::from_secs(90)),
        )
        .await?; // exactly 1000, or why not
    let all: Vec<_> = first.into_iter().chain(second).collect();
    let problems = stack
        .check_points("lsst.sal.Test.scalars", &records, &all)
        .await?;
    check!(problems.is_empty(), "{problems:?}"); // every field, time to the µs
    Ok(())
}
