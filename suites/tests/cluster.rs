//! chart_deploy cases that show the cluster itself works as charts need it:
//! service DNS, StatefulSet pod DNS, persistent volumes that survive a pod
//! restart, and logs, exec and port-forward through the API server.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod, Service};
use kube::api::{DeleteParams, PostParams};
use kube::Api;
use suites::{toolbox_pod, IMAGE_TAG};
use testware::net::{exec, port_forward_http};
use testware::wait::{pod_ready, wait_until};
use testware::{cases, check, check_eq, Case, Ctx, Suite};

const READY: Duration = Duration::from_secs(90);

/// How long a helper pod may take to become ready.
const POD_START: Duration = Duration::from_secs(90);

fn main() -> std::process::ExitCode {
    Suite::new("cluster")
        .charts(suites::charts_dir())
        .cases(cases![chart_deploy:
            service_name_resolves_and_answers,
            statefulset_pod_resolves_its_own_dns_name,
            volume_binds_and_data_survives_a_pod_restart,
            logs_exec_and_port_forward_go_through_the_api_server,
            janitor_reaps_only_namespaces_whose_run_stopped_renewing,
        ])
        .cases(explained_timeouts())
        .run()
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> anyhow::Result<T> {
    Ok(serde_json::from_value(value)?)
}

async fn service_name_resolves_and_answers(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    ctx.charts()?
        .install("echo-server")
        .release("web")
        .run(&ctx, &ns)
        .await?;
    let pods: Api<Pod> = ns.api();
    let toolbox = ns
        .start_pod(&toolbox_pod("toolbox", None)?, POD_START)
        .await?;
    let fqdn = format!("web-echo-server.{}.svc.cluster.local", ns.name());
    let service: Service = ns.api::<Service>().get("web-echo-server").await?;
    let cluster_ip = service.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
    // DNS follows the API by watch, so a record can lag its Service by a moment.
    let resolved = wait_until(
        format!("{fqdn} to resolve"),
        Duration::from_secs(10),
        || async { exec_anyhow(&pods, &toolbox, &["/testware-toolbox", "resolve", &fqdn]).await },
    )
    .await?;
    check_eq!(
        resolved.trim(),
        cluster_ip.as_str(),
        "{fqdn} should resolve to the Service's ClusterIP"
    );
    // kube-proxy programs the Service's rules by watch too: refused for a moment.
    let body = exec_anyhow(
        &pods,
        &toolbox,
        &[
            "/testware-toolbox",
            "http-get",
            "--retry-for",
            "10",
            &format!("http://{fqdn}/healthz"),
        ],
    )
    .await?;
    check_eq!(body, "ok\n", "GET /healthz through the Service");
    let short = exec_anyhow(
        &pods,
        &toolbox,
        &[
            "/testware-toolbox",
            "http-get",
            "--retry-for",
            "10",
            "http://web-echo-server/healthz",
        ],
    )
    .await?;
    check_eq!(
        short,
        "ok\n",
        "the short name through the pod's search domains"
    );
    let missing = exec_anyhow(
        &pods,
        &toolbox,
        &[
            "/testware-toolbox",
            "resolve",
            &format!("nope.{}.svc.cluster.local", ns.name()),
        ],
    )
    .await;
    check!(
        missing.is_err(),
        "a missing Service must not resolve: {missing:?}"
    );
    Ok(())
}

async fn exec_anyhow(pods: &Api<Pod>, pod: &str, command: &[&str]) -> anyhow::Result<String> {
    Ok(exec(pods, pod, command).await?)
}

async fn statefulset_pod_resolves_its_own_dns_name(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let service: Service = from_json(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "db"},
        "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "db", "port": 7000}]}
    }))?;
    ns.api::<Service>()
        .create(&PostParams::default(), &service)
        .await?;
    let mut template = serde_json::to_value(toolbox_pod("db", None)?)?;
    template["spec"]["containers"][0]["ports"] =
        serde_json::json!([{"name": "db", "containerPort": 7000}]);
    let sts: StatefulSet = from_json(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "serviceName": "db", "replicas": 1,
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": template["spec"].clone()}
        }
    }))?;
    ns.api::<StatefulSet>()
        .create(&PostParams::default(), &sts)
        .await?;
    let pods: Api<Pod> = ns.api();
    // The watch behind pod_ready also covers the time until the StatefulSet creates the pod.
    pod_ready(ns.client(), ns.name(), "db-0", READY).await?;
    let pod_ip = pods
        .get("db-0")
        .await?
        .status
        .and_then(|s| s.pod_ip)
        .unwrap_or_default();
    let own_name = format!("db-0.db.{}.svc.cluster.local", ns.name());
    let resolved = wait_until(
        format!("{own_name} to resolve"),
        Duration::from_secs(15),
        || async {
            let out =
                exec_anyhow(&pods, "db-0", &["/testware-toolbox", "resolve", &own_name]).await?;
            anyhow::ensure!(
                out.trim() == pod_ip,
                "{own_name} resolved to {:?}, the pod has {pod_ip}",
                out.trim()
            );
            Ok(out)
        },
    )
    .await?;
    check_eq!(resolved.trim(), pod_ip.as_str());
    Ok(())
}

async fn volume_binds_and_data_survives_a_pod_restart(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let client = ns.client().clone();
    let claim: PersistentVolumeClaim = from_json(serde_json::json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}}
    }))?;
    let claims: Api<PersistentVolumeClaim> = ns.api();
    claims.create(&PostParams::default(), &claim).await?;
    let pods: Api<Pod> = ns.api();
    let writer = ns
        .start_pod(&toolbox_pod("writer", Some("data"))?, POD_START)
        .await?;
    let bound = claims.get("data").await?;
    check_eq!(
        bound.status.and_then(|s| s.phase).as_deref(),
        Some("Bound"),
        "the claim should be bound once its pod runs"
    );
    let volume_name = bound.spec.and_then(|s| s.volume_name).unwrap_or_default();
    let volume = Api::<PersistentVolume>::all(client.clone())
        .get(&volume_name)
        .await?;
    check!(
        volume
            .spec
            .as_ref()
            .and_then(|s| s.host_path.as_ref())
            .is_some(),
        "the volume should be a hostPath volume: {volume:?}"
    );

    let token = testware::config::random_suffix(12);
    exec_anyhow(
        &pods,
        &writer,
        &["/testware-toolbox", "write", "/data/token", &token],
    )
    .await?;
    let writer_uid = pods.get(&writer).await?.metadata.uid.unwrap_or_default();
    pods.delete(
        &writer,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await?;
    let deleted = kube::runtime::wait::await_condition(
        pods.clone(),
        &writer,
        kube::runtime::wait::conditions::is_deleted(&writer_uid),
    );
    tokio::time::timeout(READY, deleted)
        .await
        .map_err(|_| anyhow::anyhow!("the writer pod was not deleted within {READY:?}"))??;
    let reader = ns
        .start_pod(&toolbox_pod("reader", Some("data"))?, POD_START)
        .await?;
    let read = exec_anyhow(
        &pods,
        &reader,
        &["/testware-toolbox", "read", "/data/token"],
    )
    .await?;
    check_eq!(read, token, "data written before the restart");

    // Reclaim policy Delete: releasing the claim removes the volume.
    pods.delete(
        &reader,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await?;
    claims.delete("data", &DeleteParams::default()).await?;
    let volumes = Api::<PersistentVolume>::all(client.clone());
    testware::wait::watch_until(
        &volumes,
        &volume_name,
        format!("volume {volume_name} to be deleted"),
        Duration::from_secs(60),
        |pv| match pv {
            None => testware::status::State::Done,
            Some(pv) => testware::status::State::Pending(format!(
                "phase {:?}",
                pv.status.as_ref().and_then(|s| s.phase.clone())
            )),
        },
        || async { String::new() },
    )
    .await?;
    Ok(())
}

async fn logs_exec_and_port_forward_go_through_the_api_server(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let echo: Pod = from_json(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "echo"},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "echo",
                "image": format!("localhost/echo-server:{IMAGE_TAG}"),
                "imagePullPolicy": "IfNotPresent",
                "ports": [{"name": "http", "containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1}
            }]
        }
    }))?;
    let pods: Api<Pod> = ns.api();
    ns.start_pod(&echo, POD_START).await?;
    let line = format!("hello from {}", testware::config::random_suffix(8));
    let (status, body) =
        port_forward_http(&pods, "echo", 8080, "POST", "/echo", line.as_bytes()).await?;
    check!(
        status == 200,
        "POST /echo through port-forward answered {status}: {body:?}"
    );
    let logs = wait_until(
        "the echoed line in the pod log",
        Duration::from_secs(10),
        || async {
            let logs = pods.logs("echo", &Default::default()).await?;
            anyhow::ensure!(logs.contains(&line), "pod log lacks {line:?}: {logs:?}");
            Ok(logs)
        },
    )
    .await?;
    check!(
        logs.lines().any(|l| l == line),
        "the echoed line should be a line of its own: {logs:?}"
    );

    let toolbox = ns
        .start_pod(&toolbox_pod("toolbox", None)?, POD_START)
        .await?;
    let out = exec_anyhow(
        &pods,
        &toolbox,
        &["/testware-toolbox", "echo", "through", "exec"],
    )
    .await?;
    check_eq!(out, "through exec\n");
    let failing = exec(
        &pods,
        &toolbox,
        &["/testware-toolbox", "read", "/no/such/file"],
    )
    .await;
    let text = failing.err().map(|e| e.to_string()).unwrap_or_default();
    check!(
        text.contains("reading /no/such/file"),
        "a failing command reports its stderr: {text:?}"
    );
    Ok(())
}

async fn janitor_reaps_only_namespaces_whose_run_stopped_renewing(ctx: Ctx) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    use testware::cluster::labels;
    let live = ctx.create_namespace().await?;
    let client = live.client().clone();
    let namespaces = Api::<Namespace>::all(client.clone());
    let dead_name = format!("{}-dead", live.name());
    let dead: Namespace = from_json(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {
            "name": dead_name,
            "labels": {labels::MANAGED_BY: labels::MANAGER, labels::RUN_ID: "killed-run"},
            "annotations": {labels::EXPIRES_AT: "2020-01-01T00:00:00Z"}
        }
    }))?;
    namespaces.create(&PostParams::default(), &dead).await?;
    let reaped = testware::namespace::reap_expired(&client).await?;
    check!(
        reaped.contains(&dead_name),
        "the expired namespace {dead_name} should be reaped: {reaped:?}"
    );
    check!(
        !reaped.iter().any(|n| n == live.name()),
        "the live namespace {} must not be reaped: {reaped:?}",
        live.name()
    );
    testware::wait::namespace_gone(&client, &dead_name, Duration::from_secs(60)).await?;
    let annotation = namespaces
        .get(live.name())
        .await?
        .metadata
        .annotations
        .unwrap_or_default();
    check!(
        annotation.contains_key(labels::EXPIRES_AT),
        "a live namespace carries its expiry: {annotation:?}"
    );
    Ok(())
}

/// Pods that never become ready; the timeout must say why.
fn explained_timeouts() -> Vec<Case> {
    let cases: [(&str, serde_json::Value, &[&str]); 3] = [
        (
            "timeout_explains_a_missing_image",
            serde_json::json!({"image": "localhost/no-such-image:1.0", "imagePullPolicy": "IfNotPresent"}),
            &["ErrImagePull", "localhost/no-such-image:1.0"],
        ),
        (
            "timeout_explains_a_crashing_container",
            // A probe that never passes, so the moments the container runs do not count as ready.
            serde_json::json!({"args": ["read", "/no/such/file"],
                "readinessProbe": {"exec": {"command": ["/testware-toolbox", "read", "/never"]}, "periodSeconds": 1}}),
            &["last exit 1", "reading /no/such/file"],
        ),
        (
            "timeout_explains_an_unschedulable_pod",
            serde_json::json!({"nodeSelector": {"testware.io/no-such-node": "x"}}),
            &["Unschedulable", "nodes are available", "didn't match"],
        ),
    ];
    cases
        .into_iter()
        .map(|(name, change, expected)| {
            Case::chart_deploy(name, move |ctx| {
                let change = change.clone();
                async move {
                    let ns = ctx.create_namespace().await?;
                    let mut pod = serde_json::to_value(toolbox_pod("broken", None)?)?;
                    for (key, value) in change.as_object().into_iter().flatten() {
                        if key == "nodeSelector" {
                            pod["spec"][key] = value.clone();
                        } else {
                            pod["spec"]["containers"][0][key] = value.clone();
                        }
                    }
                    let pods: Api<Pod> = ns.api();
                    pods.create(&PostParams::default(), &from_json(pod)?)
                        .await?;
                    let result =
                        pod_ready(ns.client(), ns.name(), "broken", Duration::from_secs(25)).await;
                    let text = result.err().map(|e| e.to_string()).unwrap_or_default();
                    check!(
                        text.starts_with(
                            "timed out after 25.0 s waiting for pod broken to be ready"
                        ),
                        "{text:?}"
                    );
                    // Image-pull reasons alternate between ErrImagePull and ImagePullBackOff.
                    let any_pull =
                        |t: &str| t.contains("ErrImagePull") || t.contains("ImagePullBackOff");
                    for want in expected {
                        let found = if *want == "ErrImagePull" {
                            any_pull(&text)
                        } else {
                            text.contains(want)
                        };
                        check!(found, "the explanation should mention {want:?}: {text}");
                    }
                    Ok(())
                }
            })
        })
        .collect()
}
