//! The `testware` command.
//!
//! `testware janitor` deletes the test namespaces whose run stopped renewing them
//! (killed runs), or with `--run <id>` every namespace of one run. Every
//! chart_deploy run does the first at its start; the command is for doing it by
//! hand or from a pipeline's cleanup job.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use testware::RunConfig;

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
