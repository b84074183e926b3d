//! Behaviour that charts written for a current Kubernetes rely on, shown on
//! the cluster the run uses (fixture charts under `fixtures/current-kubernetes`):
//! native sidecar containers, Pod Security Admission, CEL validation rules in a
//! CRD, ValidatingAdmissionPolicy, a CronJob's time zone, and a budget that lets
//! a drain evict a pod that never becomes ready. Each fails on a server that
//! lacks the behaviour (Kubernetes 1.20 failed every one).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DynamicObject, EvictParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use testware::{cases, check, check_eq, expect_err, Ctx, Install, PodSecurity, Suite};
use testware_selftests::fixture;

fn main() -> std::process::ExitCode {
    Suite::new("current_kubernetes")
        .cases(cases![chart_deploy:
            a_native_sidecar_runs_beside_the_main_container,
            a_privileged_pod_is_refused_at_once_in_a_restricted_namespace,
            a_cel_rule_in_a_crd_refuses_a_bad_resource,
            an_admission_policy_refuses_a_deployment_without_a_team,
            a_cronjob_keeps_its_time_zone_and_a_bad_one_is_refused,
            a_budget_that_always_allows_lets_an_unready_pod_be_evicted,
        ])
        .run()
}

/// The cluster's pause image (the fixtures' `image` value).
const PAUSE: &str = "localhost/testware-pause:0.1.0";

/// The one pod of the release's Deployment (label `app.kubernetes.io/instance`).
async fn pod_of(pods: &kube::Api<Pod>, release: &str) -> anyhow::Result<Pod> {
    let list = pods
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={release}")))
        .await?;
    list.items
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("release {release} has no pod"))
}

/// The server's answer to a refused write, as text (its status message).
fn refusal(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}

async fn a_native_sidecar_runs_beside_the_main_container(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    Install::chart(fixture("current-kubernetes/native-sidecar"))
        .release("sidecar")
        .run(&ctx, &ns)
        .await?;
    let pod = pod_of(&ns.api::<Pod>(), "sidecar").await?;
    let status = pod.status.unwrap_or_default();
    check_eq!(status.phase.as_deref(), Some("Running"));
    // The init container was started and still runs, beside a running main
    // container: only a native sidecar can (a plain init container must end
    // before the main container starts).
    let sidecar = status
        .init_container_statuses
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == "sidecar")
        .ok_or_else(|| anyhow::anyhow!("the pod reports no init container 'sidecar'"))?;
    check!(
        sidecar
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .is_some(),
        "the sidecar runs: {sidecar:?}"
    );
    check_eq!(sidecar.started, Some(true), "the sidecar counts as started");
    let main = status
        .container_statuses
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == "main")
        .ok_or_else(|| anyhow::anyhow!("the pod reports no container 'main'"))?;
    check!(main.ready, "the main container is ready: {main:?}");
    Ok(())
}

async fn a_privileged_pod_is_refused_at_once_in_a_restricted_namespace(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let ns = ctx.create_namespace_with(PodSecurity::Restricted).await?;
    let namespace = kube::Api::<k8s_openapi::api::core::v1::Namespace>::all(ctx.client().await?)
        .get(ns.name())
        .await?;
    check_eq!(
        namespace
            .metadata
            .labels
            .unwrap_or_default()
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted"),
        "the namespace enforces the level asked for"
    );
    let started = std::time::Instant::now();
    // A generous timeout: the refusal must end the wait, not the timeout.
    let error = expect_err(
        Install::chart(fixture("current-kubernetes/privileged-pod"))
            .release("agent")
            .timeout(Duration::from_secs(120))
            .run(&ctx, &ns)
            .await,
        "installing a privileged pod into a restricted namespace",
    )?;
    let text = testware::error_chain(&error);
    println!(
        "refused after {:.1} s: {text}",
        started.elapsed().as_secs_f64()
    );
    check!(
        text.contains("violates PodSecurity \"restricted:latest\"")
            && text.contains("privileged")
            && text.contains("pods \"agent-"),
        "the error names the pod and the violation: {text}"
    );
    check!(
        !text.contains("timed out"),
        "the install failed at the refusal, not at its timeout: {text}"
    );
    Ok(())
}

async fn a_cel_rule_in_a_crd_refuses_a_bad_resource(ctx: Ctx) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let ns = ctx.create_namespace().await?;
    Install::chart(fixture("current-kubernetes/cel-validation"))
        .release("widgets")
        .run(&ctx, &ns)
        .await?;
    let crds: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        kube::Api::all(client.clone());
    tokio::time::timeout(
        ctx.deadline().cap(Duration::from_secs(30)),
        kube::runtime::wait::await_condition(
            crds,
            "widgets.cel.testware.io",
            kube::runtime::wait::conditions::is_crd_established(),
        ),
    )
    .await??;
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("cel.testware.io", "v1", "Widget"));
    let widgets: kube::Api<DynamicObject> =
        kube::Api::namespaced_with(client, ns.name(), &resource);
    let widget = |name: &str, replicas: i64, max: i64| -> anyhow::Result<DynamicObject> {
        Ok(serde_json::from_value(serde_json::json!({
            "apiVersion": "cel.testware.io/v1",
            "kind": "Widget",
            "metadata": {"name": name},
            "spec": {"replicas": replicas, "maxReplicas": max},
        }))?)
    };
    widgets
        .create(&PostParams::default(), &widget("within", 2, 3)?)
        .await?;
    let refused = expect_err(
        widgets
            .create(&PostParams::default(), &widget("beyond", 5, 3)?)
            .await,
        "a Widget with more replicas than its maximum",
    )?;
    let text = refusal(&refused);
    check!(
        text.contains("replicas must not exceed maxReplicas") && text.contains("422"),
        "the API server refuses it with the rule's message: {text}"
    );
    Ok(())
}

/// A Deployment of the pause image named `name`, with `labels`.
fn deployment(name: &str, labels: serde_json::Value) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": PAUSE}]},
            },
        },
    }))?)
}

async fn an_admission_policy_refuses_a_deployment_without_a_team(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    Install::chart(fixture("current-kubernetes/admission-policy"))
        .release("policy")
        .run(&ctx, &ns)
        .await?;
    let deployments = ns.api::<Deployment>();
    // The API server takes up a new policy within a second or two: until the
    // refusal comes, an unlabelled Deployment may still pass (and is removed).
    let anonymous = deployment("anonymous", serde_json::json!({}))?;
    let text = testware::wait::wait_until(
        "the policy to refuse a Deployment without a team label",
        Duration::from_secs(30),
        || async {
            match deployments.create(&PostParams::default(), &anonymous).await {
                Err(error) => Ok(refusal(&error)),
                Ok(_) => {
                    let _ = deployments.delete("anonymous", &Default::default()).await;
                    Err("admitted (and deleted again)")
                }
            }
        },
    )
    .await?;
    check!(
        text.contains("every Deployment names its team")
            && text.contains("ValidatingAdmissionPolicy"),
        "refused by the policy, with its message: {text}"
    );
    deployments
        .create(
            &PostParams::default(),
            &deployment("owned", serde_json::json!({"team": "camera"}))?,
        )
        .await?;
    Ok(())
}

async fn a_cronjob_keeps_its_time_zone_and_a_bad_one_is_refused(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    Install::chart(fixture("current-kubernetes/cronjob-timezone"))
        .release("nightly")
        .run(&ctx, &ns)
        .await?;
    let cronjobs = ns.api::<CronJob>();
    let stored = cronjobs.get("nightly").await?;
    check_eq!(
        stored.spec.as_ref().and_then(|s| s.time_zone.as_deref()),
        Some("America/Santiago"),
        "the server keeps the time zone"
    );
    let error = expect_err(
        Install::chart(fixture("current-kubernetes/cronjob-timezone"))
            .release("martian")
            .set("timeZone", "Mars/Olympus_Mons")
            .run(&ctx, &ns)
            .await,
        "a CronJob in a time zone that does not exist",
    )?;
    let text = testware::error_chain(&error);
    check!(
        text.contains("Mars/Olympus_Mons") && text.contains("unknown time zone"),
        "the server refuses the unknown zone: {text}"
    );
    Ok(())
}

async fn a_budget_that_always_allows_lets_an_unready_pod_be_evicted(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    // The pod never becomes ready: nothing to wait for.
    Install::chart(fixture("current-kubernetes/budget-unhealthy"))
        .release("web")
        .no_wait()
        .run(&ctx, &ns)
        .await?;
    let pods = ns.api::<Pod>();
    let budgets = ns.api::<PodDisruptionBudget>();
    let running =
        |pod: &Pod| pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    // The budget counts the pod (its status observed) and the pod runs, unready.
    let pod = testware::wait::wait_until(
        "the pod to run under an observed budget",
        Duration::from_secs(60),
        || async {
            let budget = budgets.get("web").await.map_err(|e| e.to_string())?;
            let observed = budget.status.as_ref().is_some_and(|s| {
                s.expected_pods == 1 && s.observed_generation == budget.metadata.generation
            });
            match pod_of(&pods, "web").await {
                Ok(pod) if observed && running(&pod) => Ok(pod),
                Ok(_) => Err(format!("budget observed: {observed}; pod not running yet")),
                Err(e) => Err(format!("budget observed: {observed}; {e:#}")),
            }
        },
    )
    .await?;
    let name = pod.metadata.name.clone().unwrap_or_default();
    println!("pod {name} runs, unready, under an observed budget");
    check!(!testware::status::is_ready(&pod), "the pod is not ready");

    // With the default policy (IfHealthyBudget) the budget of one available
    // pod, none available, refuses the eviction...
    set_unhealthy_policy(&budgets, "IfHealthyBudget", &ctx).await?;
    // The client retries an eviction answered 429 by itself (as drains do):
    // still unanswered after a while, or answered 429, it was refused.
    match tokio::time::timeout(
        Duration::from_secs(5),
        pods.evict(&name, &EvictParams::default()),
    )
    .await
    {
        Err(_) => println!("eviction of {name} refused (429, retried by the client)"),
        Ok(Err(e)) => check!(
            refusal(&e).contains("429"),
            "the budget refuses: {}",
            refusal(&e)
        ),
        Ok(Ok(_)) => {
            anyhow::bail!("the budget let the unready pod {name} be evicted under IfHealthyBudget")
        }
    }
    let still = pods.get(&name).await?;
    check!(
        still.metadata.deletion_timestamp.is_none(),
        "pod {name} is still there, not terminating"
    );
    // ...and AlwaysAllow lets it go: a drain is not blocked by a broken pod.
    set_unhealthy_policy(&budgets, "AlwaysAllow", &ctx).await?;
    pods.evict(&name, &EvictParams::default()).await?;
    println!("evicted {name}");
    Ok(())
}

/// Sets budget `web`'s `unhealthyPodEvictionPolicy` and waits until the
/// disruption controller has observed it (evictions answer 429 until then).
async fn set_unhealthy_policy(
    budgets: &kube::Api<PodDisruptionBudget>,
    policy: &str,
    ctx: &Ctx,
) -> anyhow::Result<()> {
    let patched = budgets
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"unhealthyPodEvictionPolicy": policy}})),
        )
        .await?;
    check_eq!(
        patched
            .spec
            .as_ref()
            .and_then(|s| s.unhealthy_pod_eviction_policy.as_deref()),
        Some(policy),
        "the server keeps the policy"
    );
    let generation = patched.metadata.generation;
    let observed = kube::runtime::wait::await_condition(
        budgets.clone(),
        "web",
        move |b: Option<&PodDisruptionBudget>| {
            b.and_then(|b| b.status.as_ref())
                .is_some_and(|s| s.observed_generation >= generation)
        },
    );
    tokio::time::timeout(ctx.deadline().cap(Duration::from_secs(30)), observed).await??;
    Ok(())
}
