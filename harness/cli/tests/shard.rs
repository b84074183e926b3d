//! `testware shard`: a plan balanced by the times in JUnit reports, the split
//! and the commands printed; `--failed` plans only the failed cases; no reports
//! is an error with a hint.

use std::process::Command;
use std::time::Duration;

use testware::junit::{self, CaseRecord, CaseStatus};
use testware::runner::shard::Plan;

fn record(name: &str, seconds: u64, status: CaseStatus) -> CaseRecord {
    CaseRecord {
        name: name.into(),
        kind: "chart_deploy".into(),
        duration: Duration::from_secs(seconds),
        properties: vec![],
        status,
        output: None,
    }
}

fn shard(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_testware"))
        .arg("shard")
        .args(args)
        .output()
        .expect("testware runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn plans_balanced_shards_and_reruns_of_failed_cases_from_junit_reports() {
    let dir = std::env::temp_dir().join(format!("testware-shard-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let reports = dir.join("junit");
    std::fs::create_dir_all(&reports).unwrap();
    let records = [
        record("slow", 90, CaseStatus::Passed),
        record("medium", 50, CaseStatus::Passed),
        record("quick", 40, CaseStatus::Failed("boom".into())),
    ];
    junit::write(&reports.join("deploy.xml"), "deploy", &records).unwrap();
    junit::write(
        &reports.join("echo.xml"),
        "echo",
        &[record("tiny", 5, CaseStatus::Passed)],
    )
    .unwrap();
    let (dir_s, plan_path) = (reports.display().to_string(), dir.join("plan.json"));
    let plan_s = plan_path.display().to_string();

    let (code, out) = shard(&["--junit", &dir_s, "--shards", "2", "--out", &plan_s]);
    assert_eq!(code, Some(0), "{out}");
    let plan = Plan::read(&plan_path).unwrap();
    assert_eq!(plan.shards, 2);
    assert_eq!(plan.cases["deploy::slow"], 1);
    assert_eq!(plan.cases["deploy::medium"], 2);
    assert_eq!(plan.cases["deploy::quick"], 2);
    assert_eq!(plan.cases["echo::tiny"], 1);
    assert_eq!(plan.loads, vec![95.0, 90.0]);
    assert!(
        out.contains("4 cases, 185 s in all, into 2 shard(s)"),
        "{out}"
    );
    assert!(out.contains("shard 1: 2 cases, 95 s"), "{out}");
    assert!(out.contains("1.03 balanced by time"), "{out}");
    assert!(
        out.contains("HARNESS_SHARD=i/2 HARNESS_SHARD_PLAN="),
        "{out}"
    );

    let (code, out) = shard(&["--failed", "--junit", &dir_s, "--out", &plan_s]);
    assert_eq!(code, Some(0), "{out}");
    let rerun = Plan::read(&plan_path).unwrap();
    assert!(rerun.only_planned && rerun.shards == 1, "{rerun:?}");
    assert_eq!(
        rerun.cases.keys().collect::<Vec<_>>(),
        vec!["deploy::quick"]
    );
    assert!(out.contains("1 failed case(s): deploy::quick"), "{out}");

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let (code, out) = shard(&["--junit", &empty.display().to_string(), "--out", &plan_s]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("no case of the harness in the JUnit reports") && out.contains("hint:"),
        "{out}"
    );
    let (code, out) = shard(&["--junit", &dir.join("missing").display().to_string()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("cannot read JUnit reports in"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}
