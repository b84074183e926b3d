//! `testware check` on this repository's charts: passes on a good chart, fails
//! (exit 1) with the violation on a values file that unpins the image, and says
//! what is wrong (exit 2) with a path that is not a chart; the fixture charts
//! under `fixtures/policy-charts` (API versions, schemas, the chart's own value
//! keys, file:// dependencies, a library chart, required values, Secrets the
//! release produces, an umbrella chart with a remote dependency, a strict values
//! schema, per-component keys, a bare Pod and a shared selector), each with the
//! exact findings expected; layered and piped values and JUnit errors. Needs helm (`HELM`
//! or PATH) and the schemas (`ci/install-schemas`), as the no_deploy tier does.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

#[test]
fn a_good_chart_passes_every_value_set() {
    let (code, text) = check(&[&repo("charts-under-test/echo-server")]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("ok   policy::echo-server::ci/two-replicas.yaml"),
        "{text}"
    );
    assert!(text.contains("8 checks: 8 passed, 0 failed"), "{text}");
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
        text.contains("Deployment/test-web: rule api-version: extensions/v1beta1 Deployment is not served since Kubernetes 1.16 (target 1.37): use apps/v1 [removed-api/templates/deployment.yaml]"),
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
        "warning: chart schema-errors, values default: Widget/test-widget: rule schema: Kubernetes 1.37 has no schema for example.com/v1 Widget",
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
        text.contains("ServiceMonitor/test-web: rule schema: Kubernetes 1.37 has no schema for monitoring.coreos.com/v1 ServiceMonitor"),
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
    let (code, text) = check(&[&[chart.as_str()], &OWN_KEYS[..]].concat());
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("1 policy error(s), 0 warning(s)")
            && text.contains("Job/test-setup: rule scheduling: nodeSelector (testware.io/node-group: system) does not reach the pod's nodeSelector; tolerations (key testware.io/node-group) do not reach the pod's tolerations"),
        "{text}"
    );
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
    // The value-key notices came with the first value set, not again.
    assert!(
        text.contains("2 policy error(s), 0 warning(s) in chart operator-managed with values ci/no-exemptions.yaml"),
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
    assert!(second.contains("8 checks: 8 passed, 0 failed"), "{second}");
    assert!(cache_command("status").starts_with(&format!("{kept} renders kept")));
    assert!(cache_command("clear").starts_with(&format!("removed {kept} renders")));
    assert!(cache_command("status").starts_with("0 renders kept"));
    std::fs::remove_dir_all(&cache).expect("the scratch cache");
}

/// Secrets the release makes itself — a pre-install hook's `--secret-name`, a
/// cert-manager Certificate, an ExternalSecret, a SealedSecret, a VaultSecret —
/// are not missing; the key a Certificate does not write, a Secret nobody makes
/// and an unknown imagePullSecret are named, the latter two until declared.
#[test]
fn secrets_the_release_produces_count_and_the_rest_are_named() {
    let chart = repo("fixtures/policy-charts/produced-secrets");
    let (code, text) = check(&[&chart]);
    assert_eq!(code, Some(1), "{text}");
    for expected in [
        "Deployment/test-web, container web: rule references: env TLS_PASSWORD refers to key \"password\" of Secret/test-web-tls, which Certificate/test-web writes with keys tls.crt, tls.key, ca.crt only; env API_KEY refers to Secret/test-api-key, which is not in the release and not declared external (annotation policy.testware.io/external-refs, or `testware check --external-ref Secret/test-api-key`); env SITE_TOKEN refers to Secret/site-token",
        "warning: chart produced-secrets, values default: Deployment/test-web: rule references: imagePullSecrets names Secret/site-registry, which is not in the release and not declared external",
    ] {
        assert!(text.contains(expected), "{expected}\n in {text}");
    }
    // The four custom resources have no schema: warnings, as before.
    assert!(text.contains("1 policy error(s), 5 warning(s)"), "{text}");
    for produced in [
        "test-admission",
        "test-db-credentials",
        "test-sealed",
        "test-vault",
    ] {
        assert!(
            !text.contains(&format!(" Secret/{produced}")),
            "{produced}: {text}"
        );
    }
    let (code, text) = check(&[
        &chart,
        "--external-ref",
        "Secret/site-token",
        "--external-ref",
        "Secret/site-registry",
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("1 policy error(s), 4 warning(s)"), "{text}");
    assert!(
        !text.contains("site-token") && !text.contains("site-registry"),
        "{text}"
    );
    let (code, text) = check(&[&chart, "--external-ref", "site-token"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("\"site-token\" is not Kind/name (e.g. Secret/registry-credentials)"),
        "{text}"
    );
}

/// An umbrella chart: the remote dependency not on disk is named once (not once
/// per value set) with how to make it checkable, and the rest is checked — the
/// vendored subchart against its own `helm.sh/chart`, `crds/` without release
/// labels, the missing appVersion as one finding.
#[test]
fn remote_dependencies_are_named_once_and_the_rest_is_checked() {
    let chart = repo("fixtures/policy-charts/umbrella");
    // An empty helm cache: archives pulled before on this machine stay out.
    let no_cache =
        std::env::temp_dir().join(format!("testware-no-helm-cache-{}", std::process::id()));
    let (code, text) = run_check(
        &[
            &chart,
            "--values",
            &format!("{chart}/values.yaml"),
            "--values",
            "/dev/stdin",
        ],
        &[("HELM_REPOSITORY_CACHE", &no_cache.display().to_string())],
        Some("kafka: {enabled: false}\n"),
    );
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(
        text.matches("remote dependency not checked").count(),
        1,
        "{text}"
    );
    assert!(
        text.contains("note: chart umbrella: 1 remote dependency not checked (not in its charts/ directory nor a --dependency-dir, and an offline check cannot fetch it): kafka 26.4.2 from oci://registry.example.org/charts; its own templates and the dependencies on disk were checked. To check them too: `helm dependency build umbrella` with network access (or `helm pull` them into charts/ or a directory given with --dependency-dir), then check again"),
        "{text}"
    );
    assert!(
        text.contains("chart umbrella: rule labels: Chart.yaml has no appVersion, and 1 object(s) lack label app.kubernetes.io/version (set appVersion) [umbrella/Chart.yaml]"),
        "{text}"
    );
    assert_eq!(
        text.matches("1 policy error(s), 0 warning(s)").count(),
        2,
        "{text}"
    );
    assert!(
        !text.contains("Widget") && !text.contains("StatefulSet/test-db"),
        "{text}"
    );
    assert!(text.contains("ok   lint::umbrella::/dev/stdin"), "{text}");
    assert!(
        text.contains("5 checks: 2 passed, 2 failed, 1 skipped"),
        "{text}"
    );
    // The copy checked in its place is gone with the check.
    let spool = std::env::temp_dir().join("testware-check-values-");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("the temp dir")
        .flatten()
        .filter(|e| {
            e.path()
                .display()
                .to_string()
                .starts_with(&spool.display().to_string())
        })
        .filter(|e| {
            !Path::new("/proc")
                .join(
                    e.file_name()
                        .to_string_lossy()
                        .rsplit('-')
                        .next()
                        .unwrap_or(""),
                )
                .exists()
        })
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// The remote dependency's archive, pulled before (into a `--dependency-dir`,
/// or helm's repository cache), is checked with the rest: its objects are held
/// to the rules, nothing is left out, and a directory that does not exist is
/// refused.
#[test]
fn remote_dependencies_pulled_before_are_checked_offline() {
    let work = std::env::temp_dir().join(format!("testware-check-archives-{}", std::process::id()));
    let _cleanup = Copy(work.clone());
    let source = work.join("kafka");
    std::fs::create_dir_all(source.join("templates")).unwrap();
    std::fs::write(
        source.join("Chart.yaml"),
        "apiVersion: v2\nname: kafka\nversion: 26.4.2\nappVersion: \"3.6.0\"\n",
    )
    .unwrap();
    // One deliberate finding (no resources), so the check shows it looked.
    std::fs::write(
        source.join("templates/broker.yaml"),
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}-kafka
  labels:
    app.kubernetes.io/name: kafka
    app.kubernetes.io/instance: {{ .Release.Name }}
    app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
    app.kubernetes.io/managed-by: {{ .Release.Service }}
    helm.sh/chart: kafka-{{ .Chart.Version }}
spec:
  serviceName: {{ .Release.Name }}-kafka
  selector:
    matchLabels: {app.kubernetes.io/name: kafka, app.kubernetes.io/instance: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: kafka, app.kubernetes.io/instance: {{ .Release.Name }}}
    spec:
      securityContext: {runAsNonRoot: true}
      containers:
        - name: broker
          image: localhost/kafka:3.6.0
          securityContext: {allowPrivilegeEscalation: false}
          readinessProbe: {tcpSocket: {port: 9092}}
          livenessProbe: {tcpSocket: {port: 9092}}
"#,
    )
    .unwrap();
    let archives = work.join("archives");
    // The helm the harness would run (HELM, PATH, or the cache's chosen one).
    let helm = tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(testware::Helm::locate(
            &testware::config::Tools::from_process(),
        ))
        .expect("helm, as the other checks need");
    let packaged = Command::new(helm.path())
        .args(["package", "--destination"])
        .arg(&archives)
        .arg(&source)
        .output()
        .expect("helm runs");
    assert!(packaged.status.success(), "{packaged:?}");
    let no_cache = work.join("no-cache").display().to_string();
    let chart = repo("fixtures/policy-charts/umbrella");
    let dir = archives.display().to_string();
    let expect_checked = |code: Option<i32>, text: &str| {
        assert_eq!(code, Some(1), "{text}");
        assert!(
            text.contains(&format!(
                "note: chart umbrella: dependency kafka 26.4.2 from {dir}/kafka-26.4.2.tgz"
            )),
            "{text}"
        );
        assert!(
            text.contains(
                "StatefulSet/test-kafka, container broker: rule resources: missing resources"
            ),
            "{text}"
        );
        assert!(!text.contains("not checked"), "{text}");
        assert!(text.contains("1 checks: 0 passed, 1 failed\n"), "{text}");
    };
    let (code, text) = run_check(
        &[&chart, "--rule", "resources", "--dependency-dir", &dir],
        &[("HELM_REPOSITORY_CACHE", &no_cache)],
        None,
    );
    expect_checked(code, &text);
    let (code, text) = run_check(
        &[&chart, "--rule", "resources"],
        &[("HELM_REPOSITORY_CACHE", &dir)],
        None,
    );
    expect_checked(code, &text);
    let (code, text) = check(&[&chart, "--dependency-dir", &no_cache]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!("--dependency-dir {no_cache}: not a directory")),
        "{text}"
    );
    std::fs::remove_dir_all(&work).unwrap();
}

/// A long-running bare Pod is held to probes, two Deployments with one
/// selector are caught, and requests without limits can be the policy.
#[test]
fn rules_see_bare_pods_and_shared_selectors_and_limits_can_be_optional() {
    let chart = repo("fixtures/policy-charts/rule-gaps");
    let (code, text) = check(&[&chart]);
    assert_eq!(code, Some(1), "{text}");
    for expected in [
        "Deployment/test-worker, container worker: rule resources: missing resources limits.cpu, limits.memory",
        "Pod/test-console, container console: rule probes: long-running container lacks readinessProbe and livenessProbe",
        "Deployment/test-api: rule selector-overlap: its selector app.kubernetes.io/instance=test,app.kubernetes.io/name=rule-gaps and Deployment/test-worker's selector app.kubernetes.io/instance=test,app.kubernetes.io/name=rule-gaps overlap: one selects the other's pods",
    ] {
        assert!(text.contains(expected), "{expected}\n in {text}");
    }
    assert!(text.contains("3 policy error(s), 0 warning(s)"), "{text}");
    // The migration Pod runs once (restartPolicy Never): no probes asked of it.
    assert!(!text.contains("test-migrate"), "{text}");
    let (code, text) = check(&[&chart, "--requests-only"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("2 policy error(s), 0 warning(s)"), "{text}");
    assert!(!text.contains("rule resources"), "{text}");
}

/// A values schema that forbids unknown keys refuses the probe values: the
/// chart is checked without them and says which rules were not applied and
/// why; naming its own keys applies them.
#[test]
fn a_strict_values_schema_is_checked_without_the_probe_and_says_so() {
    let chart = repo("fixtures/policy-charts/strict-schema");
    let (code, text) = check(&[&chart]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("0 policy error(s), 2 warning(s)")
            && text.contains("rule scheduling: rules scheduling and storage-class not applied: the chart's values.schema.json refuses the probe values at global.nodeSelector, global.tolerations and global.storageClass (name the chart's own keys with --node-selector-key, --tolerations-key and --storage-class-key): - at '': additional properties 'global' not allowed [strict-schema/values.schema.json]"),
        "{text}"
    );
    let (code, text) = check(&[&[chart.as_str()], &OWN_KEYS[..]].concat());
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("warning"), "{text}");
    let (code, text) = check(&[&chart, "--rule", "labels"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        !text.contains("lint::"),
        "a choice of rules runs no helm lint: {text}"
    );
}

/// Each component's keys named (the flags repeated): all pass; one left out is
/// blamed on the component that does not take the keys named.
#[test]
fn per_component_keys_can_each_be_named() {
    let chart = repo("fixtures/policy-charts/component-keys");
    let (code, text) = check(&[
        &chart,
        "--node-selector-key",
        "controller.nodeSelector",
        "--node-selector-key",
        "webhook.nodeSelector",
        "--tolerations-key",
        "controller.tolerations",
        "--tolerations-key",
        "webhook.tolerations",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("warning"), "{text}");
    let (code, text) = check(&[
        &chart,
        "--node-selector-key",
        "controller.nodeSelector",
        "--tolerations-key",
        "controller.tolerations",
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("1 policy error(s), 0 warning(s)")
            && text.contains("Deployment/test-webhook: rule scheduling: controller.nodeSelector (testware.io/node-group: system) does not reach the pod's nodeSelector"),
        "{text}"
    );
    // With no key named, the notice that global.* is not taken comes once for
    // the chart, not once per value set.
    let values = format!("{chart}/values.yaml");
    let (code, text) = check(&[&chart, "--values", &values, "--values", &values]);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(
        text.matches("value global.nodeSelector: rule scheduling: no pod takes it")
            .count(),
        1,
        "{text}"
    );
}

/// `--values a,b` is one value set, b over a; a pipe is read like a file;
/// `--debug` and `--skip-tests` are accepted; a chart that does not render is
/// a JUnit `<error>`, and a passing check's warnings reach `<system-out>`.
#[test]
fn values_layer_pipes_read_and_junit_tells_errors_from_failures() {
    let chart = repo("charts-under-test/echo-server");
    let unpinned = repo("fixtures/values/echo-server-latest.yaml");
    let pinned = "image: {tag: \"1.0.0\"}\n";
    let (code, text) = check_piped(
        &[
            &chart,
            "--values",
            &format!("{unpinned},/dev/stdin"),
            "--debug",
            "--skip-tests",
        ],
        pinned,
    );
    assert_eq!(code, Some(0), "the later file wins: {text}");
    let (code, text) = check_piped(
        &[&chart, "--values", &format!("/dev/stdin,{unpinned}")],
        pinned,
    );
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("image \"x:latest\" is not pinned"), "{text}");

    let junit =
        std::env::temp_dir().join(format!("testware-check-errors-{}.xml", std::process::id()));
    let strict = repo("fixtures/policy-charts/strict-schema");
    let (code, text) = check_piped(
        &[
            &strict,
            "--values",
            &format!("{strict}/values.yaml"),
            "--values",
            "/dev/stdin",
            "--junit",
            &junit.display().to_string(),
        ],
        "replicas: 2\n",
    );
    let xml = std::fs::read_to_string(&junit).unwrap_or_default();
    let _ = std::fs::remove_file(&junit);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("ERROR policy::strict-schema::/dev/stdin (not checked)")
            && text.contains("additional properties 'replicas' not allowed")
            && text.contains("4 checks: 2 passed, 2 failed (1 not checked)"),
        "{text}"
    );
    assert!(
        xml.contains("errors=\"1\"") && xml.contains("failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<system-out>0 policy error(s), 2 warning(s) in chart strict-schema"),
        "{xml}"
    );
}
