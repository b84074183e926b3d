//! The cluster's reader–writer lock (`testware::cluster::sharing`) on a real
//! API server: an exclusive claimant waits for the running cases and holds
//! back new ones; a killed holder's hold expires and the next claimant reaps
//! it; a claimant that waits too long is told who holds the cluster; and a case
//! not marked `exclusive` is refused the node faults. The locks here live in
//! each case's own namespace (`*_in`), so the cluster's own lock, which every
//! case of the run holds shared, is not touched.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{ListParams, Patch, PatchParams};
use testware::cluster::sharing::{ClusterHold, Holder};
use testware::cluster::wait::Deadline;
use testware::{cases, check, check_eq, Ctx, Suite};

fn main() -> std::process::ExitCode {
    Suite::new("sharing")
        .cases(cases![chart_deploy:
            an_exclusive_hold_waits_for_the_running_and_holds_back_the_new,
            a_killed_holders_hold_expires_and_the_next_claimant_reaps_it,
            a_claimant_that_waits_too_long_is_told_who_holds_the_cluster,
            a_case_not_marked_exclusive_is_refused_the_node_faults,
        ])
        .run()
}

/// How long the cases below watch a claimant stay waiting.
const WATCH: Duration = Duration::from_secs(2);

fn minute() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

fn holder(ctx: &Ctx, name: &str) -> Holder {
    Holder::named(&ctx.config.run_id, None, name)
}

/// The hold Leases in `namespace`.
async fn holds(client: &kube::Client, namespace: &str) -> anyhow::Result<Vec<Lease>> {
    Ok(kube::Api::<Lease>::namespaced(client.clone(), namespace)
        .list(&ListParams::default().labels("testware.io/hold"))
        .await?
        .items)
}

async fn an_exclusive_hold_waits_for_the_running_and_holds_back_the_new(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let ns = ctx.create_namespace().await?;
    let at = ns.name().to_owned();
    let running = ClusterHold::shared_in(&client, &at, &holder(&ctx, "running"), minute()).await?;
    check!(running.waited() < WATCH, "nothing held it: {running:?}");

    let (c, a, h) = (client.clone(), at.clone(), holder(&ctx, "node-fault"));
    let claimant =
        tokio::spawn(async move { ClusterHold::exclusive_in(&c, &a, &h, minute()).await });
    tokio::time::sleep(WATCH).await;
    check!(
        !claimant.is_finished(),
        "the exclusive claimant waits while a case runs"
    );
    let (c, a, h) = (client.clone(), at.clone(), holder(&ctx, "late"));
    let late = tokio::spawn(async move { ClusterHold::shared_in(&c, &a, &h, minute()).await });
    tokio::time::sleep(WATCH).await;
    check!(
        !late.is_finished(),
        "a case that comes after the exclusive claimant waits behind it"
    );

    running.release().await?;
    let exclusive = claimant.await??;
    check!(exclusive.waited() >= WATCH * 2, "{exclusive:?}");
    check!(
        exclusive
            .waited_for()
            .is_some_and(|w| w.contains("case running") && w.ends_with("(shared)")),
        "it says whom it waited for: {:?}",
        exclusive.waited_for()
    );
    tokio::time::sleep(WATCH).await;
    check!(
        !late.is_finished(),
        "no case starts while the cluster is held alone"
    );
    exclusive.release().await?;
    let late = late.await??;
    check!(late.waited() >= WATCH * 2, "{late:?}");
    check!(
        late.waited_for()
            .is_some_and(|w| w.contains("case node-fault") && w.ends_with("(exclusive)")),
        "{:?}",
        late.waited_for()
    );
    late.release().await?;
    check_eq!(
        holds(&client, &at).await?.len(),
        0,
        "every hold given up leaves no Lease"
    );
    Ok(())
}

/// Moves every hold Lease's expiry in `namespace` to the past, as if its
/// holder had been killed half a minute ago.
async fn kill_holders(client: &kube::Client, namespace: &str) -> anyhow::Result<usize> {
    let api = kube::Api::<Lease>::namespaced(client.clone(), namespace);
    let leases = holds(client, namespace).await?;
    let past = "2000-01-01T00:00:00Z";
    for lease in &leases {
        let name = lease.metadata.name.clone().unwrap_or_default();
        let patch =
            serde_json::json!({"metadata": {"annotations": {"testware.io/expires-at": past}}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(leases.len())
}

async fn a_killed_holders_hold_expires_and_the_next_claimant_reaps_it(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let ns = ctx.create_namespace().await?;
    let at = ns.name().to_owned();
    // A shared holder dies: its Lease stays until it expires.
    let dead = ClusterHold::shared_in(&client, &at, &holder(&ctx, "killed"), minute()).await?;
    drop(dead);
    check_eq!(
        kill_holders(&client, &at).await?,
        1,
        "the dead hold's Lease"
    );
    let exclusive =
        ClusterHold::exclusive_in(&client, &at, &holder(&ctx, "next"), minute()).await?;
    check!(
        exclusive.waited() < WATCH,
        "an expired hold is not waited for: {exclusive:?}"
    );
    // Now the exclusive holder dies.
    drop(exclusive);
    check_eq!(
        kill_holders(&client, &at).await?,
        1,
        "only the exclusive Lease is left: the dead shared one was reaped"
    );
    let shared = ClusterHold::shared_in(&client, &at, &holder(&ctx, "after"), minute()).await?;
    check!(shared.waited() < WATCH, "{shared:?}");
    let left = holds(&client, &at).await?;
    check_eq!(
        left.len(),
        1,
        "the dead exclusive hold was reaped: {:?}",
        left.iter()
            .map(|l| l.metadata.name.clone())
            .collect::<Vec<_>>()
    );
    shared.release().await?;
    Ok(())
}

async fn a_claimant_that_waits_too_long_is_told_who_holds_the_cluster(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let ns = ctx.create_namespace().await?;
    let at = ns.name().to_owned();
    let short = || Deadline::after(Duration::from_secs(3));

    let running =
        ClusterHold::shared_in(&client, &at, &holder(&ctx, "slow-case"), minute()).await?;
    let err = ClusterHold::exclusive_in(&client, &at, &holder(&ctx, "drainer"), short())
        .await
        .expect_err("the running case holds the cluster past the deadline");
    let text = testware::error_chain(&err);
    check!(
        text.contains("still running: case slow-case") && text.contains("HARNESS_CLUSTER_WAIT"),
        "{text}"
    );
    check_eq!(
        holds(&client, &at).await?.len(),
        1,
        "the claimant that gave up left no exclusive Lease behind"
    );
    running.release().await?;

    let exclusive =
        ClusterHold::exclusive_in(&client, &at, &holder(&ctx, "drainer"), minute()).await?;
    let err = ClusterHold::shared_in(&client, &at, &holder(&ctx, "waiter"), short())
        .await
        .expect_err("the exclusive holder holds the cluster past the deadline");
    let text = testware::error_chain(&err);
    check!(text.contains("held exclusively by case drainer"), "{text}");
    exclusive.release().await?;
    Ok(())
}

async fn a_case_not_marked_exclusive_is_refused_the_node_faults(ctx: Ctx) -> anyhow::Result<()> {
    let err = ctx
        .node_faults()
        .await
        .expect_err("a case that is not marked exclusive");
    let text = format!("{err:#}");
    check!(
        text.contains("does not hold the cluster alone")
            && text.contains("mark the case `exclusive`"),
        "{text}"
    );
    Ok(())
}
