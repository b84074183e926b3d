//! Where a release's pods run, on whatever cluster the suite is given: the
//! nodes and their groups as the cluster labels them, each pod's node and
//! group, and the message a case gets when pods are not on the group they
//! belong to. (On the single-node embedded cluster every pod shares one node of
//! no group; the placement helpers are the same on kind, k3d and real clusters.)

use testware::cluster::nodes::{self, GROUP_LABEL, NO_GROUP};
use testware::{cases, check, check_eq, Ctx, Suite};

fn main() -> std::process::ExitCode {
    Suite::new("nodes")
        .charts(testware_selftests::charts_dir())
        .cases(cases![chart_deploy: a_releases_pods_are_placed_by_node_and_group])
        .run()
}

async fn a_releases_pods_are_placed_by_node_and_group(ctx: Ctx) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let nodes = nodes::nodes(&client, GROUP_LABEL).await?;
    check!(!nodes.is_empty(), "the cluster has nodes");
    check!(
        nodes.iter().any(|n| n.ready && !n.unschedulable),
        "some node takes pods: {nodes:?}"
    );
    let ns = ctx.create_namespace().await?;
    let web = ctx
        .charts()?
        .install("echo-server")
        .release("web")
        .values("ci/two-replicas.yaml")
        .run(&ctx, &ns)
        .await?;
    let placement = web.placement(GROUP_LABEL).await?;
    let placed: usize = placement.by_node.values().map(Vec::len).sum();
    check_eq!(placed, 2, "both replicas are on a node: {placement}");
    check!(placement.unscheduled.is_empty(), "{placement}");
    for (pod, (node, group)) in &placement.of_pod {
        let on = nodes.iter().find(|n| &n.name == node);
        check!(
            on.is_some(),
            "pod {pod} runs on node {node}, which the node list has: {nodes:?}"
        );
        check_eq!(on.map(|n| n.group.as_str()), Some(group.as_str()));
    }
    // Every pod is on its nodes' group; a group it is not on names each pod.
    let groups: Vec<&String> = placement.by_group.keys().collect();
    if let [only] = groups.as_slice() {
        check!(placement.outside("web-", only).is_empty(), "{placement}");
    }
    let wrong = placement.outside("web-", "processing");
    check_eq!(wrong.len(), 2, "{wrong:?}");
    let group = placement
        .of_pod
        .values()
        .next()
        .map_or(NO_GROUP.to_owned(), |(_, g)| g.clone());
    check!(
        wrong
            .iter()
            .all(|w| w.contains(" on node ") && w.contains(&format!("(group {group})"))),
        "each misplaced pod named with its node and group: {wrong:?}"
    );
    Ok(())
}
