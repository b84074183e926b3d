//! The rules against fixture manifests.

use super::*;
use rstest::rstest;

fn load(name: &str) -> Manifests {
    // Cargo's directory at run time, not the build's (a reused build, a clone elsewhere).
    let path = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || env!("CARGO_MANIFEST_DIR").into(),
            std::path::PathBuf::from,
        )
        .join("testdata/policy")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Manifests::parse(&text).unwrap()
}

fn chart() -> ChartMeta {
    ChartMeta {
        name: "demo".into(),
        version: "1.2.3".into(),
        app_version: Some("1.2.3".into()),
        chart_type: None,
    }
}

fn run(m: &Manifests) -> Vec<Violation> {
    let meta = chart();
    let probe = ProbeValues::default();
    check_all(
        m,
        &Context {
            probe: Some(&probe),
            ..Context::new(&meta, "rel")
        },
    )
}

#[test]
fn the_good_fixture_passes_every_rule() {
    let violations = run(&load("good.yaml"));
    assert!(violations.is_empty(), "{violations:#?}");
}

#[rstest]
#[case(
    Rule::Labels,
    "bad-labels.yaml",
    "Deployment/demo",
    None,
    "object label app.kubernetes.io/instance is \"other\", expected \"rel\""
)]
#[case(
    Rule::Labels,
    "bad-labels.yaml",
    "Deployment/demo",
    None,
    "object label helm.sh/chart is \"demo-0.0.1\", expected \"demo-1.2.3\""
)]
#[case(
    Rule::ImagePinned,
    "bad-image.yaml",
    "Deployment/demo",
    Some("web"),
    "image \"localhost/demo:latest\" is not pinned"
)]
#[case(
    Rule::ImagePinned,
    "bad-image.yaml",
    "Deployment/demo",
    Some("init"),
    "image \"busybox\" is not pinned"
)]
#[case(
    Rule::Resources,
    "bad-resources.yaml",
    "Deployment/demo",
    Some("web"),
    "missing resources limits.cpu, limits.memory"
)]
#[case(
    Rule::Probes,
    "bad-probes.yaml",
    "Deployment/demo",
    Some("web"),
    "long-running container lacks livenessProbe"
)]
#[case(
    Rule::SecurityContext,
    "bad-security.yaml",
    "Deployment/demo",
    Some("web"),
    "runAsNonRoot is not true; allowPrivilegeEscalation is not false; container is privileged"
)]
#[case(
    Rule::ServiceSelector,
    "bad-service.yaml",
    "Service/demo",
    None,
    "selector app.kubernetes.io/instance=rel,app.kubernetes.io/name=dmeo matches no pod template"
)]
#[case(
    Rule::ServiceSelector,
    "bad-service.yaml",
    "Service/demo-metrics",
    None,
    "targetPort \"metrics\" of port 9090 is not a container port of Deployment/demo"
)]
#[case(
    Rule::References,
    "bad-references.yaml",
    "Deployment/demo",
    Some("web"),
    "env PASSWORD refers to Secret/demo-auth, which is not in the release"
)]
#[case(
    Rule::References,
    "bad-references.yaml",
    "Deployment/demo",
    Some("web"),
    "env MODE refers to key \"mode\" of ConfigMap/demo-config, which has no such key"
)]
#[case(
    Rule::References,
    "bad-references.yaml",
    "Deployment/demo",
    None,
    "volume data refers to PersistentVolumeClaim/demo-data, which is not in the release"
)]
#[case(
    Rule::Scheduling,
    "bad-scheduling.yaml",
    "Deployment/demo",
    None,
    "global.nodeSelector (testware.io/node-group: system) does not reach"
)]
#[case(
    Rule::Scheduling,
    "bad-scheduling.yaml",
    "Deployment/demo",
    None,
    "global.tolerations (key testware.io/node-group) do not reach"
)]
#[case(
    Rule::StorageClass,
    "bad-storage.yaml",
    "StatefulSet/demo-db",
    None,
    "volumeClaimTemplate data does not use global.storageClass"
)]
#[case(
    Rule::StorageClass,
    "bad-storage.yaml",
    "PersistentVolumeClaim/demo-cache",
    None,
    "claim does not use global.storageClass"
)]
#[case(
    Rule::ApiVersion,
    "bad-api-removed.yaml",
    "Deployment/demo",
    None,
    "extensions/v1beta1 Deployment is not served since Kubernetes 1.16 (target 1.37): use apps/v1"
)]
fn each_bad_fixture_is_caught_by_its_rule(
    #[case] rule: Rule,
    #[case] fixture: &str,
    #[case] object: &str,
    #[case] container: Option<&str>,
    #[case] message: &str,
) {
    let violations = run(&load(fixture));
    let hit = violations.iter().any(|v| {
        v.rule == rule
            && v.object == object
            && v.container.as_deref() == container
            && (v.message.starts_with(message)
                || v.message.split("; ").any(|m| m.starts_with(message)))
    });
    assert!(
        hit,
        "no {rule} violation on {object} {container:?} starting {message:?} in {violations:#?}"
    );
    let others: Vec<&Violation> = violations.iter().filter(|v| v.rule != rule).collect();
    assert!(
        others.is_empty(),
        "{fixture} should break only {rule}: {others:#?}"
    );
}

#[test]
fn values_no_pod_or_claim_takes_are_reported_once_not_blamed_on_every_object() {
    let violations = run(&load("keys-not-taken.yaml"));
    let seen: Vec<(Rule, Severity, &str)> = violations
        .iter()
        .map(|v| (v.rule, v.severity, v.object.as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (
                Rule::Scheduling,
                Severity::Warning,
                "value global.nodeSelector"
            ),
            (
                Rule::Scheduling,
                Severity::Warning,
                "value global.tolerations"
            ),
            (
                Rule::StorageClass,
                Severity::Warning,
                "value global.storageClass"
            ),
        ],
        "{violations:#?}"
    );
    assert!(violations[0]
        .message
        .contains("testware check --node-selector-key KEY"));
}

#[test]
fn a_known_kind_in_an_unknown_version_is_never_skipped_silently() {
    let violations = run(&load("bad-api-unknown.yaml"));
    let api: Vec<&str> = violations
        .iter()
        .filter(|v| v.rule == Rule::ApiVersion && v.object == "Deployment/demo")
        .map(|v| v.message.as_str())
        .collect();
    assert_eq!(
            api,
            vec!["apps/v2 is not an API version of Deployment (expected apps/v1): no other rule could read this object"]
        );
}

#[test]
fn deprecated_versions_warn_and_removed_ones_fail_at_the_target_release() {
    let m = Manifests::parse(
            "---\n# Source: demo/templates/hpa.yaml\napiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: demo}\nspec: {scaleTargetRef: {kind: Deployment, name: demo}, maxReplicas: 2}\n---\napiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: plain}\nspec: {scaleTargetRef: {kind: Deployment, name: demo}, maxReplicas: 2}\n",
        )
        .unwrap();
    let at = |minor| {
        api_version(&m, KubeVersion { minor })
            .into_iter()
            .map(|v| (v.severity, v.object, v.message))
            .collect::<Vec<_>>()
    };
    assert_eq!(at(22), vec![]);
    assert_eq!(
            at(23),
            vec![(
                Severity::Warning,
                "HorizontalPodAutoscaler/demo".to_owned(),
                "autoscaling/v2beta2 HorizontalPodAutoscaler is deprecated (target 1.23; removed in 1.26): use autoscaling/v2".to_owned()
            )]
        );
    assert_eq!(
            at(26),
            vec![(
                Severity::Error,
                "HorizontalPodAutoscaler/demo".to_owned(),
                "autoscaling/v2beta2 HorizontalPodAutoscaler is not served since Kubernetes 1.26 (target 1.26): use autoscaling/v2".to_owned()
            )]
        );
}

#[test]
fn exemptions_need_a_reason_and_external_refs_are_honoured() {
    let violations = run(&load("exempt.yaml"));
    let ids: Vec<(Rule, &str)> = violations
        .iter()
        .map(|v| (v.rule, v.object.as_str()))
        .collect();
    assert_eq!(
        ids,
        [(Rule::SecurityContext, "Deployment/no-reason"); 2],
        "{violations:#?}"
    );
}

#[rstest]
#[case("redis:7.0.15", true)]
#[case("localhost:5000/redis:7", true)]
#[case("localhost:5000/redis", false)]
#[case("redis", false)]
#[case("redis:latest", false)]
#[case("redis@sha256:abcd", true)]
#[case("ska/tango:master", false)]
#[case("rubin/app:main", false)]
#[case("x:develop", false)]
#[case("x:stable", false)]
#[case("x:edge", false)]
#[case("x:master@sha256:abcd", true)]
#[case("x:1.2.3-main", true)]
fn pinned_images(#[case] image: &str, #[case] pinned: bool) {
    assert_eq!(is_pinned(image), pinned);
}

#[test]
fn report_names_chart_values_object_container_and_rule() {
    let meta = chart();
    let m = load("bad-resources.yaml");
    let report = Report {
        chart: meta.name.clone(),
        values: "ci/small.yaml".into(),
        violations: resources(&m),
    };
    assert!(report.to_string().contains(
            "chart demo, values ci/small.yaml: Deployment/demo, container web: rule resources: missing resources limits.cpu, limits.memory"
        ), "{report}");
}

/// A Deployment without probes or resources, exempted from both with reasons
/// (one on the object, one on the pod template), one exemption without a
/// reason, a Service exempted from service-selector, and a test hook.
const EXEMPTIONS_AND_HOOKS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    policy.testware.io/exempt-resources: "sized by the operator at runtime"
    policy.testware.io/exempt-image-pinned: ""
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations:
        policy.testware.io/exempt-probes: "a batch worker polls a queue; no port"
    spec:
      containers:
      - name: web
        image: web:latest
---
apiVersion: v1
kind: Service
metadata:
  name: operated
  annotations:
    policy.testware.io/exempt-service-selector: "pods created by the operator"
spec:
  selector: {app: operated}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Pod
metadata:
  name: web-test
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers:
  - name: check
    image: tool:latest
"#;

#[test]
fn exemptions_hold_for_every_rule_and_kind_and_test_hooks_are_left_out() {
    let m = Manifests::parse(EXEMPTIONS_AND_HOOKS).unwrap();
    let meta = chart();
    let check = |include_test_hooks| {
        check_all(
            &m,
            &Context {
                chart: &meta,
                release: "rel",
                probe: None,
                include_test_hooks,
                kube_version: KubeVersion::DEFAULT,
                schemas: None,
                external_refs: &[],
                limits: Limits::Required,
            },
        )
    };
    let hits = |violations: &[Violation], rule: Rule, object: &str| {
        violations
            .iter()
            .any(|v| v.rule == rule && v.object == object)
    };
    let violations = check(false);
    assert!(
        !hits(&violations, Rule::Resources, "Deployment/web"),
        "{violations:#?}"
    );
    assert!(
        !hits(&violations, Rule::Probes, "Deployment/web"),
        "{violations:#?}"
    );
    assert!(
        hits(&violations, Rule::ImagePinned, "Deployment/web"),
        "an exemption without a reason does not count: {violations:#?}"
    );
    assert!(
        !hits(&violations, Rule::ServiceSelector, "Service/operated"),
        "{violations:#?}"
    );
    assert!(
        !violations.iter().any(|v| v.object == "Pod/web-test"),
        "{violations:#?}"
    );
    let with_hooks = check(true);
    assert!(
        hits(&with_hooks, Rule::ImagePinned, "Pod/web-test"),
        "{with_hooks:#?}"
    );
}

#[test]
fn an_undeclared_numeric_target_port_is_a_warning_and_does_not_fail() {
    let m = Manifests::parse(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: web:1.0
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 9999}, {port: 81, targetPort: metrics}]
"#,
    )
    .unwrap();
    let meta = chart();
    let violations = check_all(
        &m,
        &Context {
            chart: &meta,
            release: "rel",
            probe: None,
            include_test_hooks: false,
            kube_version: KubeVersion::DEFAULT,
            schemas: None,
            external_refs: &[],
            limits: Limits::Required,
        },
    );
    let of_service: Vec<(Severity, &str)> = violations
        .iter()
        .filter(|v| v.rule == Rule::ServiceSelector)
        .map(|v| (v.severity, v.message.as_str()))
        .collect();
    assert_eq!(
        of_service,
        [
            (
                Severity::Warning,
                "targetPort 9999 of port 80 is not a container port of Deployment/web"
            ),
            (
                Severity::Error,
                "targetPort \"metrics\" of port 81 is not a container port of Deployment/web"
            ),
        ],
        "{violations:#?}"
    );
    let warnings_only = Report {
        chart: "demo".into(),
        values: "default".into(),
        violations: violations
            .into_iter()
            .filter(|v| v.severity == Severity::Warning)
            .collect(),
    };
    assert!(warnings_only.passes());
    let text = warnings_only.to_string();
    assert!(
        text.starts_with("0 policy error(s), 1 warning(s)"),
        "{text}"
    );
    assert!(
        text.contains("  - warning: chart demo, values default: Service/web"),
        "{text}"
    );
}

/// Two Deployments of a release: the same selector overlaps, a component label
/// tells them apart, and `matchExpressions` selectors are not judged.
#[test]
fn controllers_that_select_one_anothers_pods_are_caught() {
    let pair = |a: &str, b: &str| {
        let deployment = |name: &str, labels: &str| {
            format!("---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}}}\nspec:\n  selector: {{matchLabels: {labels}}}\n  template:\n    metadata: {{labels: {labels}}}\n    spec: {{containers: [{{name: c, image: x:1}}]}}\n")
        };
        let m = Manifests::parse(&(deployment("a", a) + &deployment("b", b))).unwrap();
        selector_overlap(&m)
            .into_iter()
            .map(|v| (v.rule, v.object))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pair("{app: x}", "{app: x}"),
        [(Rule::SelectorOverlap, "Deployment/a".to_owned())]
    );
    assert_eq!(
        pair("{app: x}", "{app: x, component: b}"),
        [(Rule::SelectorOverlap, "Deployment/a".to_owned())],
        "a's selector takes b's pods"
    );
    assert_eq!(pair("{app: x, component: a}", "{app: x, component: b}"), []);
}

/// A bare Pod that restarts always is long-running (probes apply); one that
/// runs once, or a hook, is not.
#[test]
fn bare_pods_that_restart_always_need_probes() {
    let pod = |restart: &str, annotations: &str| {
        let m = Manifests::parse(&format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p, annotations: {annotations}}}\nspec: {{restartPolicy: {restart}, containers: [{{name: c, image: x:1}}]}}\n"
        ))
        .unwrap();
        probes(&m).len()
    };
    assert_eq!(pod("Always", "{}"), 1);
    assert_eq!(pod("Never", "{}"), 0);
    assert_eq!(pod("OnFailure", "{}"), 0);
    assert_eq!(pod("Always", "{helm.sh/hook: pre-install}"), 0);
}
