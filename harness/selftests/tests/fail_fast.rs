//! A rollout that cannot succeed ends at the first sure sign, not at its
//! deadline: one case per stuck state, each on the `stuck-pod` fixture chart
//! made to fail that way, each asking for a long timeout and expecting
//! [`WaitError::Stuck`] (a wait that only timed out fails the case). And the
//! other side: a state another object clears in time is waited for. And
//! deletions held by a finalizer say what holds them.

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use testware::status::FailFast;
use testware::wait::WaitError;
use testware::{cases, check, Case, Ctx, DeployError, Readiness, Suite, TestNamespace};
use testware_selftests::stuck_pod_install;

fn main() -> std::process::ExitCode {
    Suite::new("fail_fast")
        .cases(stuck_installs())
        .cases(cases![chart_deploy: secret_created_while_waiting_is_waited_for])
        .cases(cases![chart_deploy: deletion_held_by_a_finalizer_is_explained_and_released])
        .cases(cases![chart_deploy: deletion_of_a_namespace_not_the_harnesss_names_what_holds_it])
        .cases(cases![chart_deploy: uninstall_held_by_a_finalizer_names_what_holds_it])
        .run()
}

/// Far longer than any stuck state takes to be noticed: a case that waits it
/// out has failed anyway.
const TIMEOUT: Duration = Duration::from_secs(240);

/// The fixture chart with `sets`, installed as release `stuck` with `policy`
/// (waiting as the harness does, or with helm's own `--wait`).
async fn install(
    ctx: &Ctx,
    ns: &TestNamespace,
    sets: &[(&str, &str)],
    policy: FailFast,
    readiness: Readiness,
) -> Result<testware::ChartDeployment, DeployError> {
    stuck_pod_install(sets, policy, readiness, TIMEOUT)
        .run(ctx, ns)
        .await
}

/// The stuck pod's state and the whole message, or why the install did not end as stuck.
fn stuck_state(
    result: Result<testware::ChartDeployment, DeployError>,
) -> anyhow::Result<(String, String)> {
    match result {
        Ok(_) => anyhow::bail!("the install succeeded although its pod cannot run"),
        Err(error) => {
            let message = error.to_string();
            match error {
                DeployError::NotReady { why, .. } => match *why {
                    WaitError::Stuck(stuck) => Ok((stuck.state, message)),
                    other => anyhow::bail!("the wait did not end as stuck: {other}"),
                },
                other => anyhow::bail!("the install failed otherwise: {other}"),
            }
        }
    }
}

/// A stuck install: case name, `--set` values, restarts allowed and settle
/// time, the state it must end in, and what its error must mention.
struct StuckInstall {
    name: &'static str,
    sets: &'static [(&'static str, &'static str)],
    policy: FailFast,
    state: &'static str,
    mentions: &'static [&'static str],
    readiness: Readiness,
}

/// One case per stuck state; settling states get 3 s, crash loops one restart.
fn stuck_installs() -> Vec<Case> {
    let quick = FailFast {
        crash_loop_restarts: 1,
        settle: Duration::from_secs(3),
        ..FailFast::default()
    };
    let installs = [
        StuckInstall {
            name: "image_pull_backoff_ends_the_rollout_wait",
            sets: &[("image", "localhost/no-such-image:1")],
            policy: FailFast::default(),
            state: "ImagePullBackOff",
            mentions: &["localhost/no-such-image:1"],
            readiness: Readiness::Watch,
        },
        StuckInstall {
            name: "image_pull_backoff_ends_helms_own_wait",
            sets: &[("image", "localhost/no-such-image:1")],
            policy: FailFast::default(),
            state: "ImagePullBackOff",
            mentions: &["(helm --wait)", "localhost/no-such-image:1"],
            readiness: Readiness::Helm,
        },
        StuckInstall {
            name: "crash_loop_ends_the_rollout_wait_after_the_restarts_allowed",
            sets: &[
                ("image", "localhost/testware-toolbox:0.1.0"),
                ("args[0]", "no-such-command"),
            ],
            policy: quick,
            // The last exit and the crashed container's own words.
            state: "CrashLoopBackOff",
            mentions: &["last exit 2", "unrecognized subcommand 'no-such-command'"],
            readiness: Readiness::Watch,
        },
        StuckInstall {
            name: "missing_secret_key_ends_the_rollout_wait_once_settled",
            sets: &[
                ("secretKeyRef.name", "db"),
                ("secretKeyRef.key", "password"),
            ],
            policy: quick,
            state: "CreateContainerConfigError",
            mentions: &["secret \"db\" not found"],
            readiness: Readiness::Watch,
        },
        StuckInstall {
            name: "unschedulable_pod_ends_the_rollout_wait_once_settled",
            sets: &[("nodeSelector.testware\\.io/no-such-node", "x")],
            policy: quick,
            state: "Unschedulable",
            // 1.20 says "node affinity" for a node selector too.
            mentions: &["nodes are available", "didn't match"],
            readiness: Readiness::Watch,
        },
        StuckInstall {
            name: "missing_storage_class_ends_the_rollout_wait_once_settled",
            sets: &[("claim.storageClassName", "no-such-class")],
            policy: quick,
            state: "ProvisioningFailed",
            mentions: &[
                "StorageClass \"no-such-class\", which does not exist",
                "unbound immediate PersistentVolumeClaims",
            ],
            readiness: Readiness::Watch,
        },
    ];
    installs
        .into_iter()
        .map(|stuck| {
            Case::chart_deploy(stuck.name, move |ctx| async move {
                let ns = ctx.create_namespace().await?;
                let result = install(&ctx, &ns, stuck.sets, stuck.policy, stuck.readiness).await;
                let (state, message) = stuck_state(result)?;
                check!(
                    state == stuck.state,
                    "stuck in {state}, not {}: {message}",
                    stuck.state
                );
                for want in stuck.mentions {
                    check!(
                        message.contains(want),
                        "the error should mention {want:?}: {message}"
                    );
                }
                Ok(())
            })
        })
        .collect()
}

async fn secret_created_while_waiting_is_waited_for(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    // The pod is stuck for want of the Secret (CreateContainerConfigError) until
    // the Secret appears, as an operator would make it; the long settle keeps
    // the kubelet's retry inside it.
    let policy = FailFast {
        settle: Duration::from_secs(90),
        ..FailFast::default()
    };
    let secrets = ns.api::<Secret>();
    let pods = ns.api::<Pod>();
    let late = async {
        // Made once the pod is seen stuck (a watch; nothing settles here).
        let seen = FailFast {
            settle: Duration::ZERO,
            ..FailFast::default()
        };
        let stuck =
            testware::wait::first_stuck_pod(&pods, "app.kubernetes.io/instance=stuck", seen);
        let (_, found) = tokio::time::timeout(Duration::from_secs(120), stuck).await?;
        check!(
            found.reason == "CreateContainerConfigError",
            "stuck otherwise: {found:?}"
        );
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "db"},
            "stringData": {"password": "made-late"}
        }))?;
        secrets.create(&Default::default(), &secret).await?;
        anyhow::Ok(())
    };
    let sets = [
        ("secretKeyRef.name", "db"),
        ("secretKeyRef.key", "password"),
    ];
    let (installed, created) =
        tokio::join!(install(&ctx, &ns, &sets, policy, Readiness::Watch), late);
    created?;
    installed?;
    Ok(())
}

/// A finalizer no controller will ever remove, as an uninstalled operator leaves.
const HOLD: &str = "testware.io/selftest-hold";

/// A ConfigMap named `name` that only goes once [`HOLD`] is removed.
fn held_config_map(name: &str) -> anyhow::Result<ConfigMap> {
    Ok(serde_json::from_value(serde_json::json!({
        "metadata": {"name": name, "finalizers": [HOLD]}
    }))?)
}

async fn deletion_held_by_a_finalizer_is_explained_and_released(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    ns.api::<ConfigMap>()
        .create(&Default::default(), &held_config_map("held")?)
        .await?;
    let deletion = ns.delete(Duration::from_secs(90)).await?;
    let summary = deletion.summary(ns.name()).unwrap_or_default();
    check!(
        summary.contains("1 object remains: ConfigMap held (finalizers testware.io/selftest-hold)"),
        "the deletion should say what held it: {summary:?}"
    );
    check!(
        deletion.released.len() == 1 && deletion.not_released.is_empty(),
        "the harness's own namespace should be released: {deletion:?}"
    );
    Ok(())
}

async fn deletion_of_a_namespace_not_the_harnesss_names_what_holds_it(
    ctx: Ctx,
) -> anyhow::Result<()> {
    let client = ctx.client().await?;
    let namespaces = kube::Api::<Namespace>::all(client.clone());
    let name = format!("not-harness-{}", std::process::id());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
    namespaces.create(&Default::default(), &namespace).await?;
    let config_maps = kube::Api::<ConfigMap>::namespaced(client.clone(), &name);
    let created = config_maps
        .create(&Default::default(), &held_config_map("kept")?)
        .await;
    let deleted = match created {
        Ok(_) => testware::namespace::delete_namespace(&client, &name, Duration::from_secs(25))
            .await
            .map_err(anyhow::Error::from),
        Err(e) => Err(anyhow::Error::from(e)),
    };
    // Whatever happened, let it go: the finalizer off, the namespace awaited.
    let release = serde_json::json!({"metadata": {"finalizers": null}});
    let _ = config_maps
        .patch(
            "kept",
            &Default::default(),
            &kube::api::Patch::Merge(&release),
        )
        .await;
    testware::namespace::delete_namespace(&client, &name, Duration::from_secs(60)).await?;
    let message = match deleted {
        Ok(deletion) => anyhow::bail!("the deletion should have timed out: {deletion:?}"),
        Err(e) => format!("{e:#}"),
    };
    check!(
        message.contains("ConfigMap kept (finalizers testware.io/selftest-hold)"),
        "the timeout should name what holds the namespace: {message}"
    );
    Ok(())
}

async fn uninstall_held_by_a_finalizer_names_what_holds_it(ctx: Ctx) -> anyhow::Result<()> {
    let ns = ctx.create_namespace().await?;
    let sets = [("heldConfigMap", "true")];
    let release = install(&ctx, &ns, &sets, FailFast::default(), Readiness::Watch).await?;
    let uninstalled = release
        .uninstall_within(Some(Duration::from_secs(25)))
        .await;
    // The namespace's deletion releases what is left (the case's cleanup).
    let message = match uninstalled {
        Ok(()) => anyhow::bail!("the uninstall should wait for the held ConfigMap"),
        Err(e) => e.to_string(),
    };
    check!(
        message.contains(
            "1 object remains: ConfigMap stuck-held (finalizers testware.io/selftest-hold)"
        ),
        "the error should name what holds the uninstall: {message}"
    );
    Ok(())
}
