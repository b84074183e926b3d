//! chart_deploy timings on the cluster in `KUBECONFIG` (the local one in CI):
//! namespace create -> pod ready -> namespace deleted, echo-server install -> ready
//! through the harness beside plain `helm install --wait` on the same chart
//! (and plain `helm install` without waiting, the floor of both),
//! and how long after a condition becomes true the harness notices it (a watch,
//! and for contrast `wait_until` polling with its capped backoff), and how long
//! an install whose image cannot be pulled takes to fail, ending at the stuck pod
//! and (`FailFast::off`) at its 60 s timeout.
//! Run with `cargo bench -p suites --bench chart_deploy`.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use testware::namespace::TestNamespace;
use testware::status::{FailFast, State};
use testware::wait;
use testware::Ctx;

const NAMESPACE_CYCLES: usize = 7;
const INSTALLS: usize = 5;
const CONDITIONS: usize = 7;
const FAILURES: usize = 2;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let (config, client) = suites::bench_cluster().await?;

    let mut cycles = Vec::new();
    for _ in 0..NAMESPACE_CYCLES {
        let started = Instant::now();
        let ns = TestNamespace::create(&client, &config, "bench").await?;
        let pod = suites::toolbox_pod("p", None)?;
        ns.start_pod(&pod, Duration::from_secs(90)).await?;
        ns.delete(Duration::from_secs(60)).await?;
        cycles.push(started.elapsed());
    }
    report("namespace create -> pod ready -> deleted", &mut cycles);

    // The same chart installed alternately through the harness (helm applies,
    // watches decide readiness) and by plain `helm install --wait` (2 s polls).
    let charts = testware::ChartSet::new(suites::charts_dir());
    let (mut watched_installs, mut helm_installs, mut applied_installs) =
        (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..INSTALLS {
        let ns = TestNamespace::create(&client, &config, "bench").await?;
        let ctx = Ctx::detached(config.clone(), "bench", Duration::from_secs(300));
        let started = Instant::now();
        charts
            .install("echo-server")
            .release("echo")
            .run(&ctx, &ns)
            .await?;
        watched_installs.push(started.elapsed());
        ns.delete(Duration::from_secs(60)).await?;

        let helm = ctx.helm().await?;
        for (wait, times) in [(true, &mut helm_installs), (false, &mut applied_installs)] {
            let ns = TestNamespace::create(&client, &config, "bench").await?;
            let mut args: Vec<std::ffi::OsString> = [
                "install",
                "echo",
                &charts.dir("echo-server").display().to_string(),
                "--namespace",
                ns.name(),
                "--timeout",
                "120s",
            ]
            .map(std::ffi::OsString::from)
            .to_vec();
            if wait {
                args.extend(["--wait".into(), "--wait-for-jobs".into()]);
            }
            let started = Instant::now();
            helm.run(args, Duration::from_secs(150)).await?;
            times.push(started.elapsed());
            ns.delete(Duration::from_secs(60)).await?;
        }
    }
    let ratio =
        median(&mut watched_installs).as_secs_f64() / median(&mut helm_installs).as_secs_f64();
    report(
        "echo-server install -> ready, harness (watch)",
        &mut watched_installs,
    );
    report(
        "echo-server install -> ready, plain helm install --wait",
        &mut helm_installs,
    );
    // Neither can beat helm's own apply plus the pod's first passing readiness
    // probe, which the kubelet runs one probe period after it gets the pod.
    report(
        "echo-server plain helm install without waiting (applied only)",
        &mut applied_installs,
    );
    println!("install -> ready, harness / plain helm (medians): {ratio:.2} (target <= 0.5)");

    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    for _ in 0..FAILURES {
        for (policy, times) in [
            (FailFast::default(), &mut fast),
            (FailFast::off(), &mut slow),
        ] {
            let ns = TestNamespace::create(&client, &config, "bench").await?;
            let ctx = Ctx::detached(config.clone(), "bench", Duration::from_secs(300));
            let started = Instant::now();
            let result = charts
                .install("echo-server")
                .release("broken")
                .set("image.tag", "no-such-tag")
                .timeout(Duration::from_secs(60))
                .fail_fast(policy)
                .run(&ctx, &ns)
                .await;
            anyhow::ensure!(result.is_err(), "an install of a missing image succeeded");
            times.push(started.elapsed());
            ns.delete(Duration::from_secs(60)).await?;
        }
    }
    let ratio = median(&mut fast).as_secs_f64() / median(&mut slow).as_secs_f64();
    report(
        "missing image install -> error, ending at the stuck pod",
        &mut fast,
    );
    report(
        "missing image install -> error, FailFast::off (60 s timeout)",
        &mut slow,
    );
    println!("time to failure, fail fast / off (medians): {ratio:.2}");

    let ns = TestNamespace::create(&client, &config, "bench").await?;
    let maps: kube::Api<ConfigMap> = ns.api();
    let (mut watched, mut polled) = (Vec::new(), Vec::new());
    for i in 0..CONDITIONS {
        let name = format!("flag-{i}");
        let map: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
        maps.create(&Default::default(), &map).await?;
        watched.push(notice_by_watch(&maps, &name).await?);
        polled.push(notice_by_polling(&maps, &name).await?);
    }
    ns.delete(Duration::from_secs(60)).await?;
    report("condition true -> noticed (watch)", &mut watched);
    report(
        "condition true -> noticed (wait_until, backoff at its 1 s cap)",
        &mut polled,
    );
    Ok(())
}

/// Sets label `go` on the ConfigMap; returns when that happened.
async fn flip(maps: &kube::Api<ConfigMap>, name: &str, value: &str) -> anyhow::Result<Instant> {
    let patch = serde_json::json!({"metadata": {"labels": {"go": value}}});
    let at = Instant::now();
    maps.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(at)
}

fn has_go(map: Option<&ConfigMap>, value: &str) -> bool {
    map.and_then(|m| m.metadata.labels.as_ref())
        .and_then(|l| l.get("go"))
        .is_some_and(|v| v == value)
}

async fn notice_by_watch(maps: &kube::Api<ConfigMap>, name: &str) -> anyhow::Result<Duration> {
    let waiter = wait::watch_until(
        maps,
        name,
        format!("ConfigMap {name} labelled go=watch"),
        Duration::from_secs(30),
        |m| {
            if has_go(m, "watch") {
                State::Done
            } else {
                State::Pending("no label".into())
            }
        },
        || async { String::new() },
    );
    let flipper = async {
        // Let the watch establish itself first, as a case's wait would have.
        tokio::time::sleep(Duration::from_millis(500)).await;
        flip(maps, name, "watch").await
    };
    let (noticed, flipped) = tokio::join!(async { waiter.await.map(|_| Instant::now()) }, flipper);
    Ok(noticed?.saturating_duration_since(flipped?))
}

async fn notice_by_polling(maps: &kube::Api<ConfigMap>, name: &str) -> anyhow::Result<Duration> {
    let waiter = wait::wait_until(
        format!("ConfigMap {name} labelled go=poll"),
        Duration::from_secs(30),
        || async {
            let map = maps.get_opt(name).await.map_err(|e| e.to_string())?;
            if has_go(map.as_ref(), "poll") {
                Ok(Instant::now())
            } else {
                Err("no label".to_owned())
            }
        },
    );
    let flipper = async {
        // Long enough for the backoff to reach its cap.
        tokio::time::sleep(Duration::from_millis(2600)).await;
        flip(maps, name, "poll").await
    };
    let (noticed, flipped) = tokio::join!(waiter, flipper);
    Ok(noticed?.saturating_duration_since(flipped?))
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let max = samples[samples.len() - 1];
    println!(
        "{what}: median {:.3} s, max {:.3} s over {} runs",
        median.as_secs_f64(),
        max.as_secs_f64(),
        samples.len()
    );
}
