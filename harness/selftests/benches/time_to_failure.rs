//! Time to failure of an install that cannot succeed, per stuck state, ending
//! at the stuck pod (the default [`FailFast`]) and waiting out its 60 s
//! timeout ([`FailFast::off`]), on the `stuck-pod` fixture chart made to fail
//! each way, against the cluster in `KUBECONFIG`. Prints one line per state
//! and the ratio of the two. Takes about 8 minutes (six 60 s timeouts).
//! Run with `cargo bench -p testware-selftests --bench time_to_failure`.

use std::time::{Duration, Instant};

use testware::namespace::TestNamespace;
use testware::status::FailFast;
use testware::{Ctx, Readiness, RunConfig};
use testware_selftests::stuck_pod_install;

/// The timeout a failing install waits out without fail fast.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A way to fail: the state's name, the chart's `--set` values, how it waits.
type Failing = (
    &'static str,
    &'static [(&'static str, &'static str)],
    Readiness,
);

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (config, _) = RunConfig::parse(["bench".to_owned()], |key| std::env::var(key).ok())?;
    let config = std::sync::Arc::new(config);
    let client = testware::cluster::client(&config).await?;
    println!("cluster: {}", client.apiserver_version().await?.git_version);
    // The self-tests' settle time and restarts, so that the states compare alike.
    let quick = FailFast {
        crash_loop_restarts: 1,
        settle: Duration::from_secs(3),
        ..FailFast::default()
    };
    let states: [Failing; 6] = [
        (
            "ImagePullBackOff",
            &[("image", "localhost/no-such-image:1")],
            Readiness::Watch,
        ),
        (
            "ImagePullBackOff, helm --wait",
            &[("image", "localhost/no-such-image:1")],
            Readiness::Helm,
        ),
        (
            "CrashLoopBackOff",
            &[
                ("image", "localhost/testware-toolbox:0.1.0"),
                ("args[0]", "no-such-command"),
            ],
            Readiness::Watch,
        ),
        (
            "CreateContainerConfigError",
            &[
                ("secretKeyRef.name", "db"),
                ("secretKeyRef.key", "password"),
            ],
            Readiness::Watch,
        ),
        (
            "Unschedulable",
            &[("nodeSelector.testware\\.io/no-such-node", "x")],
            Readiness::Watch,
        ),
        (
            "ProvisioningFailed",
            &[("claim.storageClassName", "no-such-class")],
            Readiness::Watch,
        ),
    ];
    println!(
        "{:<32} {:>10} {:>10} {:>7}",
        "state", "fail fast", "off", "ratio"
    );
    for (state, sets, readiness) in states {
        let mut times = Vec::new();
        for policy in [quick, FailFast::off()] {
            let ns = TestNamespace::create(&client, &config, "bench").await?;
            let ctx = Ctx::detached(config.clone(), "bench", Duration::from_secs(300));
            let request = stuck_pod_install(sets, policy, readiness, TIMEOUT);
            let started = Instant::now();
            let result = request.run(&ctx, &ns).await;
            times.push(started.elapsed());
            ns.delete(Duration::from_secs(60)).await?;
            anyhow::ensure!(result.is_err(), "{state}: the install succeeded");
        }
        println!(
            "{state:<32} {:>8.1} s {:>8.1} s {:>7.3}",
            times[0].as_secs_f64(),
            times[1].as_secs_f64(),
            times[0].as_secs_f64() / times[1].as_secs_f64()
        );
    }
    Ok(())
}
