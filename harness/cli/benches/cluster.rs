//! Benchmark of the local cluster (needs root; stops a running local cluster):
//! warm `up` time to node Ready with addons serving, and idle CPU and memory of
//! each component (chart_deploy timings: the `chart_deploy` bench of `suites`).
//! Run with `cargo bench -p testware-cli --bench cluster`; the addons' images are
//! made from this package's `testware` binary, as `testware cluster up` does.

use std::time::{Duration, Instant};

use local_cluster::binaries::Binaries;
use local_cluster::cluster::LocalCluster;
use local_cluster::layout::Layout;
use local_cluster::{images, process};

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
    let cluster = LocalCluster::new(Layout::from_env(), Binaries::cached(&cache, release));
    let specs = images::addon_images(std::path::Path::new(env!("CARGO_BIN_EXE_testware")))?;
    let scratch = std::env::temp_dir().join(format!("testware-bench-{}", std::process::id()));
    let archives = images::build(&specs, &cache, &scratch)?;
    let _ = std::fs::remove_dir_all(&scratch);
    cluster.down()?;

    let started = Instant::now();
    cluster
        .up_serving(&archives, &cluster.layout.path("kubeconfig"))
        .await?;
    println!(
        "warm up: {:.1} s to node Ready with DNS and storage serving",
        started.elapsed().as_secs_f64()
    );

    tokio::time::sleep(Duration::from_secs(5)).await;
    let names = [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "containerd",
        "kubelet",
        "kube-proxy",
    ];
    let supervisor = process::Supervisor::new(cluster.layout.run(), cluster.layout.logs());
    let pids: Vec<(&str, u32)> = names
        .iter()
        .filter_map(|n| Some((*n, supervisor.running(n)?)))
        .collect();
    let before: Vec<Option<(u64, u64)>> = pids.iter().map(|(_, p)| usage(*p)).collect();
    let window = Duration::from_secs(10);
    tokio::time::sleep(window).await;
    let ticks_per_s = 100.0;
    let (mut total_cpu, mut total_rss) = (0.0, 0);
    println!("idle over {window:?} (2 cores = 200 %):");
    for ((name, pid), b) in pids.iter().zip(before) {
        if let (Some((t0, _)), Some((t1, rss))) = (b, usage(*pid)) {
            let cpu = (t1 - t0) as f64 / ticks_per_s / window.as_secs_f64() * 100.0;
            total_cpu += cpu;
            total_rss += rss;
            println!(
                "  {name:<24} {cpu:>5.1} % cpu  {:>6.1} MiB",
                rss as f64 / 1024.0
            );
        }
    }
    println!(
        "  {:<24} {total_cpu:>5.1} % cpu  {:>6.1} MiB",
        "total",
        total_rss as f64 / 1024.0
    );

    reset_figures(&cluster, &archives).await?;
    println!(
        "(namespace, install and condition timings: cargo bench -p suites --bench chart_deploy)"
    );
    Ok(())
}

/// `reset` after a test-like mess (namespaces with objects, a ClusterRole),
/// then `up` on the reset cluster.
async fn reset_figures(
    cluster: &LocalCluster,
    archives: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    use testware::k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use testware::k8s_openapi::api::rbac::v1::ClusterRole;
    use testware::kube::api::{Api, PostParams};
    let client = cluster.admin_client().await?;
    let baseline = testware::cluster::baseline::capture(&client).await?;
    let create = PostParams::default();
    for i in 0..5 {
        let name = format!("bench-reset-{i}");
        let namespace: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        Api::<Namespace>::all(client.clone())
            .create(&create, &namespace)
            .await?;
        for j in 0..10 {
            let config_map: ConfigMap =
                serde_json::from_value(serde_json::json!({"metadata": {"name": format!("c{j}")}}))?;
            Api::<ConfigMap>::namespaced(client.clone(), &name)
                .create(&create, &config_map)
                .await?;
        }
        let role: ClusterRole =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "rules": []}))?;
        Api::<ClusterRole>::all(client.clone())
            .create(&create, &role)
            .await?;
    }
    let reset =
        testware::cluster::baseline::reset(&client, &baseline, Duration::from_secs(180)).await?;
    println!(
        "reset: {:.1} s to delete {} namespaces (50 ConfigMaps) and {} ClusterRoles, awaited",
        reset.took.as_secs_f64(),
        reset.namespaces.len(),
        reset.objects.len()
    );
    let started = Instant::now();
    cluster
        .up_serving(archives, &cluster.layout.path("kubeconfig"))
        .await?;
    println!(
        "up after reset (cluster running): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
