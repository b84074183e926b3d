//! Benchmark of the embedded cluster with several nodes (needs root; stops a
//! running local cluster): `up` with 1 and with 3 nodes, idle CPU and memory of
//! each node after the first, a node lost -> its pods running elsewhere, and the
//! drain of a node whose pods a PodDisruptionBudget guards. Figures printed,
//! nothing asserted. Run with `cargo bench -p testware-cli --bench nodes`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use local_cluster::binaries::Binaries;
use local_cluster::cluster::LocalCluster;
use local_cluster::images;
use local_cluster::layout::Layout;
use local_cluster::node::{self, Fault};
use local_cluster::shape::Shape;
use testware::cluster::faults::NodeFaults;
use testware::cluster::sharing::{ClusterHold, Holder};
use testware::cluster::wait::Deadline;
use testware::kube;

/// The workload's namespace.
const NS: &str = "bench-nodes";

#[path = "common/mod.rs"]
mod common;
use common::usage;

fn main() -> anyhow::Result<()> {
    common::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cache = testware::config::Tools::from_process().cache_dir;
    // The release HARNESS_KUBERNETES names (the default one unless set), built
    // by `testware cluster up --kubernetes …` before.
    let release = local_cluster::release::from_env()?;
    let specs = images::addon_images(std::path::Path::new(env!("CARGO_BIN_EXE_testware")))?;
    let scratch = std::env::temp_dir().join(format!("testware-bench-{}", std::process::id()));
    let archives = images::build(&specs, &cache, &scratch)?;
    let _ = std::fs::remove_dir_all(&scratch);
    let cluster = |shape: Shape| {
        LocalCluster::new(Layout::from_env(), Binaries::cached(&cache, release)).with_shape(shape)
    };
    cluster(Shape::single()).down()?;

    let mut up_times = Vec::new();
    for n in [1, 3] {
        let c = cluster(Shape::of_groups(n, &[])?);
        let started = Instant::now();
        c.up_serving(&archives, &c.layout.path("kubeconfig"))
            .await?;
        up_times.push((n, started.elapsed()));
        if n == 1 {
            c.down()?;
        }
    }
    for (n, took) in &up_times {
        println!(
            "up with {n} node(s): {:.1} s to every node Ready with DNS and storage serving",
            took.as_secs_f64()
        );
    }
    println!(
        "ratio 3 nodes / 1 node: {:.2}",
        up_times[1].1.as_secs_f64() / up_times[0].1.as_secs_f64()
    );

    let c = cluster(Shape::of_groups(3, &[])?);
    tokio::time::sleep(Duration::from_secs(5)).await;
    idle_per_node(&c).await;

    let client = c.admin_client().await?;
    workload(&client, false).await?;
    let victim = node_of_a_pod(&client).await?;
    let started = Instant::now();
    node::inject(
        &c.layout,
        &c.bins,
        &c.shape,
        c.shape.node(&victim)?,
        Fault::Lost,
    )?;
    wait_running_off(&client, &victim, Duration::from_secs(180)).await?;
    println!(
        "node {victim} lost -> both pods running on other nodes after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    c.restore(&victim).await?;
    delete_workload(&client).await?;

    workload(&client, true).await?;
    let target = node_of_a_pod(&client).await?;
    // The bench's own cluster, held alone as a case that drains would hold it.
    let hold = std::sync::Arc::new(
        ClusterHold::exclusive(
            &client,
            &Holder::named("bench-nodes", None, "drain"),
            Deadline::after(Duration::from_secs(60)),
        )
        .await?,
    );
    let config = std::sync::Arc::new(testware::RunConfig::from_args(Default::default(), |key| {
        std::env::var(key).ok()
    })?);
    let faults = NodeFaults::under(hold.clone(), client.clone(), config)?;
    let drained = faults.drain(&target, Duration::from_secs(180)).await?;
    faults.uncordon(&target).await?;
    hold.release().await?;
    println!(
        "drain of {target} (PodDisruptionBudget minAvailable 1 over 2 replicas): {:.1} s, {} pod(s) evicted, {} eviction(s) held by the budget first",
        drained.took.as_secs_f64(),
        drained.evicted.len(),
        drained.refusals
    );
    delete_workload(&client).await?;
    c.down()?;
    Ok(())
}

/// Idle CPU and memory of containerd, kubelet and kube-proxy of each node after the first.
async fn idle_per_node(c: &LocalCluster) {
    let window = Duration::from_secs(10);
    let mut samples = Vec::new();
    for n in c.shape.extra() {
        let supervisor = node::supervisor(&c.layout, n);
        for name in ["containerd", "kubelet", "kube-proxy"] {
            if let Some(pid) = supervisor.running(name) {
                samples.push((n.name.clone(), name, pid, usage(pid)));
            }
        }
    }
    tokio::time::sleep(window).await;
    println!("idle over {window:?}, per node after the first (2 cores = 200 %):");
    let mut per_node: std::collections::BTreeMap<String, (f64, u64)> = Default::default();
    for (node, name, pid, before) in samples {
        if let (Some((t0, _)), Some((t1, rss))) = (before, usage(pid)) {
            let cpu = (t1 - t0) as f64 / 100.0 / window.as_secs_f64() * 100.0;
            println!(
                "  {node:<12} {name:<12} {cpu:5.1} % CPU  {:6} MiB",
                rss / 1024
            );
            let entry = per_node.entry(node).or_default();
            entry.0 += cpu;
            entry.1 += rss;
        }
    }
    for (node, (cpu, rss)) in per_node {
        println!(
            "  {node:<12} total        {cpu:5.1} % CPU  {:6} MiB",
            rss / 1024
        );
    }
}

/// Two toolbox pods on the nodes after the first, with a budget of minAvailable 1 if `budget`.
async fn workload(client: &kube::Client, budget: bool) -> anyhow::Result<()> {
    use kube::api::{Api, PostParams};
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    if namespaces.get_opt(NS).await?.is_none() {
        namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(serde_json::json!({"metadata": {"name": NS}}))?,
            )
            .await?;
    }
    let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(
        serde_json::json!({
            "metadata": {"name": "bench"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "bench"}},
                "template": {
                    "metadata": {"labels": {"app": "bench"}},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": [
                                {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["testware"]}]}]}}},
                        "containers": [{
                            "name": "sleep",
                            "image": cluster_addons::toolbox::IMAGE,
                            "args": ["sleep"],
                            "imagePullPolicy": "IfNotPresent"
                        }]
                    }
                }
            }
        }),
    )?;
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &deployment)
        .await?;
    if budget {
        let pdb: k8s_openapi::api::policy::v1::PodDisruptionBudget =
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "bench"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "bench"}}}
            }))?;
        Api::<k8s_openapi::api::policy::v1::PodDisruptionBudget>::namespaced(client.clone(), NS)
            .create(&PostParams::default(), &pdb)
            .await?;
    }
    wait_running_off(client, "", Duration::from_secs(120)).await
}

async fn delete_workload(client: &kube::Client) -> anyhow::Result<()> {
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(client.clone());
    namespaces.delete(NS, &Default::default()).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while namespaces.get_opt(NS).await?.is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

async fn node_of_a_pod(client: &kube::Client) -> anyhow::Result<String> {
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), NS);
    pods.list(&Default::default())
        .await?
        .items
        .iter()
        .find_map(|p| p.spec.as_ref()?.node_name.clone())
        .ok_or_else(|| anyhow::anyhow!("no pod placed"))
}

/// Waits until two pods run and are ready, none of them on `not_on`.
async fn wait_running_off(
    client: &kube::Client,
    not_on: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), NS);
    let deadline = Instant::now() + timeout;
    loop {
        let running = pods
            .list(&Default::default())
            .await?
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(not_on))
            .filter(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if running >= 2 {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "pods not running off {not_on} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
