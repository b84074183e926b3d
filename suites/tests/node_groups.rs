//! The embargo ingest service on a cluster shaped like production: a `system`
//! node group (Redis, the webhook, the idle reaper) and a tainted `processing`
//! group (the ingest workers), values `ci/platform.yaml`. Where the pods land,
//! a wrong value seen to put them elsewhere, a processing node lost mid-work,
//! a system node drained with and without the webhook's PodDisruptionBudget,
//! and a processing node cut off and brought back.
//!
//! The cases that change nodes (cordon, drain, lose, cut off) are marked
//! `exclusive`: each holds the cluster alone while it runs, whatever else shares
//! the cluster (other threads, processes, CI jobs), and the placement case runs
//! beside the others. They need a cluster shaped so: `testware cluster up
//! --node-group system=2 --node-group processing=2:taint` (ci/test's node-group
//! stage), whose kubeconfig names the command that loses and cuts off nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Pod, Service};
use testware::cluster::drain;
use testware::cluster::faults::{self, Fault, NodeFaults};
use testware::cluster::nodes::{self, NodeInfo, GROUP_LABEL};
use testware::namespace::TestNamespace;
use testware::wait::wait_until;
use testware::{cases, check, check_eq, ChartDeployment, Ctx, Suite, Values};
use testware_systems::embargo::{image_keys, EmbargoStack, Notifier};

/// The release name; pods are named `embargo-ingest-<component>-…`.
const RELEASE: &str = "embargo-ingest";
/// How long a notification is resent while the webhook answers 5xx.
const PATIENCE: Duration = Duration::from_secs(60);
/// The webhook's secret in `ci/platform.yaml`.
const WEBHOOK_SECRET: &str = "ci-webhook-secret";

fn main() -> std::process::ExitCode {
    Suite::new("node_groups")
        .charts(suites::charts_dir())
        .cases(cases![chart_deploy(node_groups):
            every_pod_runs_on_its_node_group_and_a_wrong_group_is_named,
        ])
        .cases(cases![chart_deploy(node_groups, exclusive):
            a_processing_node_lost_mid_work_loses_and_repeats_nothing,
            a_system_node_drained_with_the_budget_fails_no_request,
            the_same_drain_without_the_budget_or_the_delay_fails_requests,
            a_processing_node_cut_off_and_brought_back,
        ])
        .run()
}

/// The ready nodes of the `system` and `processing` groups; fails naming the
/// cluster's nodes when there are not two of each.
async fn groups(ctx: &Ctx) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let client = ctx.client().await?;
    let all = nodes::nodes(&client, GROUP_LABEL).await?;
    let of = |group: &str| -> Vec<String> {
        all.iter()
            .filter(|n| n.group == group && n.ready)
            .map(|n| n.name.clone())
            .collect()
    };
    let (system, processing) = (of("system"), of("processing"));
    anyhow::ensure!(
        system.len() >= 2 && processing.len() >= 2,
        "the node-group cases need two ready nodes in each of the groups system and processing (label {GROUP_LABEL}); this cluster has {} (hint: `testware cluster up --node-group system=2 --node-group processing=2:taint`)",
        all.iter()
            .map(|n| format!("{} ({}{})", n.name, n.group, if n.ready { "" } else { ", not ready" }))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((system, processing))
}

/// Installs the chart with `ci/platform.yaml` plus `sets`.
async fn install(
    ctx: &Ctx,
    ns: &TestNamespace,
    sets: &[(&str, &str)],
) -> anyhow::Result<ChartDeployment> {
    let mut values = Values::default().file("ci/platform.yaml");
    for (key, value) in sets {
        values = values.set(*key, *value);
    }
    Ok(ctx
        .charts()?
        .install("embargo-ingest")
        .release(RELEASE)
        .with_values(values)
        .run(ctx, ns)
        .await?)
}

/// The node `pod` runs on.
async fn node_of(deployment: &ChartDeployment, pod: &str) -> anyhow::Result<String> {
    let placement = deployment.placement(GROUP_LABEL).await?;
    placement
        .of_pod
        .get(pod)
        .map(|(node, _)| node.clone())
        .ok_or_else(|| anyhow::anyhow!("pod {pod} is on no node: {placement}"))
}

/// Waits until node `name` is (or is not) Ready; returns how long that took.
async fn wait_node_ready(ctx: &Ctx, name: &str, ready: bool) -> anyhow::Result<Duration> {
    let client = ctx.client().await?;
    let started = Instant::now();
    wait_until(
        format!(
            "node {name} to be {}",
            if ready { "Ready" } else { "NotReady" }
        ),
        ctx.deadline().cap(Duration::from_secs(90)),
        || async {
            let all: Vec<NodeInfo> = nodes::nodes(&client, GROUP_LABEL)
                .await
                .map_err(|e| format!("{e:#}"))?;
            match all.iter().find(|n| n.name == name) {
                Some(n) if n.ready == ready => Ok(()),
                Some(n) => Err(format!("Ready={}", n.ready)),
                None => Err("no such node".to_owned()),
            }
        },
    )
    .await?;
    Ok(started.elapsed())
}

/// Waits until the release has `n` ingest pods running, none on `not_on`;
/// returns how long that took.
async fn wait_workers_elsewhere(
    ctx: &Ctx,
    deployment: &ChartDeployment,
    n: usize,
    not_on: &str,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let prefix = format!("{RELEASE}-ingest-");
    let pods = kube::Api::<Pod>::namespaced(deployment.client().clone(), deployment.namespace());
    wait_until(
        format!("{n} ingest workers running on nodes other than {not_on}"),
        ctx.deadline().cap(Duration::from_secs(120)),
        || async {
            let listed = pods
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            let running: Vec<String> = listed
                .items
                .iter()
                .filter(|p| {
                    p.metadata
                        .name
                        .as_deref()
                        .is_some_and(|m| m.starts_with(&prefix))
                })
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(not_on))
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            if running.len() >= n {
                Ok(())
            } else {
                Err(format!("running elsewhere: {running:?}"))
            }
        },
    )
    .await?;
    Ok(started.elapsed())
}

async fn every_pod_runs_on_its_node_group_and_a_wrong_group_is_named(
    ctx: Ctx,
) -> anyhow::Result<()> {
    groups(&ctx).await?;
    let ns = ctx.create_namespace().await?;
    let deployment = install(&ctx, &ns, &[]).await?;
    let placement = deployment.placement(GROUP_LABEL).await?;
    check!(placement.unscheduled.is_empty(), "{placement}");
    for component in ["enqueue", "redis", "idle"] {
        let misplaced = placement.outside(&format!("{RELEASE}-{component}-"), "system");
        check!(
            misplaced.is_empty(),
            "{component} off the system group: {misplaced:?}"
        );
    }
    let workers = placement.outside(&format!("{RELEASE}-ingest-"), "processing");
    check!(
        workers.is_empty(),
        "workers off the processing group: {workers:?}"
    );
    let nodes_of = |prefix: &str| -> BTreeSet<String> {
        placement
            .of_pod
            .iter()
            .filter(|(pod, _)| pod.starts_with(prefix))
            .map(|(_, (node, _))| node.clone())
            .collect()
    };
    check_eq!(
        nodes_of(&format!("{RELEASE}-enqueue-")).len(),
        2,
        "the webhook's two replicas on two nodes: {placement}"
    );
    check_eq!(
        nodes_of(&format!("{RELEASE}-ingest-")).len(),
        2,
        "the two workers on two nodes: {placement}"
    );
    daemonset_reaches_the_webhook_from_every_node(&ctx, &deployment).await?;

    // The workers' group left at the system nodes' (a values mistake): the
    // same check names each worker, its node and its group.
    let wrong_ns = ctx.create_namespace().await?;
    let wrong = install(
        &ctx,
        &wrong_ns,
        &[("ingest.nodeSelector.testware\\.io/node-group", "system")],
    )
    .await?;
    let placement = wrong.placement(GROUP_LABEL).await?;
    let misplaced = placement.outside(&format!("{RELEASE}-ingest-"), "processing");
    check_eq!(misplaced.len(), 2, "both workers named: {misplaced:?}");
    check!(
        misplaced.iter().all(|m| m.contains("(group system)")),
        "each named with its node and group: {misplaced:?}"
    );
    println!("wrong placement named: {}", misplaced.join("; "));
    Ok(())
}

/// A DaemonSet of toolbox pods (tolerating every taint) runs a pod on every
/// node, and each reaches the webhook by its Service's name: DNS, Services and
/// pod-to-pod traffic across nodes.
async fn daemonset_reaches_the_webhook_from_every_node(
    ctx: &Ctx,
    deployment: &ChartDeployment,
) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let nodes = nodes::nodes(&client, GROUP_LABEL).await?;
    let mut template = serde_json::to_value(suites::toolbox_pod("everywhere", None)?)?;
    template["spec"]["tolerations"] = serde_json::json!([{"operator": "Exists"}]);
    let daemonset: k8s_openapi::api::apps::v1::DaemonSet =
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "everywhere"},
            "spec": {
                "selector": {"matchLabels": {"app": "everywhere"}},
                "template": {"metadata": template["metadata"], "spec": template["spec"]}
            }
        }))?;
    let api = kube::Api::<k8s_openapi::api::apps::v1::DaemonSet>::namespaced(
        client.clone(),
        deployment.namespace(),
    );
    api.create(&Default::default(), &daemonset).await?;
    let pods = kube::Api::<Pod>::namespaced(client.clone(), deployment.namespace());
    let selector = kube::api::ListParams::default().labels("app=everywhere");
    let placed = wait_until(
        format!("a ready toolbox pod on each of the {} nodes", nodes.len()),
        ctx.deadline().cap(Duration::from_secs(90)),
        || async {
            let listed = pods.list(&selector).await.map_err(|e| e.to_string())?;
            let ready: BTreeMap<String, String> = listed
                .items
                .iter()
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .filter_map(|p| {
                    Some((
                        p.spec.as_ref()?.node_name.clone()?,
                        p.metadata.name.clone()?,
                    ))
                })
                .collect();
            if ready.len() == nodes.len() {
                Ok(ready)
            } else {
                Err(format!("ready on {:?}", ready.keys().collect::<Vec<_>>()))
            }
        },
    )
    .await?;
    let url = format!("http://{RELEASE}-enqueue:8080/livez");
    for (node, pod) in &placed {
        let answer = deployment
            .exec(
                pod,
                &["/testware-toolbox", "http-get", "--retry-for", "10", &url],
            )
            .await?;
        check_eq!(
            answer.trim(),
            "alive",
            "GET {url} from {pod} on node {node}"
        );
    }
    Ok(())
}

async fn a_processing_node_lost_mid_work_loses_and_repeats_nothing(ctx: Ctx) -> anyhow::Result<()> {
    let (_, processing) = groups(&ctx).await?;
    let node_faults = ctx.node_faults().await?;
    // Before the install: this cluster can lose nodes.
    faults::node_control(&ctx.config)?;
    let ns = ctx.create_namespace().await?;
    let deployment = install(&ctx, &ns, &[("ingest.ingestSeconds", "0.2")]).await?;
    let stack = EmbargoStack::connect(&deployment).await?;
    let keys = image_keys(&ctx.config.run_id, "lost", 150);
    let accepted = stack.notifier().deliver_all(&keys, 10, 4, PATIENCE).await?;
    check_eq!(accepted, keys.len() as u64, "keys the webhook accepted");

    // A worker caught mid-batch; its node is lost as a reclaimed spot instance is.
    let (list, held) = stack
        .wait_for_worker_holding(3, ctx.deadline().cap(Duration::from_secs(60)))
        .await?;
    let pod = list.rsplit(':').next().unwrap_or_default().to_owned();
    let node = node_of(&deployment, &pod).await?;
    check!(
        processing.contains(&node),
        "worker {pod} runs on {node}, a processing node ({processing:?})"
    );
    let fault = node_faults.inject(&node, Fault::Lost)?;
    println!("lost node {node} while {pod} held {} keys", held.len());

    // The work, the node controller and the scheduler, each timed from the loss.
    let expected: BTreeSet<String> = keys.iter().cloned().collect();
    let (took, noticed, moved) = tokio::join!(
        stack.wait_for_ingested(&expected, ctx.deadline().cap(Duration::from_secs(180))),
        wait_node_ready(&ctx, &node, false),
        wait_workers_elsewhere(&ctx, &deployment, 2, &node),
    );
    let (took, noticed, moved) = (took?, noticed?, moved?);
    stack.check_ingested_once(&expected).await?;
    println!(
        "node {node} lost: all {} keys ingested {:.1} s after, node NotReady after {:.1} s, two workers running off it after {:.1} s",
        expected.len(),
        took.as_secs_f64(),
        noticed.as_secs_f64(),
        moved.as_secs_f64()
    );
    fault.restore()?;
    wait_node_ready(&ctx, &node, true).await?;
    Ok(())
}

/// Requests through the webhook's Service, one every 50 ms until `stop`:
/// (answered 200, failed) counts and the first failures.
struct Traffic {
    answered: AtomicU64,
    failed: AtomicU64,
    failures: std::sync::Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Traffic {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            answered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            failures: std::sync::Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        })
    }

    /// Sends until stopped, each request a notification of one key.
    fn spawn(self: &Arc<Self>, notifier: Notifier, prefix: String) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut i = 0u64;
            while !me.stop.load(Ordering::SeqCst) {
                i += 1;
                let key = format!("{prefix}/AT_O_{i:06}.fits");
                let outcome = tokio::time::timeout(
                    Duration::from_secs(5),
                    notifier.post(&notifier.notification(&[key])),
                )
                .await;
                match outcome {
                    Ok(Ok(answer)) if answer.status == 200 => {
                        me.answered.fetch_add(1, Ordering::SeqCst);
                    }
                    other => {
                        me.failed.fetch_add(1, Ordering::SeqCst);
                        let why = match other {
                            Ok(Ok(answer)) => format!("HTTP {}", answer.status),
                            Ok(Err(e)) => format!("{e:#}"),
                            Err(_) => "no answer within 5 s".to_owned(),
                        };
                        let mut failures = me.failures.lock().expect("not poisoned");
                        if failures.len() < 3 {
                            failures.push(why);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }
}

/// Both webhook replicas on one system node (as a scheduler may place them),
/// Redis on the other; the first node drained while requests go through the
/// Service. With `budget` false the webhook has neither its
/// PodDisruptionBudget nor its shutdown delay. Returns (answered, failed,
/// first failures, what the drain did).
async fn drain_webhook_node(
    ctx: &Ctx,
    budget: bool,
) -> anyhow::Result<(u64, u64, Vec<String>, drain::Drained)> {
    let (system, _) = groups(ctx).await?;
    let node_faults: NodeFaults = ctx.node_faults().await?;
    let client = ctx.client().await?;
    let ns = ctx.create_namespace().await?;
    let mut sets = vec![("enqueue.spread", "false")];
    if !budget {
        // Both protections off: with the shutdown delay alone the evicted pods
        // serve 5 s more, and replacements ready within that hide the fault.
        sets.push(("enqueue.podDisruptionBudget", "null"));
        sets.push(("enqueue.shutdownDelaySeconds", "0"));
    }
    let deployment = install(ctx, &ns, &sets).await?;
    let redis_node = node_of(&deployment, &format!("{RELEASE}-redis-0")).await?;
    let target = system
        .iter()
        .find(|n| **n != redis_node)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no system node without Redis: {system:?}"))?;
    // The webhook's pods moved onto the target: every other system node cordoned
    // while they are replaced.
    let others: Vec<&String> = system.iter().filter(|n| **n != target).collect();
    for n in &others {
        node_faults.cordon(n).await?;
    }
    let pods = kube::Api::<Pod>::namespaced(client.clone(), ns.name());
    let webhook = format!("{RELEASE}-enqueue-");
    for p in pods.list(&Default::default()).await?.items {
        let name = p.metadata.name.unwrap_or_default();
        if name.starts_with(&webhook) {
            pods.delete(&name, &Default::default()).await?;
        }
    }
    let moved = wait_until(
        format!("both webhook pods ready on {target}"),
        ctx.deadline().cap(Duration::from_secs(90)),
        || async {
            let placement = deployment
                .placement(GROUP_LABEL)
                .await
                .map_err(|e| e.to_string())?;
            let ready = deployment.ready_pods().await.map_err(|e| e.to_string())?;
            let on_target = placement
                .by_node
                .get(&target)
                .map(|pods| {
                    pods.iter()
                        .filter(|p| p.starts_with(&webhook) && ready.contains(p))
                        .count()
                })
                .unwrap_or(0);
            let total: usize = placement
                .of_pod
                .keys()
                .filter(|p| p.starts_with(&webhook))
                .count();
            if on_target == 2 && total == 2 {
                Ok(())
            } else {
                Err(format!("{on_target} of {total} on {target}; {placement}"))
            }
        },
    )
    .await;
    for n in &others {
        node_faults.uncordon(n).await?;
    }
    moved?;

    let service = kube::Api::<Service>::namespaced(client.clone(), ns.name())
        .get(&format!("{RELEASE}-enqueue"))
        .await?;
    let ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .ok_or_else(|| anyhow::anyhow!("the webhook's Service has no cluster IP"))?;
    let stack = EmbargoStack::connect(&deployment).await?;
    let notifier = Notifier::new(format!("http://{ip}:8080"), stack.bucket(), WEBHOOK_SECRET);
    let traffic = Traffic::new();
    let sender = traffic.spawn(notifier, format!("raw/{}/drain", ctx.config.run_id));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let drained = node_faults
        .drain(&target, ctx.deadline().cap(Duration::from_secs(120)))
        .await;
    // Requests go on until the replacements serve.
    tokio::time::sleep(Duration::from_secs(3)).await;
    traffic.stop.store(true, Ordering::SeqCst);
    sender.await?;
    node_faults.uncordon(&target).await?;
    let drained = drained?;
    let failures = traffic.failures.lock().expect("not poisoned").clone();
    Ok((
        traffic.answered.load(Ordering::SeqCst),
        traffic.failed.load(Ordering::SeqCst),
        failures,
        drained,
    ))
}

async fn a_system_node_drained_with_the_budget_fails_no_request(ctx: Ctx) -> anyhow::Result<()> {
    let (answered, failed, failures, drained) = drain_webhook_node(&ctx, true).await?;
    println!(
        "drain with the budget: {answered} requests answered, {failed} failed; {} pods evicted in {:.1} s, {} evictions refused by the budget first",
        drained.evicted.len(),
        drained.took.as_secs_f64(),
        drained.refusals
    );
    check!(
        answered > 20,
        "requests went through during the drain: {answered}"
    );
    check_eq!(failed, 0, "failed requests during the drain: {failures:?}");
    check!(
        drained.refusals > 0,
        "the budget held the second webhook pod until the first was replaced: {drained:?}"
    );
    Ok(())
}

async fn the_same_drain_without_the_budget_or_the_delay_fails_requests(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let (answered, failed, failures, drained) = drain_webhook_node(&ctx, false).await?;
    println!(
        "drain without the budget or the delay: {answered} requests answered, {failed} failed (first: {failures:?}); {} pods evicted in {:.1} s",
        drained.evicted.len(),
        drained.took.as_secs_f64()
    );
    check_eq!(drained.refusals, 0, "nothing refused the evictions");
    check!(
        failed > 0,
        "both webhook pods evicted at once, neither serving on, leave the Service without endpoints: some requests fail ({answered} answered)"
    );
    Ok(())
}

async fn a_processing_node_cut_off_and_brought_back(ctx: Ctx) -> anyhow::Result<()> {
    let (_, processing) = groups(&ctx).await?;
    let node_faults = ctx.node_faults().await?;
    // Before the install: this cluster can cut nodes off.
    faults::node_control(&ctx.config)?;
    let ns = ctx.create_namespace().await?;
    let deployment = install(&ctx, &ns, &[]).await?;
    let stack = EmbargoStack::connect(&deployment).await?;
    let placement = deployment.placement(GROUP_LABEL).await?;
    let node = placement
        .of_pod
        .iter()
        .find(|(pod, _)| pod.starts_with(&format!("{RELEASE}-ingest-")))
        .map(|(_, (node, _))| node.clone())
        .ok_or_else(|| anyhow::anyhow!("no ingest worker placed: {placement}"))?;
    check!(processing.contains(&node), "{node} is a processing node");

    let fault = node_faults.inject(&node, Fault::CutOff)?;
    let noticed = wait_node_ready(&ctx, &node, false).await?;
    let keys = image_keys(&ctx.config.run_id, "cut", 40);
    let accepted = stack.notifier().deliver_all(&keys, 5, 2, PATIENCE).await?;
    check_eq!(
        accepted,
        keys.len() as u64,
        "keys accepted while {node} is cut off"
    );
    let expected: BTreeSet<String> = keys.iter().cloned().collect();
    let (took, moved) = tokio::join!(
        stack.wait_for_ingested(&expected, ctx.deadline().cap(Duration::from_secs(120))),
        wait_workers_elsewhere(&ctx, &deployment, 2, &node),
    );
    let (took, moved) = (took?, moved?);
    check_eq!(
        stack.ingested().await?,
        expected,
        "every key ingested off the cut-off node"
    );
    println!(
        "node {node} cut off: NotReady after {:.1} s; then keys ingested in {:.1} s, two workers off it {:.1} s later",
        noticed.as_secs_f64(),
        took.as_secs_f64(),
        moved.as_secs_f64()
    );

    fault.restore()?;
    let back = wait_node_ready(&ctx, &node, true).await?;
    // The pods the node still ran were deleted meanwhile: its kubelet, back,
    // stops them, and nothing of the release is left on it.
    let pods = kube::Api::<Pod>::namespaced(deployment.client().clone(), ns.name());
    wait_until(
        format!("no pod of the release left on {node}"),
        ctx.deadline().cap(Duration::from_secs(90)),
        || async {
            let on: Vec<String> = pods
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter(|p| {
                    p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.as_str())
                })
                .filter_map(|p| p.metadata.name)
                .collect();
            if on.is_empty() {
                Ok(())
            } else {
                Err(format!("still there: {on:?}"))
            }
        },
    )
    .await?;
    println!(
        "node {node} Ready again {:.1} s after it was brought back",
        back.as_secs_f64()
    );
    Ok(())
}
