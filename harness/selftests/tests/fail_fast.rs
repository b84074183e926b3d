//! A rollout that cannot succeed ends at the first sure sign, not at its
//! deadline: one case per stuck state, each on the `stuck-pod` fixture chart
//! made to fail that way, each asking for a long timeout and expecting
//! [`WaitError::Stuck`] (a wait that only timed out fails the case). And the
//! other side: a state another object clears in time is waited for.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Secret};
use testware::status::FailFast;
use testware::wait::WaitError;
use testware::{cases, check, Case, Ctx, DeployError, Install, Suite, TestNamespace};
use testware_selftests::fixture;

fn main() -> std::process::ExitCode {
    Suite::new("fail_fast")
        .cases(stuck_installs())
        .cases(cases![chart_deploy: secret_created_while_waiting_is_waited_for])
        .run()
}

/// Far longer than any stuck state takes to be noticed: a case that waits it
/// out has failed anyway.
const TIMEOUT: Duration = Duration::from_secs(240);

/// The fixture chart with `sets`, installed as release `stuck` with `policy`.
async fn install(
    ctx: &Ctx,
    ns: &TestNamespace,
    sets: &[(&str, &str)],
    policy: FailFast,
) -> Result<testware::ChartDeployment, DeployError> {
    let mut request = Install::chart(fixture("broken-charts/stuck-pod"))
        .release("stuck")
        .timeout(TIMEOUT)
        .fail_fast(policy);
    for (key, value) in sets {
        request = request.set(*key, *value);
    }
    request.run(ctx, ns).await
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
        },
        StuckInstall {
            name: "unschedulable_pod_ends_the_rollout_wait_once_settled",
            sets: &[("nodeSelector.testware\\.io/no-such-node", "x")],
            policy: quick,
            state: "Unschedulable",
            // 1.20 says "node affinity" for a node selector too.
            mentions: &["0/1 nodes are available", "didn't match"],
        },
    ];
    installs
        .into_iter()
        .map(|stuck| {
            Case::chart_deploy(stuck.name, move |ctx| async move {
                let ns = ctx.create_namespace().await?;
                let result = install(&ctx, &ns, stuck.sets, stuck.policy).await;
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
    let (installed, created) = tokio::join!(install(&ctx, &ns, &sets, policy), late);
    created?;
    installed?;
    Ok(())
}
