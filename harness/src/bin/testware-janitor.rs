//! The janitor as a command: deletes the harness namespaces whose run stopped
//! renewing them (killed runs), or with `--run <id>` every namespace of one run.
//! Every chart_deploy run does the first at its start; this is for doing it by hand
//! or from a pipeline's cleanup job.
//!
//! Usage: `testware-janitor [--run RUN_ID] [--kube-context NAME]`

use std::process::ExitCode;
use std::time::Duration;

use harness::RunConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut run = None;
    let mut rest = vec!["testware-janitor".to_owned()];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--run" => run = args.next(),
            "-h" | "--help" => {
                println!("usage: testware-janitor [--run RUN_ID] [--kube-context NAME]");
                return ExitCode::SUCCESS;
            }
            _ => rest.push(arg),
        }
    }
    let config = match RunConfig::parse(rest, |key| std::env::var(key).ok()) {
        Ok((config, unknown)) if unknown.len() == 1 => config,
        Ok((_, unknown)) => {
            eprintln!("error: unknown arguments {:?} (usage: testware-janitor [--run RUN_ID] [--kube-context NAME])", &unknown[1..]);
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: {}", harness::error_chain(&e));
            return ExitCode::from(2);
        }
    };
    let client = match harness::cluster::client(&config).await {
        Ok(client) => client,
        Err(e) => {
            eprintln!(
                "error: {} (hint: set KUBECONFIG or --kube-context)",
                harness::error_chain(&e)
            );
            return ExitCode::FAILURE;
        }
    };
    let result = match &run {
        Some(id) => {
            harness::namespace::delete_run_namespaces(&client, id, Duration::from_secs(120)).await
        }
        None => harness::namespace::reap_expired(&client).await,
    };
    match result {
        Ok(names) if names.is_empty() => println!("nothing to delete"),
        Ok(names) => println!("deleted: {}", names.join(", ")),
        Err(e) => {
            eprintln!("error: {}", harness::error_chain(&e));
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
