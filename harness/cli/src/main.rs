//! The `testware` command: everything a charts repository needs around its
//! suites.
//!
//! - `testware cluster up|down|status|leftovers [--provider local|kind|k3d]`:
//!   the embedded cluster (see the `cluster` module).
//! - `testware images build|import|list`: the images the workspace's packages
//!   declare (see the `images` module).
//! - `testware check <chart-dir>… [--values F[,F…]] [--rule R] [--kube-version V]
//!   [--node-selector-key K]… [--tolerations-key K]… [--storage-class-key K]…
//!   [--external-ref Kind/name]… [--requests-only] [--dependency-build] [--dependency-dir D]…
//!   [--since REF] [--api-versions V] [--include-test-hooks] [--skip-tests] [--debug] [--junit F]`
//!   renders each chart with each of its value sets (defaults, `ci/*.yaml`,
//!   `values-*.yaml`; or the `--values` sets, comma-separated files layered) for
//!   Kubernetes `V` (default 1.37) and runs the policy rules and `helm lint
//!   --strict` (or only the `--rule`s): a report per chart and values set, JUnit
//!   if asked, exit status 1 when anything failed. Remote dependencies not on
//!   disk (nor in a `--dependency-dir`) are named once per chart and the rest
//!   checked without them. With `--since REF` only the charts changed since
//!   the ref, each of which must have raised its version.
//!   The no_deploy checks on a team's own charts, before writing any Rust.
//! - `testware cache status|clear`: the renders kept across runs (see
//!   `testware::charts::render_cache`).
//! - `testware janitor` deletes the test namespaces whose run stopped renewing
//!   them (killed runs), or with `--run <id>` every namespace of one run. Every
//!   chart_deploy run does the first at its start; the command is for doing it by
//!   hand or from a pipeline's cleanup job. Claimed cluster-scoped objects of
//!   killed runs go with them.
//! - `testware shard --junit DIR --shards N [--out FILE]` splits the cases over N
//!   shards balanced by a previous run's times; `--failed` plans a rerun of its
//!   failed cases (see `testware::runner::shard`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use testware::manifest::api_versions::KubeVersion;
use testware::manifest::policy;

mod check;
mod cluster;
mod fetch;
mod images;
mod janitor;
mod shard;

#[derive(Parser)]
#[command(
    name = "testware",
    version,
    about = "Chores around a charts repository's test runs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
// Parsed once and matched once: the size of `check`'s many flags costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Check charts without a cluster: policy rules and `helm lint --strict`.
    Check {
        /// Chart directories (each with a Chart.yaml), or directories of charts.
        #[arg(required = true, value_name = "CHART_DIR")]
        charts: Vec<PathBuf>,
        /// A values file to check each chart with, instead of its own value sets
        /// (repeatable: each is a set of its own). `base.yaml,prod.yaml` is one set
        /// of two files, the later over the earlier, as Argo CD and helmfile layer
        /// them. Pipes (`<(…)`) are read once.
        #[arg(long = "values", value_name = "FILE[,FILE…]")]
        values: Vec<String>,
        /// Check only this rule (repeatable; default every rule, and `helm lint
        /// --strict`, which a choice of rules leaves out).
        #[arg(long = "rule", value_name = "RULE", value_parser = policy::Rule::from_id)]
        rules: Vec<policy::Rule>,
        /// Render for this Kubernetes release and check API versions against it
        /// (e.g. 1.25; default 1.37, the newest the embedded cluster runs).
        #[arg(long, value_name = "VERSION", value_parser = KubeVersion::parse)]
        kube_version: Option<KubeVersion>,
        /// A value key the chart takes a node selector map at (repeatable, for
        /// charts with a key per component; default global.nodeSelector).
        #[arg(long, value_name = "KEY")]
        node_selector_key: Vec<String>,
        /// A value key the chart takes a tolerations list at (repeatable;
        /// default global.tolerations).
        #[arg(long, value_name = "KEY")]
        tolerations_key: Vec<String>,
        /// A value key the chart takes a storage class name at (repeatable;
        /// default global.storageClass).
        #[arg(long, value_name = "KEY")]
        storage_class_key: Vec<String>,
        /// An object provided outside the release, which references may name
        /// (repeatable; e.g. Secret/registry-credentials).
        #[arg(long = "external-ref", value_name = "KIND/NAME", value_parser = external_ref)]
        external_refs: Vec<String>,
        /// Ask for resource requests only, not limits (a policy that lets pods
        /// burst).
        #[arg(long)]
        requests_only: bool,
        /// Build each chart's dependencies first (`helm dependency build
        /// --skip-refresh`; writes them into its charts/ directory).
        #[arg(long)]
        dependency_build: bool,
        /// A directory of chart archives (`<name>-<version>.tgz`, as `helm pull`
        /// writes them) that remote dependencies missing from a chart's charts/
        /// are taken from (repeatable): checks umbrella charts offline.
        #[arg(long = "dependency-dir", value_name = "DIR")]
        dependency_dirs: Vec<PathBuf>,
        /// Only the charts whose files (or `file://` dependencies) changed since
        /// this git ref (against its merge base with HEAD, uncommitted changes
        /// included); a changed chart whose version was not raised fails.
        #[arg(long, value_name = "REF")]
        since: Option<String>,
        /// An API version the templates see as available (repeatable;
        /// `helm template --api-versions`, e.g. monitoring.coreos.com/v1).
        #[arg(long = "api-versions", value_name = "VERSION")]
        api_versions: Vec<String>,
        /// Check `helm test` hook pods too (left out by default: they run only
        /// under `helm test`).
        #[arg(long, conflicts_with = "skip_tests")]
        include_test_hooks: bool,
        /// Render without `helm test` hooks (`helm template --skip-tests`).
        #[arg(long)]
        skip_tests: bool,
        /// Render with helm's debug log, which a failed render's error carries.
        #[arg(long)]
        debug: bool,
        /// Hold each chart × value set's render against its insta snapshot
        /// (`<chart>__<value set>.snap` in --snapshot-dir): a missing or stale
        /// one fails; where CI is unset the render is left as `.snap.new` for
        /// `cargo insta review`; INSTA_UPDATE=always accepts renders as they are.
        #[arg(long)]
        snapshot: bool,
        /// Where the snapshots are kept.
        #[arg(
            long,
            value_name = "DIR",
            default_value = "snapshots",
            requires = "snapshot"
        )]
        snapshot_dir: PathBuf,
        /// Replace what this insta selector picks in a snapshot with
        /// `[redacted]` (repeatable; e.g. `[].object.metadata.labels.build`),
        /// beside the volatile fields always redacted.
        #[arg(long = "redact", value_name = "SELECTOR", requires = "snapshot")]
        redactions: Vec<String>,
        /// Report each chart's template coverage over its value sets: the
        /// branches (`if`/`else`, `with`, `range`, `define`) and value keys no
        /// value set exercises, with file and line (a case `coverage::<chart>`).
        #[arg(long)]
        coverage: bool,
        /// Fail a chart whose value sets take fewer of its branches than this
        /// (percent).
        #[arg(long, value_name = "PERCENT", requires = "coverage")]
        coverage_min: Option<f64>,
        /// Write a JUnit report here.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Start, stop and inspect the cluster the tests run against.
    Cluster(cluster::ClusterArgs),
    /// Build the images the workspace declares and load them into a cluster.
    Images(images::ImagesArgs),
    /// The render cache: `helm template` output kept across runs, keyed by
    /// content (HARNESS_RENDER_CACHE=0 turns it off).
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Delete the namespaces that killed runs left behind.
    Janitor {
        /// Delete every namespace of this run id instead of the expired ones.
        #[arg(long, value_name = "RUN_ID")]
        run: Option<String>,
        /// The kubeconfig context to use (default: HARNESS_KUBE_CONTEXT, else the current one).
        #[arg(long, value_name = "NAME")]
        kube_context: Option<String>,
        /// Then, when no live run holds a namespace, return the cluster to its
        /// state right after `testware cluster up` (as `cluster reset`), which
        /// also removes the cluster-scoped objects a killed run left.
        #[arg(long, conflicts_with = "run")]
        reset: bool,
        /// Whose `up` recorded that state (with --reset).
        #[arg(long, value_enum, default_value = "local", requires = "reset")]
        provider: cluster::Provider,
    },
    /// Split the suites' cases over N shards balanced by the times of a
    /// previous run's JUnit reports, or plan a rerun of its failed cases.
    Shard {
        /// JUnit reports of the previous run: files, or directories searched
        /// recursively (the harness's own reports; nextest's are passed over).
        #[arg(long, value_name = "PATH", default_value = "target/harness/junit")]
        junit: Vec<PathBuf>,
        /// How many shards.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
        shards: u16,
        /// Plan only the cases that failed in those reports (one shard).
        #[arg(long, conflicts_with = "shards")]
        failed: bool,
        /// Where to write the plan (HARNESS_SHARD_PLAN takes it).
        #[arg(
            long,
            value_name = "FILE",
            default_value = "target/harness/shard-plan.json"
        )]
        out: PathBuf,
    },
}

/// `Kind/name`, as `--external-ref` takes it.
fn external_ref(text: &str) -> Result<String, String> {
    match text.split_once('/') {
        Some((kind, name)) if !kind.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "{text:?} is not Kind/name (e.g. Secret/registry-credentials)"
        )),
    }
}

#[derive(Subcommand)]
enum CacheAction {
    /// Delete every kept render (pinned downloads and builds stay).
    Clear,
    /// Say where the renders are kept and how many there are.
    Status,
}

fn main() -> ExitCode {
    // The addons' images run this executable under the addon's name.
    if let Some(code) = cluster_addons::run_if_invoked_as_addon(std::env::args_os().collect()) {
        return code;
    }
    let cli = Cli::parse();
    if matches!(cli.command, Command::Check { snapshot: true, .. })
        && std::env::var_os("INSTA_WORKSPACE_ROOT").is_none()
    {
        // insta's root for its settings (`.config/insta.yaml`): the directory
        // the check runs in, not wherever this executable was built (and
        // without `cargo metadata`, which a repository without Rust may lack).
        // Set before any thread starts.
        if let Ok(here) = std::env::current_dir() {
            std::env::set_var("INSTA_WORKSPACE_ROOT", here);
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> ExitCode {
    let failed = |e: anyhow::Error| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    };
    let tools = testware::config::Tools::from_process();
    let cache = tools.cache_dir.clone();
    match command {
        Command::Check {
            charts,
            values,
            rules,
            kube_version,
            node_selector_key,
            tolerations_key,
            storage_class_key,
            external_refs,
            requests_only,
            dependency_build,
            dependency_dirs,
            since,
            api_versions,
            include_test_hooks,
            skip_tests,
            debug,
            snapshot,
            snapshot_dir,
            redactions,
            coverage,
            coverage_min,
            junit,
        } => {
            let defaults = policy::ValueKeys::default();
            let or_default = |given: Vec<String>, default: Vec<String>| {
                if given.is_empty() {
                    default
                } else {
                    given
                }
            };
            let options = policy::CheckOptions {
                kube_version,
                rules,
                include_test_hooks,
                value_keys: policy::ValueKeys {
                    node_selector: or_default(node_selector_key, defaults.node_selector),
                    tolerations: or_default(tolerations_key, defaults.tolerations),
                    storage_class: or_default(storage_class_key, defaults.storage_class),
                },
                dependency_build,
                api_versions,
                external_refs,
                limits: if requests_only {
                    policy::Limits::Optional
                } else {
                    policy::Limits::Required
                },
                skip_tests,
                debug,
            };
            let fetched = fetch::ensure_helm(&tools).and_then(|()| fetch::ensure_schemas(&tools));
            if let Err(e) = fetched {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
            let snapshots = if snapshot {
                let kept = redactions.into_iter().try_fold(
                    testware::charts::snapshot::Snapshots::new(snapshot_dir),
                    testware::charts::snapshot::Snapshots::redact,
                );
                match kept {
                    Ok(kept) => Some(kept),
                    Err(e) => {
                        eprintln!("error: --redact: {e}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                None
            };
            let inputs = check::Inputs {
                charts,
                values,
                dependency_dirs,
                since,
                snapshots,
                coverage: coverage.then_some(check::CoverageGoal { min: coverage_min }),
            };
            match check::check(&inputs, &options, junit.as_deref()).await {
                Ok(0) => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Cluster(args) => cluster::run(args, &cache)
            .await
            .map_or_else(failed, |()| ExitCode::SUCCESS),
        Command::Images(args) => {
            images::run(args, &cache).map_or_else(failed, |()| ExitCode::SUCCESS)
        }
        Command::Cache { action } => {
            let renders = testware::charts::render_cache::RenderCache::new(cache.join("renders"));
            let kept = renders.len();
            match action {
                CacheAction::Status => {
                    let state = if tools.render_cache {
                        "on"
                    } else {
                        "off (HARNESS_RENDER_CACHE=0)"
                    };
                    println!(
                        "{kept} renders kept in {} (render cache {state})",
                        renders.dir().display()
                    );
                    ExitCode::SUCCESS
                }
                CacheAction::Clear => match renders.clear() {
                    Ok(()) => {
                        println!("removed {kept} renders from {}", renders.dir().display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => failed(anyhow::anyhow!("removing {}: {e}", renders.dir().display())),
                },
            }
        }
        Command::Janitor {
            run,
            kube_context,
            reset,
            provider,
        } => {
            let reset = reset.then(|| cluster::baseline_path(provider, &cache));
            janitor::janitor(run, kube_context, reset)
                .await
                .map_or_else(failed, |()| ExitCode::SUCCESS)
        }
        Command::Shard {
            junit,
            shards,
            failed: only_failed,
            out,
        } => shard::shard(&junit, shards.into(), only_failed, &out)
            .map_or_else(failed, |()| ExitCode::SUCCESS),
    }
}
