//! `testware check`: the no_deploy checks of charts (policy rules and `helm
//! lint --strict` on each chart × value set), with a report and JUnit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use testware::junit::{CaseRecord, CaseStatus};
use testware::manifest::policy;
use testware::{ChartSet, ValueSet};

/// The charts the arguments name, as (directory of charts, chart name): a chart
/// directory (with a Chart.yaml), or a directory of charts, each one of them.
fn chart_dirs(args: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    for arg in args {
        let dir = std::path::absolute(arg)?;
        // A directory of charts: every chart in it.
        if dir.is_dir() && !dir.join("Chart.yaml").exists() {
            let names = ChartSet::new(&dir).names()?;
            if !names.is_empty() {
                found.extend(names.into_iter().map(|name| (dir.clone(), name)));
                continue;
            }
        }
        // Otherwise a chart: opening it says what is wrong with it.
        let (Some(root), Some(name)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str()))
        else {
            anyhow::bail!("{} is not a chart directory", dir.display());
        };
        ChartSet::new(root).open(name)?;
        found.push((root.to_path_buf(), name.to_owned()));
    }
    Ok(found)
}

/// Runs the checks; returns how many failed.
pub async fn check(
    charts: &[PathBuf],
    values: &[PathBuf],
    options: &policy::CheckOptions,
    junit: Option<&std::path::Path>,
) -> anyhow::Result<usize> {
    let mut records = Vec::new();
    for (root, name) in chart_dirs(charts)? {
        let set = Arc::new(ChartSet::new(root));
        let name = name.as_str();
        let given = if values.is_empty() {
            None
        } else {
            Some(
                values
                    .iter()
                    .map(|f| {
                        Ok(ValueSet::file(
                            f.display().to_string(),
                            std::path::absolute(f)?,
                        ))
                    })
                    .collect::<std::io::Result<Vec<_>>>()?,
            )
        };
        // The same loop as the suites' policy cases (policy::cases).
        for check in policy::plan(&set, name, given)? {
            let started = Instant::now();
            let status = match check.run(options).await {
                Ok(warnings) => {
                    if let Some(report) = warnings {
                        println!("{report}");
                    }
                    CaseStatus::Passed
                }
                Err(e) => CaseStatus::Failed(format!("{e:#}")),
            };
            records.push(record(check.name(), started, status));
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
