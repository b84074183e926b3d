//! `testware cluster up|down|status|leftovers|reset`: the embedded cluster (a real
//! Kubernetes, 1.34 to 1.37, built from the Go module proxy; no Docker, no
//! registry), or a kind or k3d cluster made the same way.
//!
//! `up` on the local provider installs what the cluster runs on (Debian's
//! packages; Kubernetes and etcd built into the cache once, keyed by version), makes the
//! addons' images from this very executable and starts the cluster with them —
//! nothing else: a repository's own images are `testware images import`'s.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use local_cluster::binaries::Binaries;
use local_cluster::cluster::LocalCluster;
use local_cluster::layout::Layout;
use local_cluster::release::Kubernetes;
use local_cluster::{addons, images, provision};

/// Cluster name for kind and k3d.
const CLUSTER_NAME: &str = "testware";

/// Where the cluster comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Provider {
    /// The embedded cluster: host processes on this machine (needs root).
    Local,
    /// A kind cluster named `testware` (needs kind and Docker).
    Kind,
    /// A k3d cluster named `testware` (needs k3d and Docker).
    K3d,
}

impl Provider {
    fn program(self) -> &'static str {
        match self {
            Self::Local => "testware",
            Self::Kind => "kind",
            Self::K3d => "k3d",
        }
    }
}

/// `testware cluster …`.
#[derive(Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
    /// Which cluster.
    #[arg(long, value_enum, default_value = "local", global = true)]
    provider: Provider,
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Start the cluster (idempotent) and print its kubeconfig's path.
    Up {
        /// The Kubernetes release (local provider): a minor such as 1.34 (its
        /// pinned patch release) or an exact one such as 1.34.2; built from the
        /// Go module proxy into the cache on first use.
        #[arg(long, value_name = "VERSION", env = local_cluster::release::ENV_KUBERNETES,
              default_value_t = local_cluster::release::DEFAULT_KUBERNETES)]
        kubernetes: Kubernetes,
        /// Official Kubernetes release binaries to run instead of the ones
        /// built from the Go module proxy (etcd is still built).
        #[arg(long, value_name = "DIR", env = "HARNESS_KUBE_BIN_DIR")]
        bin_dir: Option<PathBuf>,
        /// Write the kubeconfig here (default: the cluster's state directory,
        /// or for kind and k3d the cache).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// Nodes (local provider): the first runs the control plane, each other
        /// is a host of its own in a network namespace.
        #[arg(long, default_value_t = 1, value_name = "N")]
        nodes: usize,
        /// A node group (local provider), repeatable: NAME=COUNT, or
        /// NAME=COUNT:taint to keep pods that do not tolerate it off its nodes.
        /// Nodes are labelled `testware.io/node-group=NAME`, in the order given.
        #[arg(long = "node-group", value_name = "NAME=COUNT[:taint]")]
        node_groups: Vec<local_cluster::shape::GroupArg>,
    },
    /// Stop the cluster and remove everything it made on this machine.
    Down,
    /// Faults on a node of the local cluster (not the first, which runs the control plane).
    Node {
        #[command(subcommand)]
        action: NodeAction,
    },
    /// The cluster's components and addons, one line each; fails when one is unhealthy.
    Status,
    /// List what a cluster left on this machine (processes, mounts, links,
    /// iptables chains); fails when anything is.
    Leftovers,
    /// Return the running cluster to its state right after `up`: every
    /// namespace and cluster-scoped object made since (by tests) deleted and
    /// awaited, the addons serving.
    Reset {
        /// The kubeconfig `up` printed (kind and k3d; default: where `up` writes it).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// Also remove the images imported since `up` (local provider), such as
        /// a repository's own (`testware images import` loads them again).
        #[arg(long)]
        images: bool,
    },
}

/// `testware cluster node …`.
#[derive(Subcommand)]
enum NodeAction {
    /// Stop the node's kubelet, kube-proxy, containerd and every container (a
    /// reclaimed spot instance).
    Lose {
        /// The node.
        name: String,
    },
    /// Take the node's link down; its pods keep running but nothing reaches it.
    CutOff {
        /// The node.
        name: String,
    },
    /// Undo every fault on the node: link up, its daemons started and healthy.
    Restore {
        /// The node.
        name: String,
    },
}

/// How long a reset may take.
const RESET_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

/// Runs `testware cluster …`.
///
/// # Errors
/// The step that failed, with a hint.
pub async fn run(args: ClusterArgs, cache: &Path) -> anyhow::Result<()> {
    let provider = args.provider;
    match (args.command, provider) {
        (
            ClusterCommand::Up {
                kubernetes,
                bin_dir,
                kubeconfig,
                nodes,
                node_groups,
            },
            Provider::Local,
        ) => {
            let shape = local_cluster::shape::Shape::of_groups(nodes, &node_groups)?;
            let started = Instant::now();
            let layout = Layout::from_env();
            provision::ensure_packages()?;
            let binaries = match bin_dir {
                Some(dir) => {
                    let etcd = provision::ensure_release(
                        cache,
                        "etcd",
                        local_cluster::release::ETCD_VERSION,
                    )?;
                    Binaries::new(dir, etcd.join("etcd"))
                }
                None => provision::ensure_binaries(cache, kubernetes)?,
            };
            let cluster = LocalCluster::new(layout, binaries).with_shape(shape);
            cluster.check_prerequisites()?;
            let archives = addon_archives(cache)?;
            let path = kubeconfig.unwrap_or_else(|| default_kubeconfig(&cluster.layout));
            let fresh = cluster.up_serving(&archives, &path).await?;
            let client = cluster.admin_client().await?;
            record_baseline(&client, &baseline_path(Provider::Local, cache), fresh).await?;
            if fresh || !images::baseline_recorded(&cluster.layout) {
                images::record_baseline(&cluster.layout)?;
            }
            eprintln!(
                "local cluster {} in {:.1} s",
                if fresh {
                    "started"
                } else {
                    "already running; checked"
                },
                started.elapsed().as_secs_f64()
            );
            println!("{}", path.display());
        }
        (
            ClusterCommand::Up {
                nodes, node_groups, ..
            },
            external,
        ) if nodes != 1 || !node_groups.is_empty() => {
            bail!("--nodes and --node-group shape the local provider's cluster ({external:?} clusters are shaped by their own configuration)")
        }
        (ClusterCommand::Node { action }, Provider::Local) => {
            let cluster = local();
            match action {
                NodeAction::Lose { name } => {
                    cluster.inject(&name, local_cluster::node::Fault::Lost)?;
                    eprintln!("node {name} lost: its kubelet, kube-proxy, containerd and containers stopped");
                }
                NodeAction::CutOff { name } => {
                    cluster.inject(&name, local_cluster::node::Fault::CutOff)?;
                    eprintln!("node {name} cut off: its link is down, its pods keep running");
                }
                NodeAction::Restore { name } => {
                    cluster.restore(&name).await?;
                    eprintln!("node {name} restored: link up, daemons running");
                }
            }
        }
        (ClusterCommand::Node { .. }, external) => {
            bail!("node faults are the local provider's ({external:?} nodes are containers: `docker stop` or `docker network disconnect` one)")
        }
        (ClusterCommand::Up { kubeconfig, .. }, external) => {
            let path = kubeconfig
                .unwrap_or_else(|| cache.join(format!("{}.kubeconfig", external.program())));
            let fresh = external_up(external, &path)?;
            images::load_into(external.program(), CLUSTER_NAME, &addon_archives(cache)?)?;
            let client = client_of(&path).await?;
            record_baseline(&client, &baseline_path(external, cache), fresh).await?;
            println!("{}", path.display());
        }
        (ClusterCommand::Down, Provider::Local) => {
            local().down()?;
            eprintln!("local cluster stopped; nothing of it is left");
        }
        (ClusterCommand::Down, external) => external_down(external)?,
        (ClusterCommand::Status, Provider::Local) => local_status().await?,
        (ClusterCommand::Status, external) => {
            let args: &[&str] = if external == Provider::Kind {
                &["get", "clusters"]
            } else {
                &["cluster", "list"]
            };
            print!("{}", run_tool(external.program(), args)?);
        }
        (ClusterCommand::Leftovers, Provider::Local) => {
            let left = local().leftovers();
            if !left.is_empty() {
                for l in &left {
                    println!("{l}");
                }
                bail!("{} leftover(s) of the local cluster", left.len());
            }
            println!("nothing of the local cluster is left on this machine");
        }
        (ClusterCommand::Reset { images, .. }, Provider::Local) => {
            let cluster = local();
            let client = cluster
                .admin_client()
                .await
                .context("the local cluster is not running (hint: `testware cluster up`)")?;
            reset(&client, &baseline_path(Provider::Local, cache)).await?;
            if images {
                remove_images_since_up(&cluster.layout)?;
                testware::images::forget_imports(&client)
                    .await
                    .context("marking the cluster's images as changed")?;
            }
            addons::wait_serving(&client).await?;
            eprintln!("addons serving");
        }
        (ClusterCommand::Reset { images: true, .. }, external) => {
            bail!("--images resets the local provider's images only ({external:?} keeps them in its node containers)")
        }
        (ClusterCommand::Reset { kubeconfig, .. }, external) => {
            let path = kubeconfig
                .unwrap_or_else(|| cache.join(format!("{}.kubeconfig", external.program())));
            let client = client_of(&path).await?;
            reset(&client, &baseline_path(external, cache)).await?;
        }
        (ClusterCommand::Leftovers, external) => {
            bail!("leftovers are listed for the local provider only ({external:?} keeps its clusters in Docker: `{} … list` shows them)", external.program())
        }
    }
    Ok(())
}

/// Records the cluster's state right after `up` for `reset`: when it was just
/// started, or when no baseline is recorded yet (a cluster started by an older
/// `testware`: its state now counts as the baseline).
async fn record_baseline(
    client: &testware::kube::Client,
    path: &Path,
    fresh: bool,
) -> anyhow::Result<()> {
    if fresh || !path.is_file() {
        let baseline = testware::cluster::baseline::capture(client).await?;
        baseline
            .save(path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Where `up` records the baseline `reset` returns to: in the local cluster's
/// state directory (`down` removes it), or for kind and k3d in the cache.
pub fn baseline_path(provider: Provider, cache: &Path) -> PathBuf {
    match provider {
        Provider::Local => Layout::from_env().path("baseline.json"),
        external => cache.join(format!("{}.baseline.json", external.program())),
    }
}

/// Removes from the local cluster the images imported since `up`, and says which.
fn remove_images_since_up(layout: &Layout) -> anyhow::Result<()> {
    let since = images::remove_since_baseline(layout)?;
    let names: Vec<&str> = since
        .iter()
        .map(String::as_str)
        .filter(|r| !r.starts_with("sha256:"))
        .collect();
    eprintln!(
        "removed {} image(s) imported since up{}",
        names.len(),
        if names.is_empty() {
            String::new()
        } else {
            format!(": {}", names.join(", "))
        }
    );
    Ok(())
}

/// A client of the cluster in the kubeconfig at `path`.
async fn client_of(path: &Path) -> anyhow::Result<testware::kube::Client> {
    let kubeconfig = testware::kube::config::Kubeconfig::read_from(path).with_context(|| {
        format!(
            "reading {} (hint: `testware cluster up` writes it)",
            path.display()
        )
    })?;
    let config =
        testware::kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(testware::kube::Client::try_from(config)?)
}

/// Deletes what was made since the baseline at `baseline` and says what and how fast.
pub async fn reset(client: &testware::kube::Client, baseline: &Path) -> anyhow::Result<()> {
    let recorded = testware::cluster::baseline::Baseline::load(baseline).with_context(|| {
        format!(
            "reading the baseline {} (hint: `testware cluster up` records it)",
            baseline.display()
        )
    })?;
    let done = testware::cluster::baseline::reset(client, &recorded, RESET_TIMEOUT).await?;
    eprintln!(
        "cluster reset in {:.1} s: deleted {} namespace(s) and {} other object(s){}",
        done.took.as_secs_f64(),
        done.namespaces.len(),
        done.objects.len(),
        if done.objects.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                done.objects
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    Ok(())
}

/// The running local cluster (binaries as recorded at `up`: `down`, `status`
/// and `leftovers` start nothing).
fn local() -> LocalCluster {
    let layout = Layout::from_env();
    let bins = Binaries::of_running(&layout, &testware::config::Tools::from_process().cache_dir);
    LocalCluster::new(layout, bins)
}

/// The kubeconfig `up` writes by default: in the state directory, so `down`
/// removes it with everything else.
fn default_kubeconfig(layout: &Layout) -> PathBuf {
    layout.path("kubeconfig")
}

/// The addons' images made from this executable, as archives.
fn addon_archives(cache: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let executable = std::env::current_exe().context("finding the testware executable")?;
    let specs = images::addon_images(&executable)?;
    let scratch = scratch_dir(cache);
    let built = images::build(&specs, cache, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    built
}

/// A scratch directory for image contexts, one per process (removed after use).
pub fn scratch_dir(cache: &Path) -> PathBuf {
    images::archive_dir(cache)
        .join("contexts")
        .join(std::process::id().to_string())
}

async fn local_status() -> anyhow::Result<()> {
    let cluster = local();
    let mut healthy = true;
    let mut line = |name: &str, state: Result<String, String>| match state {
        Ok(detail) => println!("{name:<24} ok       {detail}"),
        Err(reason) => {
            healthy = false;
            println!("{name:<24} FAILED   {reason}");
        }
    };
    let components = cluster.status().await;
    let running = components.iter().all(|s| s.state.is_ok());
    for s in components {
        line(&s.name, s.state);
    }
    if running {
        let client = cluster.admin_client().await?;
        let version = client
            .apiserver_version()
            .await
            .map(|v| format!("server {}", v.git_version))
            .map_err(|e| format!("reading the server's version: {e}"));
        line("kubernetes", version);
        for (name, state) in addons::status(&client).await {
            line(name, state);
        }
    }
    if !healthy {
        bail!(
            "the local cluster is not healthy (hint: `testware cluster up` starts or repairs it)"
        );
    }
    Ok(())
}

fn run_tool(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .with_context(|| {
            format!("failed to run {program} (hint: install {program}, or use --provider local)")
        })?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Creates the kind or k3d cluster unless it exists, and writes its kubeconfig
/// to `path`; returns whether it created it.
fn external_up(provider: Provider, path: &Path) -> anyhow::Result<bool> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let path_text = path.display().to_string();
    let created;
    if provider == Provider::Kind {
        created = !run_tool("kind", &["get", "clusters"])?
            .lines()
            .any(|l| l == CLUSTER_NAME);
        if created {
            run_tool(
                "kind",
                &[
                    "create",
                    "cluster",
                    "--name",
                    CLUSTER_NAME,
                    "--wait",
                    "120s",
                ],
            )?;
        }
        std::fs::write(
            path,
            run_tool("kind", &["get", "kubeconfig", "--name", CLUSTER_NAME])?,
        )?;
    } else {
        created = !run_tool("k3d", &["cluster", "list", "--no-headers"])?
            .lines()
            .any(|l| l.split_whitespace().next() == Some(CLUSTER_NAME));
        if created {
            run_tool(
                "k3d",
                &[
                    "cluster",
                    "create",
                    CLUSTER_NAME,
                    "--kubeconfig-update-default=false",
                    "--wait",
                ],
            )?;
        }
        run_tool(
            "k3d",
            &["kubeconfig", "write", CLUSTER_NAME, "--output", &path_text],
        )?;
    }
    Ok(created)
}

fn external_down(provider: Provider) -> anyhow::Result<()> {
    let args: &[&str] = if provider == Provider::Kind {
        &["delete", "cluster", "--name", CLUSTER_NAME]
    } else {
        &["cluster", "delete", CLUSTER_NAME]
    };
    run_tool(provider.program(), args).map(drop)
}
