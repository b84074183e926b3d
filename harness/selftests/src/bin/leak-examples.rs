//! Cases that end badly on purpose — a panic, a timeout, a plain failure, and one
//! that waits to be killed — each after creating a namespace with a Helm release
//! and a bound volume. The `leaks` suite runs this binary and checks that nothing
//! of theirs remains. Not part of any test run by itself.

use std::time::Duration;

use cluster_addons::toolbox::pod as toolbox_pod;
use testware::{cases, Case, CaseResult, Ctx, Suite, Tier};

/// How long a helper pod may take to become ready.
const POD_START: Duration = Duration::from_secs(90);

fn main() -> std::process::ExitCode {
    Suite::new("leak_examples")
        .charts(testware_selftests::charts_dir())
        .cases(cases![chart_deploy:
            panics_after_deploying,
            fails_after_deploying,
            waits_to_be_killed,
        ])
        .case(
            Case::from_fn(
                Tier::ChartDeploy,
                "times_out_after_deploying",
                times_out_after_deploying,
            )
            .timeout(Duration::from_secs(60)),
        )
        .run()
}

async fn panics_after_deploying(ctx: Ctx) -> CaseResult {
    deploy_something(&ctx).await?;
    panic!("deliberate panic after deploying");
}

async fn times_out_after_deploying(ctx: Ctx) -> CaseResult {
    deploy_something(&ctx).await?;
    std::future::pending::<()>().await;
    Ok(())
}

async fn fails_after_deploying(ctx: Ctx) -> CaseResult {
    deploy_something(&ctx).await?;
    anyhow::bail!("deliberate failure after deploying")
}

async fn waits_to_be_killed(ctx: Ctx) -> CaseResult {
    let ns = deploy_something(&ctx).await?;
    eprintln!("READY-TO-BE-KILLED {ns}");
    std::future::pending::<()>().await;
    Ok(())
}

/// A namespace with the echo-server release and a pod using a bound volume; returns its name.
async fn deploy_something(ctx: &Ctx) -> anyhow::Result<String> {
    let ns = ctx.create_namespace().await?;
    let claim: k8s_openapi::api::core::v1::PersistentVolumeClaim = serde_json::from_value(
        serde_json::json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}
        }),
    )?;
    ns.api().create(&Default::default(), &claim).await?;
    ns.start_pod(&toolbox_pod("holder", Some("data"))?, POD_START)
        .await?;
    ctx.charts()?
        .install("echo-server")
        .release("echo")
        .run(ctx, &ns)
        .await?;
    Ok(ns.name().to_owned())
}
