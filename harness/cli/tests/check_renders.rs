//! `testware check --snapshot` and `--coverage` on the fixture charts under
//! `fixtures/snapshot-charts` and `fixtures/coverage-charts`: snapshots that
//! fail when missing or stale (never written in CI) and redact what changes by
//! itself; coverage reports with their exact findings, a threshold and JUnit.

mod common;

use common::*;
use std::process::Command;

/// `--snapshot`: a missing snapshot fails — in CI without writing anything,
/// elsewhere leaving the render as `.snap.new` for review; INSTA_UPDATE=always
/// accepts it; a chart whose render changes every time (random names, a
/// generated CA, a checksum) passes in a later run because those fields are
/// redacted; a changed value fails with the diff; a bad selector is refused.
#[test]
fn snapshots_fail_when_missing_or_stale_and_redact_what_changes_by_itself() {
    let work =
        std::env::temp_dir().join(format!("testware-check-snapshots-{}", std::process::id()));
    let _cleanup = Copy(work.clone());
    std::fs::create_dir_all(&work).unwrap();
    let copy = Command::new("cp")
        .args(["-rL", &repo("fixtures/snapshot-charts/volatile")])
        .arg(&work)
        .status()
        .expect("cp runs");
    assert!(copy.success());
    let chart = work.join("volatile").display().to_string();
    let dir = work.join("snapshots");
    let snapshot_dir = dir.display().to_string();
    let args = [
        chart.as_str(),
        "--rule",
        "probes",
        "--snapshot",
        "--snapshot-dir",
        &snapshot_dir,
    ];
    let in_ci = [("CI", "true"), ("INSTA_UPDATE", "auto")];
    let snap = dir.join("volatile__default.snap");
    let pending = dir.join("volatile__default.snap.new");

    let (code, text) = check_with(&args, &in_ci);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("FAIL snapshot::volatile::default"), "{text}");
    assert!(
        text.contains("no snapshot") && text.contains("in CI none is written"),
        "{text}"
    );
    assert!(!snap.exists() && !pending.exists(), "written in CI: {text}");

    let (code, text) = check_with(&args, &[("CI", "false"), ("INSTA_UPDATE", "auto")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("cargo insta review"), "{text}");
    assert!(!snap.exists() && pending.exists(), "{text}");

    let (code, text) = check_with(&args, &[("CI", "false"), ("INSTA_UPDATE", "always")]);
    assert_eq!(code, Some(0), "{text}");
    let kept = std::fs::read_to_string(&snap).unwrap();
    for expected in [
        "name: \"[volatile]\"",
        "token: \"[volatile]\"",
        "ca.crt: \"[pem]\"",
        "checksum/values: \"[checksum]\"",
        "greeting: hello",
    ] {
        assert!(kept.contains(expected), "{expected} in {kept}");
    }

    // Another process renders other random names: still the same snapshot.
    let (code, text) = check_with(&args, &in_ci);
    assert_eq!(code, Some(0), "{text}");

    let values = work.join("volatile/values.yaml");
    std::fs::write(&values, "greeting: goodbye\n").unwrap();
    let (code, text) = check_with(&args, &in_ci);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("the render differs from snapshot"), "{text}");
    assert!(text.contains("greeting: goodbye"), "the diff: {text}");
    assert_eq!(
        std::fs::read_to_string(&snap).unwrap(),
        kept,
        "rewritten in CI"
    );

    let mut bad = args.to_vec();
    bad.extend(["--redact", "not a selector["]);
    let (code, text) = check_with(&bad, &in_ci);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("is not an insta selector"), "{text}");
    std::fs::remove_dir_all(&work).unwrap();
}

/// `--coverage` on the fixture charts under `fixtures/coverage-charts`: the
/// branches (nested helpers, a library chart's helper, `range` over empty and
/// non-empty lists, a helper whose output is compared) and value keys no
/// value set exercises, exactly; a threshold that fails; the figures in JUnit;
/// a branch the markers cannot reach reported as not measured, never counted.
#[test]
fn coverage_names_what_no_value_set_exercises() {
    let charts = repo("fixtures/coverage-charts");
    let (code, text) = check(&[
        &format!("{charts}/branches"),
        "--rule",
        "api-version",
        "--coverage",
    ]);
    assert_eq!(code, Some(0), "{text}");
    let expected = "coverage of chart branches over 2 value set(s) (default, ci/with-ingress.yaml): 10 of 14 branches taken (71.4 %)
  branches no value set takes:
    charts/lib/templates/_annotations.tpl:3: `with .Values.owner` never set
    templates/_helpers.tpl:2: `if .Values.nameOverride` never true
    templates/_helpers.tpl:9: `define \"branches.unused\"` never included
    templates/deployment.yaml:22: `if eq .Values.mode \"debug\"` never true
  value keys read only in branches no value set takes:
    values.yaml:10: unused
  value keys read but not in values.yaml:
    charts/lib/templates/_annotations.tpl:2: team
    charts/lib/templates/_annotations.tpl:3: owner
    templates/_helpers.tpl:2: nameOverride
";
    assert!(text.contains(expected), "{text}");
    assert!(text.contains("ok   coverage::branches"), "{text}");

    let junit = std::env::temp_dir().join(format!(
        "testware-check-coverage-{}.xml",
        std::process::id()
    ));
    let junit_arg = junit.display().to_string();
    let (code, text) = check(&[
        &format!("{charts}/branches"),
        "--rule",
        "api-version",
        "--coverage",
        "--coverage-min",
        "80",
        "--junit",
        &junit_arg,
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAIL coverage::branches")
            && text.contains("10 of 14 branches taken (71.4 %), below --coverage-min 80 %"),
        "{text}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    std::fs::remove_file(&junit).unwrap();
    assert!(
        xml.contains("name=\"coverage.branches\" value=\"10/14\"")
            && xml.contains("name=\"coverage.percent\" value=\"71.4\""),
        "{xml}"
    );

    // The helper's output is compared: its markers are taken out of what
    // include returns, so the comparison still holds and the chart is measured.
    let (code, text) = check(&[
        &format!("{charts}/compared-helper"),
        "--rule",
        "api-version",
        "--coverage",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("coverage of chart compared-helper over 1 value set(s) (default): 3 of 5 branches taken (60.0 %)")
            && text.contains("templates/configmap.yaml:2: `if .Values.tls` never false (no `else` written)")
            && text.contains("templates/configmap.yaml:9: `else` never taken"),
        "{text}"
    );

    let (code, text) = check(&[
        &format!("{charts}/flow-branch"),
        "--rule",
        "api-version",
        "--coverage",
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("ERROR coverage::flow-branch (not checked)")
            && text.contains("value set default not measured: the chart with markers does not render (a branch inside a flow collection?): YAML parse error on flow-branch/templates/configmap.yaml"),
        "{text}"
    );
}
