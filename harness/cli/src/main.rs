//! The `testware` command.
//!
//! - `testware check <chart-dir>… [--values F] [--rule R] [--kube-version V]
//!   [--node-selector-key K] [--tolerations-key K] [--storage-class-key K]
//!   [--dependency-build] [--api-versions V] [--include-test-hooks] [--junit F]`
//!   renders each chart with each of its value sets (defaults, `ci/*.yaml`,
//!   `values-*.yaml`; or the `--values` files) for Kubernetes `V` (default 1.33)
//!   and runs the policy rules (or only the `--rule`s) and `helm lint --strict`: a report
//!   per chart and values set, JUnit if asked, exit status 1 when anything failed.
//!   The no_deploy checks on a team's own charts, before writing any Rust.
//! - `testware janitor` deletes the test namespaces whose run stopped renewing
//!   them (killed runs), or with `--run <id>` every namespace of one run. Every
//!   chart_deploy run does the first at its start; the command is for doing it by
//!   hand or from a pipeline's cleanup job.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use testware::junit::{CaseRecord, CaseStatus};
use testware::manifest::api_versions::KubeVersion;
use testware::manifest::policy;
use testware::{ChartSet, RunConfig, ValueSet};

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
enum Command {
    /// Check charts without a cluster: policy rules and `helm lint --strict`.
    Check {
        /// Chart directories (each with a Chart.yaml).
        #[arg(required = true, value_name = "CHART_DIR")]
        charts: Vec<PathBuf>,
        /// Values files to check each chart with, instead of its own value sets.
        #[arg(long = "values", value_name = "FILE")]
        values: Vec<PathBuf>,
        /// Check only this rule (repeatable; default every rule).
        #[arg(long = "rule", value_name = "RULE", value_parser = policy::Rule::from_id)]
        rules: Vec<policy::Rule>,
        /// Render for this Kubernetes release and check API versions against it
        /// (e.g. 1.25; default 1.33).
        #[arg(long, value_name = "VERSION", value_parser = KubeVersion::parse)]
        kube_version: Option<KubeVersion>,
        /// The chart's value key for a node selector map (default global.nodeSelector).
        #[arg(long, value_name = "KEY")]
        node_selector_key: Option<String>,
        /// The chart's value key for a tolerations list (default global.tolerations).
        #[arg(long, value_name = "KEY")]
        tolerations_key: Option<String>,
        /// The chart's value key for a storage class name (default global.storageClass).
        #[arg(long, value_name = "KEY")]
        storage_class_key: Option<String>,
        /// Build each chart's dependencies first (`helm dependency build
        /// --skip-refresh`; writes them into its charts/ directory).
        #[arg(long)]
        dependency_build: bool,
        /// An API version the templates see as available (repeatable;
        /// `helm template --api-versions`, e.g. monitoring.coreos.com/v1).
        #[arg(long = "api-versions", value_name = "VERSION")]
        api_versions: Vec<String>,
        /// Check `helm test` hook pods too (left out by default: they run only
        /// under `helm test`).
        #[arg(long)]
        include_test_hooks: bool,
        /// Write a JUnit report here.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Delete the namespaces that killed runs left behind.
    Janitor {
        /// Delete every namespace of this run id instead of the expired ones.
        #[arg(long, value_name = "RUN_ID")]
        run: Option<String>,
        /// The kubeconfig context to use (default: HARNESS_KUBE_CONTEXT, else the current one).
        #[arg(long, value_name = "NAME")]
        kube_context: Option<String>,
    },
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check {
            charts,
            values,
            rules,
            kube_version,
            node_selector_key,
            tolerations_key,
            storage_class_key,
            dependency_build,
            api_versions,
            include_test_hooks,
            junit,
        } => {
            let defaults = policy::ValueKeys::default();
            let options = policy::CheckOptions {
                kube_version,
                rules,
                include_test_hooks,
                value_keys: policy::ValueKeys {
                    node_selector: node_selector_key.unwrap_or(defaults.node_selector),
                    tolerations: tolerations_key.unwrap_or(defaults.tolerations),
                    storage_class: storage_class_key.unwrap_or(defaults.storage_class),
                },
                dependency_build,
                api_versions,
            };
            match check(&charts, &values, &options, junit.as_deref()).await {
                Ok(0) => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Janitor { run, kube_context } => match janitor(run, kube_context).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

async fn janitor(run: Option<String>, kube_context: Option<String>) -> anyhow::Result<()> {
    let mut args = vec!["testware".to_owned()];
    args.extend(
        kube_context
            .into_iter()
            .flat_map(|c| ["--kube-context".to_owned(), c]),
    );
    let (config, _) = RunConfig::parse(args, |key| std::env::var(key).ok())?;
    let client = testware::cluster::client(&config).await.map_err(|e| {
        anyhow::anyhow!(
            "{} (hint: set KUBECONFIG or --kube-context)",
            testware::error_chain(&e)
        )
    })?;
    let names = match &run {
        Some(id) => {
            testware::namespace::delete_run_namespaces(&client, id, Duration::from_secs(120)).await
        }
        None => testware::namespace::reap_expired(&client).await,
    }?;
    if names.is_empty() {
        println!("nothing to delete");
    } else {
        println!("deleted: {}", names.join(", "));
    }
    Ok(())
}

/// Runs the checks; returns how many failed.
async fn check(
    charts: &[PathBuf],
    values: &[PathBuf],
    options: &policy::CheckOptions,
    junit: Option<&std::path::Path>,
) -> anyhow::Result<usize> {
    let mut records = Vec::new();
    for dir in charts {
        let dir = std::path::absolute(dir)?;
        let (Some(root), Some(name)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str()))
        else {
            anyhow::bail!("{} is not a chart directory", dir.display());
        };
        let set = ChartSet::new(root);
        let chart = set.open(name)?;
        let sets = if values.is_empty() {
            chart.value_sets()
        } else {
            values
                .iter()
                .map(|f| {
                    Ok(ValueSet::file(
                        f.display().to_string(),
                        std::path::absolute(f)?,
                    ))
                })
                .collect::<std::io::Result<Vec<_>>>()?
        };
        for value_set in sets {
            let label = format!("{name}::{}", value_set.label);
            let started = Instant::now();
            let policy_status =
                match policy::check_chart_with(&set, name, &value_set, options).await {
                    Ok(report) if report.passes() => {
                        if !report.violations.is_empty() {
                            println!("{report}");
                        }
                        CaseStatus::Passed
                    }
                    Ok(report) => CaseStatus::Failed(report.to_string()),
                    Err(e) => CaseStatus::Failed(testware::error_chain(&e)),
                };
            records.push(record(format!("policy::{label}"), started, policy_status));
            let started = Instant::now();
            let lint_status = match set.lint(name, &value_set.options()).await {
                Ok(_) => CaseStatus::Passed,
                Err(e) => CaseStatus::Failed(testware::error_chain(&e)),
            };
            records.push(record(format!("lint::{label}"), started, lint_status));
        }
    }
    let failed: Vec<&CaseRecord> = records
        .iter()
        .filter(|r| matches!(r.status, CaseStatus::Failed(_)))
        .collect();
    for r in &records {
        match &r.status {
            CaseStatus::Failed(message) => println!("FAIL {}\n{}\n", r.name, indent(message)),
            _ => println!("ok   {}", r.name),
        }
    }
    println!(
        "\n{} checks: {} passed, {} failed",
        records.len(),
        records.len() - failed.len(),
        failed.len()
    );
    if let Some(path) = junit {
        testware::junit::write(path, "testware-check", &records)?;
    }
    Ok(failed.len())
}

fn record(name: String, started: Instant, status: CaseStatus) -> CaseRecord {
    CaseRecord {
        name,
        kind: "no_deploy".into(),
        duration: started.elapsed(),
        properties: vec![("tier".into(), "no_deploy".into())],
        status,
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("     {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
