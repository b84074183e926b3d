//! Nothing secret in what a run writes: a failing case with secrets planted in
//! a release value, a Secret, a pod's env and log, and its own failure message
//! (the `redaction-example` binary) leaves none of them in any file of its
//! failure bundle, its JUnit report or its output. The same run with redaction
//! turned off shows them — the check is able to fail.

use std::path::{Path, PathBuf};

use testware::{cases, check, check_eq, CaseResult, Ctx, Suite};
use testware_selftests::ExampleRun;

fn main() -> std::process::ExitCode {
    Suite::new("redaction")
        .cases(cases![chart_deploy:
            planted_secrets_reach_no_bundle_file_no_junit_and_no_output,
            without_redaction_the_same_run_shows_them,
        ])
        .run()
}

/// What one run of the example wrote and printed.
struct RunOutcome {
    planted: Vec<String>,
    files: Vec<(PathBuf, String)>,
    output: String,
    status: Option<i32>,
}

/// Runs `redaction-example` with fresh planted values; `redact: false` turns
/// redaction off (outside CI only, so `CI` is removed then).
async fn run_example(ctx: &Ctx, redact: bool) -> anyhow::Result<RunOutcome> {
    let suffix = testware::config::random_suffix(10);
    let planted: Vec<String> = ["values", "secret", "env"]
        .iter()
        .map(|what| format!("planted-{what}-{suffix}"))
        .collect();
    let mut run = ExampleRun::new(
        env!("CARGO_BIN_EXE_redaction-example"),
        "red",
        &ctx.artifacts_dir(),
    );
    let command = &mut run.command;
    command
        .args(["--test-threads", "1"])
        .env("PLANTED_IN_VALUES", &planted[0])
        .env("PLANTED_IN_SECRET", &planted[1])
        .env("PLANTED_IN_ENV", &planted[2]);
    if redact {
        command.env_remove("HARNESS_REDACT");
    } else {
        command.env("HARNESS_REDACT", "0").env_remove("CI");
    }
    let output = command.output().await?;
    let mut files = Vec::new();
    collect_files(&run.artifacts, &mut files)?;
    Ok(RunOutcome {
        planted,
        files,
        output: format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        status: output.status.code(),
    })
}

fn collect_files(dir: &Path, files: &mut Vec<(PathBuf, String)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_files(&path, files)?;
        } else {
            let text = String::from_utf8_lossy(&std::fs::read(&path)?).into_owned();
            files.push((path, text));
        }
    }
    Ok(())
}

/// Where each planted value shows up: (value, file or "output").
fn leaks(run: &RunOutcome) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for value in &run.planted {
        for (path, text) in &run.files {
            if text.contains(value.as_str()) {
                found.push((value.clone(), path.display().to_string()));
            }
        }
        if run.output.contains(value.as_str()) {
            found.push((value.clone(), "the run's output".into()));
        }
    }
    found
}

async fn planted_secrets_reach_no_bundle_file_no_junit_and_no_output(ctx: Ctx) -> CaseResult {
    let run = run_example(&ctx, true).await?;
    check_eq!(run.status, Some(101), "the example fails: {}", run.output);
    let names: Vec<String> = run
        .files
        .iter()
        .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "summary.txt",
        "junit.xml",
        "client.toolbox.log",
        "web.values.yaml",
    ] {
        check!(
            names.iter().any(|n| n == expected),
            "the run should write {expected}: {names:?}"
        );
    }
    let leaked = leaks(&run);
    check!(
        leaked.is_empty(),
        "planted secrets were written: {leaked:?}"
    );
    // The places were written, with the secrets replaced rather than dropped.
    let text_of = |name: &str| {
        run.files
            .iter()
            .find(|(p, _)| p.file_name().is_some_and(|n| n == name))
            .map(|(_, t)| t.as_str())
            .unwrap_or_default()
    };
    check!(
        text_of("client.toolbox.log").contains("connecting with [redacted]"),
        "the log line is kept, redacted: {:?}",
        text_of("client.toolbox.log")
    );
    check!(
        text_of("junit.xml").contains("login failed with password [redacted]"),
        "the failure message is kept, redacted: {}",
        text_of("junit.xml")
    );
    check!(
        !text_of("junit.xml").contains("/[redacted]/"),
        "public names (the namespace in the bundle path) stay readable: {}",
        text_of("junit.xml")
    );
    check!(
        text_of("client.yaml").contains("secretKeyRef"),
        "references stay: {}",
        text_of("client.yaml")
    );
    Ok(())
}

async fn without_redaction_the_same_run_shows_them(ctx: Ctx) -> CaseResult {
    let run = run_example(&ctx, false).await?;
    check_eq!(run.status, Some(101), "the example fails: {}", run.output);
    let leaked = leaks(&run);
    for value in &run.planted {
        check!(
            leaked.iter().any(|(v, _)| v == value),
            "with --no-redact, {value} should show up somewhere (else the other case proves nothing): {leaked:?}"
        );
    }
    Ok(())
}
