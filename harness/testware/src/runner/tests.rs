//! The runner's own behaviour: quarantine, the cluster requirement, panics and
//! timeouts, marks, and case functions that ask for what they need.

use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::Arguments;

use super::*;
use crate::cluster::ClusterUnavailable;
use crate::config::RunConfig;
use crate::report::junit::CaseStatus;

fn config(args: &[&str]) -> (RunConfig, Arguments) {
    RunConfig::parse(
        std::iter::once("suite".to_owned())
            .chain(args.iter().map(|s| s.to_string()))
            .chain(["--test-threads=1", "--logfile=/dev/null"].map(String::from)),
        |_| None,
    )
    .unwrap()
}

fn failing_quarantined(expires: &str) -> Suite {
    Suite::new("t").case(
        Case::no_deploy("flaky", |_| async { anyhow::bail!("the flake") }).quarantine(
            Quarantine::new("known flake")
                .ticket("T-1")
                .expires(expires),
        ),
    )
}

fn status_of(report: &SuiteReport, name: &str) -> CaseStatus {
    report
        .records
        .iter()
        .find(|r| r.name == name)
        .map(|r| r.status.clone())
        .unwrap()
}

#[test]
fn quarantined_failure_is_reported_but_does_not_fail() {
    let (config, args) = config(&[]);
    let report = failing_quarantined("2999-12-31").run_with(config, &args, |_, _| unreachable!());
    assert!(!report.conclusion.has_failed());
    assert!(
        matches!(status_of(&report, "flaky"), CaseStatus::QuarantinedFailure(m) if m.contains("the flake"))
    );
}

#[test]
fn expired_quarantine_fails_the_run() {
    let (config, args) = config(&[]);
    let report = failing_quarantined("2020-01-31").run_with(config, &args, |_, _| unreachable!());
    assert!(report.conclusion.has_failed());
    assert!(
        matches!(status_of(&report, "flaky"), CaseStatus::Failed(m) if m.contains("quarantine expired on 2020-01-31"))
    );
}

#[test]
fn invalid_expiry_fails_with_the_reason() {
    let (config, args) = config(&[]);
    let report = failing_quarantined("next week").run_with(config, &args, |_, _| unreachable!());
    assert!(
        matches!(status_of(&report, "flaky"), CaseStatus::Failed(m) if m.contains("invalid quarantine expiry"))
    );
}

fn mixed() -> Suite {
    Suite::new("t")
        .case(Case::no_deploy("renders", |_| async { Ok(()) }))
        .case(Case::chart_deploy("deploys", |_| async { Ok(()) }).mark("slow"))
        .case(Case::no_deploy("panics", |_| async { panic!("boom") }))
        .case(
            Case::no_deploy("hangs", |_| std::future::pending()).timeout(Duration::from_millis(50)),
        )
}

#[test]
fn missing_cluster_ignores_chart_deploy_with_the_reason() {
    let (config, args) = config(&["--mark", "chart_deploy"]);
    let report = mixed().run_with(config, &args, |_, _| {
        Err(ClusterUnavailable::NoKubeconfig("no file".into()).with_remedy())
    });
    assert_eq!(report.records.len(), 1);
    assert!(
        matches!(status_of(&report, "deploys"), CaseStatus::Ignored(m) if m.contains("needs a cluster") && m.contains("hint"))
    );
    assert!(!report.conclusion.has_failed());
}

#[test]
fn missing_cluster_fails_when_required() {
    let (config, args) = config(&["--mark", "chart_deploy", "--require-cluster"]);
    let report = mixed().run_with(config, &args, |_, _| {
        Err(ClusterUnavailable::NoKubeconfig("no file".into()).with_remedy())
    });
    assert!(report.conclusion.has_failed());
    assert!(
        matches!(status_of(&report, "deploys"), CaseStatus::Failed(m) if m.contains("--require-cluster"))
    );
}

#[test]
fn missing_container_engine_ignores_component_cases_and_probes_only_for_them() {
    let (config, args) = config(&[]);
    let mut probed = Vec::new();
    let report = Suite::new("engine")
        .case(Case::component("runs_a_container", |_| async { Ok(()) }))
        .case(Case::no_deploy("renders", |_| async { Ok(()) }))
        .run_with(config, &args, |_, tier| {
            probed.push(tier);
            Err("no engine socket".into())
        });
    assert_eq!(probed, vec![Tier::Component]);
    assert!(
        matches!(status_of(&report, "runs_a_container"), CaseStatus::Ignored(m) if m == "needs a container engine: no engine socket")
    );
    assert!(matches!(status_of(&report, "renders"), CaseStatus::Passed));
}

#[test]
fn no_deploy_selection_never_probes_the_cluster() {
    let (config, args) = config(&[
        "--mark",
        "no_deploy and not chart_deploy",
        "--skip",
        "hangs",
        "--skip",
        "panics",
    ]);
    let report = mixed().run_with(config, &args, |_, _| panic!("probed"));
    assert_eq!(report.conclusion.num_passed, 1);
}

#[test]
fn panics_and_timeouts_become_failures_with_messages() {
    let (config, args) = config(&["--mark", "no_deploy"]);
    let report = mixed().run_with(config, &args, |_, _| unreachable!());
    assert!(
        matches!(status_of(&report, "panics"), CaseStatus::Failed(m) if m.contains("case panicked: boom"))
    );
    assert!(
        matches!(status_of(&report, "hangs"), CaseStatus::Failed(m) if m.contains("timed out after 50ms"))
    );
}

#[test]
fn marks_include_tier_and_quarantine_last() {
    let case = Case::chart_deploy("x", |_| async { Ok(()) })
        .mark("quarantine")
        .mark("kafka")
        .quarantine(Quarantine::new("r"));
    assert_eq!(case.all_marks(), ["chart_deploy", "kafka", "quarantine"]);
}

async fn names_itself(ctx: Ctx) -> CaseResult {
    anyhow::ensure!(ctx.case == "names_itself", "case name {}", ctx.case);
    Ok(())
}

async fn takes_nothing() -> CaseResult {
    Ok(())
}

async fn needs_charts(charts: Arc<crate::ChartSet>, ctx: Ctx) -> CaseResult {
    anyhow::ensure!(
        charts.root().ends_with("charts"),
        "root {:?}",
        charts.root()
    );
    anyhow::ensure!(ctx.charts().is_ok(), "the context has the same set");
    Ok(())
}

#[test]
fn case_functions_are_named_after_themselves_and_carry_marks() {
    let cases = crate::cases![no_deploy(fast, smoke): names_itself, takes_nothing];
    let names: Vec<&str> = cases.iter().map(Case::name).collect();
    assert_eq!(names, ["names_itself", "takes_nothing"]);
    assert_eq!(cases[0].all_marks(), ["no_deploy", "fast", "smoke"]);
    let (config, args) = config(&[]);
    let report = Suite::new("t")
        .cases(cases)
        .run_with(config, &args, |_, _| unreachable!());
    assert_eq!(report.conclusion.num_passed, 2, "{:?}", report.records);
}

async fn param_is_even(n: u32, ctx: Ctx) -> CaseResult {
    anyhow::ensure!(n.is_multiple_of(2), "{}: {n} is odd", ctx.case);
    Ok(())
}

async fn param_is_small(n: u32) -> CaseResult {
    anyhow::ensure!(n < 10, "{n} is not small");
    Ok(())
}

#[test]
fn parametrized_cases_run_once_per_param_under_their_ids() {
    let cases = crate::cases![no_deploy(fast) for [("two", 2), ("three", 3)]: param_is_even, param_is_small];
    let names: Vec<&str> = cases.iter().map(Case::name).collect();
    assert_eq!(
        names,
        [
            "param_is_even::two",
            "param_is_small::two",
            "param_is_even::three",
            "param_is_small::three"
        ]
    );
    assert_eq!(cases[3].all_marks(), ["no_deploy", "fast"]);
    let (config, args) = config(&[]);
    let report = Suite::new("t")
        .cases(cases)
        .run_with(config, &args, |_, _| unreachable!());
    assert_eq!(report.conclusion.num_passed, 3, "{:?}", report.records);
    assert!(
        matches!(status_of(&report, "param_is_even::three"), CaseStatus::Failed(m) if m.contains("param_is_even::three: 3 is odd")),
        "{:?}",
        report.records
    );
}

#[test]
fn parameters_are_built_from_the_context_and_missing_ones_say_how_to_get_them() {
    let (with_config, with_args) = config(&[]);
    let report = Suite::new("with")
        .charts("/tmp/charts")
        .cases(crate::cases![no_deploy: needs_charts])
        .run_with(with_config, &with_args, |_, _| unreachable!());
    assert!(matches!(
        status_of(&report, "needs_charts"),
        CaseStatus::Passed
    ));

    let (config, args) = config(&[]);
    let report = Suite::new("without")
        .cases(crate::cases![no_deploy: needs_charts])
        .run_with(config, &args, |_, _| unreachable!());
    assert!(
        matches!(status_of(&report, "needs_charts"), CaseStatus::Failed(m) if m.contains("suite without has no chart set") && m.contains("hint")),
        "{:?}",
        report.records
    );
}

#[test]
fn a_wait_longer_than_its_case_ends_first_with_its_own_explanation() {
    let (config, args) = config(&[]);
    let waits = Case::no_deploy("waits", |_| async {
        let never = || async { Err::<(), _>("not yet") };
        crate::cluster::wait::wait_until("the moon", Duration::from_secs(60), never).await?;
        Ok(())
    })
    .timeout(Duration::from_secs(2));
    let report = Suite::new("t")
        .case(waits)
        .run_with(config, &args, |_, _| unreachable!());
    assert!(
        matches!(status_of(&report, "waits"), CaseStatus::Failed(m) if m.contains("waiting for the moon; last state: not yet")),
        "{:?}",
        report.records
    );
}

#[test]
fn a_pass_on_a_retry_is_flaky_and_fails_unless_quarantined() {
    let (mut config, args) = config(&[]);
    config.attempt = 2;
    let report = Suite::new("t")
        .case(Case::no_deploy("passes_on_retry", |_| async { Ok(()) }))
        .case(
            Case::no_deploy("quarantined_flake", |_| async { Ok(()) })
                .quarantine(Quarantine::new("known flake").expires("2999-12-31")),
        )
        .run_with(config, &args, |_, _| unreachable!());
    assert!(report.conclusion.has_failed());
    assert!(
        matches!(status_of(&report, "passes_on_retry"), CaseStatus::Failed(m) if m.starts_with("flaky: passed on attempt 2"))
    );
    assert!(
        matches!(status_of(&report, "quarantined_flake"), CaseStatus::QuarantinedFailure(m) if m.starts_with("flaky:"))
    );
    let flaky = report
        .records
        .iter()
        .find(|r| r.name == "passes_on_retry")
        .map(|r| r.properties.clone())
        .unwrap();
    assert!(
        flaky.contains(&("flaky".into(), "true".into())),
        "{flaky:?}"
    );
}

#[test]
fn a_shard_runs_its_part_of_the_cases_and_the_shards_run_all_of_them_once() {
    let suite = || {
        Suite::new("t")
            .cases((0..12).map(|i| Case::no_deploy(format!("case_{i}"), |_| async { Ok(()) })))
    };
    let mut ran = Vec::new();
    for index in 1..=3 {
        let (mut config, args) = config(&[]);
        config.shard = Some(shard::Shard {
            index,
            total: 3,
            plan: None,
            plan_path: None,
        });
        let report = suite().run_with(config, &args, |_, _| unreachable!());
        assert!(!report.records.is_empty() && report.records.len() < 12);
        ran.extend(report.records.into_iter().map(|r| r.name));
    }
    ran.sort();
    let mut all: Vec<String> = (0..12).map(|i| format!("case_{i}")).collect();
    all.sort();
    assert_eq!(ran, all);
}
