//! `testware-cluster`: start, stop and inspect the cluster the tests run against,
//! and build and load the project's images.
//!
//! ```text
//! testware-cluster up [--provider local|kind|k3d] [--bin-dir DIR] [--repo DIR]
//! testware-cluster down [--provider local|kind|k3d]
//! testware-cluster status
//! testware-cluster leftovers
//! testware-cluster images build|load [--provider local|kind|k3d|podman]
//! ```
//!
//! `up` builds and loads only the addons' images (what a cluster needs, and the
//! toolbox); `images build|load` makes every image of this repository: the
//! addons, the charts' images and those of Debian's and cached binaries.
//! `images load --provider podman` loads them into podman's store for the
//! component tier (see `ci/container-engine`) and prints what it loaded.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context as _};
use local_cluster::addons;
use local_cluster::cluster::LocalCluster;
use local_cluster::components::Binaries;
use local_cluster::images::{self, ImageSet};
use local_cluster::layout::Layout;

/// Cluster name for kind and k3d.
const CLUSTER_NAME: &str = "testware";

struct Options {
    command: Vec<String>,
    provider: String,
    bin_dir: Option<PathBuf>,
    repo: PathBuf,
}

fn parse() -> anyhow::Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        command: Vec::new(),
        provider: "local".into(),
        bin_dir: std::env::var_os("HARNESS_KUBE_BIN_DIR").map(PathBuf::from),
        repo: std::env::current_dir()?,
    };
    while let Some(arg) = args.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .with_context(|| format!("{name} needs a value"))
        };
        match key.as_str() {
            "--provider" => options.provider = value("--provider")?,
            "--bin-dir" => options.bin_dir = Some(PathBuf::from(value("--bin-dir")?)),
            "--repo" => options.repo = PathBuf::from(value("--repo")?),
            "-h" | "--help" => options.command = vec!["help".into()],
            flag if flag.starts_with('-') => bail!("unknown option {flag} (see --help)"),
            _ => options.command.push(arg),
        }
    }
    let images = options.command.first().is_some_and(|c| c == "images");
    let known = match options.provider.as_str() {
        "local" | "kind" | "k3d" => true,
        "podman" => images,
        _ => false,
    };
    if !known {
        bail!(
            "unknown provider {:?} (expected local, kind or k3d; podman for `images load`)",
            options.provider
        );
    }
    Ok(options)
}

fn kubeconfig_path(repo: &std::path::Path) -> PathBuf {
    repo.join("target/cluster/kubeconfig")
}

fn local(options: &Options) -> LocalCluster {
    let binaries = match &options.bin_dir {
        Some(dir) => Binaries::new(dir.clone()),
        None => Binaries::cached(&testware::helm::cache_dir()),
    };
    LocalCluster::new(Layout::from_env(), binaries)
}

async fn run(options: Options) -> anyhow::Result<()> {
    let words: Vec<&str> = options.command.iter().map(String::as_str).collect();
    let cache = testware::helm::cache_dir();
    match (words.as_slice(), options.provider.as_str()) {
        (["up"], "local") => {
            let started = Instant::now();
            let cluster = local(&options);
            cluster.check_prerequisites()?;
            eprintln!("building the addons' images");
            let archives = images::build(&options.repo, &cache, ImageSet::Cluster)?;
            let fresh = cluster.up(&archives).await?;
            if !fresh {
                for archive in &archives {
                    images::import(&cluster.layout, archive)?;
                }
            }
            let client = cluster.admin_client().await?;
            addons::install(&client, &cluster.layout)
                .await
                .context("installing the addons")?;
            addons::wait_serving(&client).await?;
            let path = kubeconfig_path(&options.repo);
            cluster.export_kubeconfig(&path)?;
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
        (["down"], "local") => {
            local(&options).down()?;
            let _ = std::fs::remove_file(kubeconfig_path(&options.repo));
            eprintln!("local cluster stopped; nothing of it is left");
        }
        (["status"], "local") => {
            let cluster = local(&options);
            let mut healthy = true;
            for s in cluster.status().await {
                match s.state {
                    Ok(detail) => println!("{:<24} ok       {detail}", s.name),
                    Err(reason) => {
                        healthy = false;
                        println!("{:<24} FAILED   {reason}", s.name);
                    }
                }
            }
            if healthy {
                let client = cluster.admin_client().await?;
                for (name, state) in addons::status(&client).await {
                    match state {
                        Ok(detail) => println!("{name:<24} ok       {detail}"),
                        Err(reason) => {
                            healthy = false;
                            println!("{name:<24} FAILED   {reason}");
                        }
                    }
                }
            }
            if !healthy {
                bail!("the local cluster is not healthy");
            }
        }
        (["leftovers"], "local") => {
            let left = local(&options).leftovers();
            if left.is_empty() {
                println!("nothing of the local cluster is left on this machine");
            } else {
                for l in &left {
                    println!("{l}");
                }
                bail!("{} leftover(s) of the local cluster", left.len());
            }
        }
        (["images", "build"], _) => {
            for archive in images::build(&options.repo, &cache, ImageSet::Repository)? {
                println!("{}", archive.display());
            }
        }
        (["images", "load"], "podman") => {
            for reference in images::load_into_podman(&images::build(
                &options.repo,
                &cache,
                ImageSet::Repository,
            )?)? {
                println!("{reference}");
            }
        }
        (["images", "load"], provider) => {
            let archives = images::build(&options.repo, &cache, ImageSet::Repository)?;
            if provider == "local" {
                let cluster = local(&options);
                for archive in &archives {
                    images::import(&cluster.layout, archive)?;
                }
            } else {
                images::load_into(provider, CLUSTER_NAME, &archives)?;
            }
        }
        (["up"], provider) => {
            let path = kubeconfig_path(&options.repo);
            external_up(provider, &path)?;
            images::load_into(
                provider,
                CLUSTER_NAME,
                &images::build(&options.repo, &cache, ImageSet::Cluster)?,
            )?;
            println!("{}", path.display());
        }
        (["down"], provider) => external_down(provider)?,
        (["status"], provider) => {
            let (program, args): (&str, &[&str]) = if provider == "kind" {
                ("kind", &["get", "clusters"])
            } else {
                ("k3d", &["cluster", "list"])
            };
            let out = std::process::Command::new(program)
                .args(args)
                .output()
                .with_context(|| format!("failed to run {program}"))?;
            print!("{}", String::from_utf8_lossy(&out.stdout));
        }
        (["help"], _) | ([], _) => {
            println!("usage: testware-cluster up|down|status|leftovers [--provider local|kind|k3d] [--bin-dir DIR] [--repo DIR]\n       testware-cluster images build|load [--provider local|kind|k3d]");
        }
        (other, _) => bail!("unknown command {:?} (see --help)", other.join(" ")),
    }
    Ok(())
}

/// Creates the kind or k3d cluster unless it exists, and writes its kubeconfig to `path`.
fn external_up(provider: &str, path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let run = |program: &str, args: &[&str]| -> anyhow::Result<String> {
        let out = std::process::Command::new(program)
            .args(args)
            .output()
            .with_context(|| {
                format!(
                    "failed to run {program} (hint: install {program}, or use --provider local)"
                )
            })?;
        if !out.status.success() {
            bail!(
                "`{program} {}` failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let path_text = path.display().to_string();
    match provider {
        "kind" => {
            if !run("kind", &["get", "clusters"])?
                .lines()
                .any(|l| l == CLUSTER_NAME)
            {
                run(
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
                run("kind", &["get", "kubeconfig", "--name", CLUSTER_NAME])?,
            )?;
        }
        _ => {
            if !run("k3d", &["cluster", "list", "--no-headers"])?
                .lines()
                .any(|l| l.split_whitespace().next() == Some(CLUSTER_NAME))
            {
                run(
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
            run(
                "k3d",
                &["kubeconfig", "write", CLUSTER_NAME, "--output", &path_text],
            )?;
        }
    }
    Ok(())
}

fn external_down(provider: &str) -> anyhow::Result<()> {
    let (program, args): (&str, Vec<&str>) = match provider {
        "kind" => ("kind", vec!["delete", "cluster", "--name", CLUSTER_NAME]),
        _ => ("k3d", vec!["cluster", "delete", CLUSTER_NAME]),
    };
    let status = std::process::Command::new(program)
        .args(&args)
        .status()
        .with_context(|| format!("failed to run {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed", args.join(" "));
    }
    Ok(())
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
