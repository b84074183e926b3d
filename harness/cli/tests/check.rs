//! `testware check` on this repository's charts: passes on a good chart, fails
//! (exit 1) with the violation on a values file that unpins the image, and says
//! what is wrong (exit 2) with a path that is not a chart; the fixture charts
//! under `fixtures/policy-charts` (API versions, schemas, the chart's own value
//! keys, file:// dependencies, a library chart, required values), each with the
//! exact findings expected. Needs helm (`HELM`
//! or PATH) and the schemas (`ci/install-schemas`), as the no_deploy tier does.

use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

fn check(args: &[&str]) -> (Option<i32>, String) {
    check_with(args, &[])
}

fn check_with(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_testware"))
        .arg("check")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("the testware binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

#[test]
fn a_good_chart_passes_every_value_set() {
    let (code, text) = check(&[&repo("charts-under-test/echo-server")]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("ok   policy::echo-server::ci/two-replicas.yaml"),
        "{text}"
    );
    assert!(text.contains("6 checks: 6 passed, 0 failed"), "{text}");
}

/// The README's quick start: a directory of charts checks each chart in it.
#[test]
fn a_directory_of_charts_checks_every_chart_in_it() {
    let (code, text) = check(&[&repo("charts-under-test")]);
    assert_eq!(code, Some(0), "{text}");
    for chart in ["echo-server", "efd", "embargo-ingest", "logging"] {
        assert!(
            text.contains(&format!("ok   policy::{chart}::")),
            "{chart}: {text}"
        );
    }
    assert!(!text.contains("component-kit"), "{text}");
}

#[test]
fn an_unpinned_image_fails_with_the_rule_and_junit() {
    let junit = std::env::temp_dir().join(format!("testware-check-{}.xml", std::process::id()));
    let (code, text) = check(&[
        &repo("charts-under-test/echo-server"),
        "--values",
        &repo("fixtures/values/echo-server-latest.yaml"),
        "--junit",
        &junit.display().to_string(),
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("rule image-pinned: image \"x:latest\" is not pinned"),
        "{text}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap_or_default();
    let _ = std::fs::remove_file(&junit);
    assert!(xml.contains("failures=\"1\""), "{xml}");
}

#[test]
fn a_path_that_is_not_a_chart_is_named() {
    let (code, text) = check(&["/nonexistent/chart"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("chart not found: /nonexistent/chart has no Chart.yaml"),
        "{text}"
    );
}

#[test]
fn a_removed_api_version_fails_with_its_replacement_and_the_object_is_still_checked() {
    let (code, text) = check(&[&repo("fixtures/policy-charts/removed-api")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("Deployment/test-web: rule api-version: extensions/v1beta1 Deployment is not served since Kubernetes 1.16 (target 1.33): use apps/v1 [removed-api/templates/deployment.yaml]"),
        "{text}"
    );
    // Read as apps/v1, the Deployment passes the other rules, and its Service is
    // not blamed for selecting no pods.
    assert!(text.contains("1 policy error(s), 0 warning(s)"), "{text}");
}

#[test]
fn an_older_target_release_only_warns_and_rules_can_be_chosen() {
    let (_, text) = check(&[
        &repo("fixtures/policy-charts/removed-api"),
        "--kube-version",
        "v1.15.3",
        "--rule",
        "api-version",
    ]);
    assert!(text.contains("ok   policy::removed-api::default"), "{text}");
    assert!(
        text.contains("warning: chart removed-api, values default: Deployment/test-web: rule api-version: extensions/v1beta1 Deployment is deprecated (target 1.15; removed in 1.16): use apps/v1"),
        "{text}"
    );
}

#[test]
fn a_bad_release_or_rule_is_refused_with_what_is_accepted() {
    let chart = repo("fixtures/policy-charts/removed-api");
    let (code, text) = check(&[&chart, "--kube-version", "2.0"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("\"2.0\" is not a Kubernetes version (expected e.g. 1.25, v1.25 or v1.25.3)"),
        "{text}"
    );
    let (code, text) = check(&[&chart, "--rule", "nope"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("no rule \"nope\" (rules: labels, image-pinned"),
        "{text}"
    );
}

#[test]
fn unknown_fields_and_wrong_types_are_named_with_their_path() {
    let (code, text) = check(&[
        &repo("fixtures/policy-charts/schema-errors"),
        "--rule",
        "schema",
    ]);
    assert_eq!(code, Some(1), "{text}");
    for expected in [
        "LimitRange/test-limits: rule schema: /spec/limits/0/type: 5 is not of type \"string\"",
        "Deployment/test-web: rule schema: /spec/template/spec/containers/0: Additional properties are not allowed ('resourcess' was unexpected); /spec: Additional properties are not allowed ('replica' was unexpected)",
        "warning: chart schema-errors, values default: Widget/test-widget: rule schema: Kubernetes 1.33 has no schema for example.com/v1 Widget",
    ] {
        assert!(text.contains(expected), "{expected}\n in {text}");
    }
    assert!(text.contains("2 policy error(s), 1 warning(s)"), "{text}");
    assert!(!text.contains("ServiceMonitor"), "{text}");
    // With the Prometheus operator's API announced, the chart renders its
    // ServiceMonitor, which no schema of the release covers.
    let (_, text) = check(&[
        &repo("fixtures/policy-charts/schema-errors"),
        "--rule",
        "schema",
        "--api-versions",
        "monitoring.coreos.com/v1",
    ]);
    assert!(
        text.contains("ServiceMonitor/test-web: rule schema: Kubernetes 1.33 has no schema for monitoring.coreos.com/v1 ServiceMonitor"),
        "{text}"
    );
}

#[test]
fn missing_schemas_fail_with_how_to_install_them_and_an_old_release_is_reported() {
    let chart = repo("charts-under-test/echo-server");
    let (code, text) = check_with(
        &[&chart, "--rule", "schema"],
        &[("HARNESS_SCHEMA_DIR", "/nonexistent/schemas")],
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("objects not validated: no Kubernetes schemas at /nonexistent/schemas (hint: `ci/install-schemas` installs them"),
        "{text}"
    );
    let (_, text) = check(&[&chart, "--rule", "schema", "--kube-version", "1.20"]);
    assert!(text.contains("ok   policy::echo-server::default"), "{text}");
    assert!(
        text.contains("objects not validated: kubernetes-validate-1.37.0 has no schemas for Kubernetes 1.20 (it has 1.25 to 1.37)"),
        "{text}"
    );
}

#[test]
fn scheduling_follows_the_keys_the_chart_takes_and_never_guesses() {
    let chart = repo("fixtures/policy-charts/own-keys");
    // Default keys (global.*), which this chart does not take: reported, not blamed.
    let (code, text) = check(&[&chart]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("0 policy error(s), 3 warning(s)")
            && text.contains("value global.nodeSelector: rule scheduling: no pod takes it"),
        "{text}"
    );
    // Its own keys named: the StatefulSet takes them, the Job that forgets them fails.
    let (code, text) = check(&[
        &chart,
        "--node-selector-key",
        "nodeSelector",
        "--tolerations-key",
        "tolerations",
        "--storage-class-key",
        "persistence.storageClass",
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("1 policy error(s), 0 warning(s)")
            && text.contains("Job/test-setup: rule scheduling: nodeSelector (testware.io/node-group: system) does not reach the pod's nodeSelector; tolerations (key testware.io/node-group) do not reach the pod's tolerations"),
        "{text}"
    );
}

/// A copy of `fixtures/policy-charts/<name>` in a directory of its own (a
/// dependency build writes into the chart), removed when dropped.
struct Copy(std::path::PathBuf);

impl Copy {
    fn of(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("testware-check-{name}-{}", std::process::id()));
        let status = Command::new("cp")
            .args([
                "-r",
                &repo(&format!("fixtures/policy-charts/{name}")),
                &dir.display().to_string(),
            ])
            .status()
            .expect("cp runs");
        assert!(status.success());
        Self(dir)
    }

    fn chart(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn file_dependencies_are_built_when_asked_and_named_when_not() {
    let copy = Copy::of("file-dependency");
    let (code, text) = check(&[&copy.chart("app")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "missing in charts/ directory: common (hint: the chart's dependencies are not built"
        ),
        "{text}"
    );
    let (code, text) = check(&[&copy.chart("app"), "--dependency-build"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("2 checks: 2 passed, 0 failed"), "{text}");
    let (code, text) = check(&[&copy.chart("common")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(
            "library charts are not installable (hint: a library chart renders nothing by itself"
        ),
        "{text}"
    );
}

#[test]
fn a_chart_that_refuses_its_defaults_says_how_to_give_values() {
    let (code, text) = check(&[&repo("fixtures/policy-charts/needs-values")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("site.name is required: the observatory site this deployment serves")
            && text.contains("(hint: a template refused these values with `required` or `fail`: give the values it asks for"),
        "{text}"
    );
    // Its ci/site.yaml values set gives the value and passes.
    assert!(
        text.contains("ok   policy::needs-values::ci/site.yaml"),
        "{text}"
    );
}

#[test]
fn operator_managed_objects_pass_with_their_reasons_and_fail_without() {
    let (code, text) = check(&[&repo("fixtures/policy-charts/operator-managed")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("ok   policy::operator-managed::default"),
        "{text}"
    );
    for expected in [
        "Service/test-db: rule service-selector: selector cluster-name=test-db matches no pod template",
        "Deployment/test-api, container api: rule references: env DB_PASSWORD refers to Secret/test-db-credentials, which is not in the release",
    ] {
        assert!(text.contains(expected), "{expected}\n in {text}");
    }
    assert!(
        text.contains("2 policy error(s), 2 warning(s) in chart operator-managed with values ci/no-exemptions.yaml"),
        "{text}"
    );
}

#[test]
fn moving_tags_fail_and_test_hooks_are_left_out() {
    let (code, text) = check(&[&repo("fixtures/policy-charts/hooks-and-tags")]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("Deployment/test-web, container moving: rule image-pinned: image \"localhost/web:stable\" is not pinned"),
        "{text}"
    );
    // The digest and the release tag pass; the test hook on busybox:latest is not checked.
    assert!(text.contains("1 policy error(s), 2 warning(s)"), "{text}");
    assert!(!text.contains("smoke"), "{text}");
    let (_, text) = check(&[
        &repo("fixtures/policy-charts/hooks-and-tags"),
        "--include-test-hooks",
    ]);
    assert!(
        text.contains("Pod/test-smoke-test, container smoke: rule image-pinned: image \"busybox:latest\" is not pinned"),
        "{text}"
    );
}

/// `testware check` keeps its renders in the cache directory; `testware cache`
/// tells how many and clears them. (That a kept render starts no helm process
/// is proven against the renderer itself, in the library's unit tests.)
#[test]
fn renders_are_kept_across_runs_and_cleared_on_demand() {
    let tools = testware::config::Tools::from_process();
    let helm = tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(testware::Helm::locate(&tools))
        .expect("helm, as the other checks need");
    let schemas = testware::manifest::schema::root(&tools);
    let cache = std::env::temp_dir().join(format!(
        "testware-cli-cache-{}",
        testware::config::random_suffix(6)
    ));
    let env = [
        ("HARNESS_CACHE_DIR", cache.to_str().expect("utf-8")),
        ("HELM", helm.path().to_str().expect("utf-8")),
        ("HARNESS_SCHEMA_DIR", schemas.to_str().expect("utf-8")),
    ];
    let cache_command = |action: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_testware"))
            .args(["cache", action])
            .envs(env)
            .output()
            .expect("the testware binary runs");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(cache_command("status").starts_with("0 renders kept"));
    let chart = repo("charts-under-test/echo-server");
    let (code, first) = check_with(&[&chart], &env);
    assert_eq!(code, Some(0), "{first}");
    let status = cache_command("status");
    let kept: usize = status
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(kept >= 3, "one render per value set: {status}");
    let (code, second) = check_with(&[&chart], &env);
    assert_eq!(code, Some(0), "{second}");
    assert!(second.contains("6 checks: 6 passed, 0 failed"), "{second}");
    assert!(cache_command("status").starts_with(&format!("{kept} renders kept")));
    assert!(cache_command("clear").starts_with(&format!("removed {kept} renders")));
    assert!(cache_command("status").starts_with("0 renders kept"));
    std::fs::remove_dir_all(&cache).expect("the scratch cache");
}
