//! The chart_deploy tier (by default the `suites` package's cases that are not
//! full_stack; `SHARD_BENCH_FILTER` takes another nextest filterset) run as 1, 2
//! and 3 concurrent shards on the one cluster in `KUBECONFIG`, each shard a
//! `cargo nextest run` of its own (2 cases at a time, its own CI job id): the
//! wall time of each. Then, from the single shard's JUnit times, the longest
//! shard over the mean of the split balanced by time beside a hash split.
//! Prints figures, asserts nothing. Takes about three times the tier.
//! Run with `cargo bench -p testware-selftests --bench shards`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use testware::runner::shard::{self, Plan};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let filter = std::env::var("SHARD_BENCH_FILTER").unwrap_or_else(|_| {
        "package(suites) & test(/^\\[chart_deploy/) & !test(/full_stack/)".into()
    });
    let root = testware_selftests::repo_root();
    let out = root.join("target/harness/bench-shards");
    let _ = std::fs::remove_dir_all(&out);
    println!("filter: {filter}");
    // Built before the clock starts: `list` builds the test binaries.
    let built =
        tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&root)
            .args(["nextest", "list", "--workspace", "--locked", "-E", &filter])
            .stdout(std::process::Stdio::null())
            .status()
            .await?;
    anyhow::ensure!(
        built.success(),
        "cargo nextest list failed: the tests do not build"
    );
    let mut single_junit = PathBuf::new();
    for shards in 1..=3usize {
        let started = Instant::now();
        let mut children = Vec::new();
        for index in 1..=shards {
            let junit = out.join(format!("{shards}/{index}/"));
            if shards == 1 {
                single_junit = junit.clone();
            }
            let child = tokio::process::Command::new(
                std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
            )
            .current_dir(&root)
            .args([
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--no-fail-fast",
                "--test-threads",
                "2",
                "-E",
                &filter,
            ])
            .env(shard::ENV_SHARD, format!("{index}/{shards}"))
            .env("CI_JOB_ID", format!("bench-{shards}-{index}"))
            .env("HARNESS_JUNIT", &junit)
            .env("HARNESS_REQUIRE_CLUSTER", "1")
            .env_remove("HARNESS_SHARD_PLAN")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
            children.push(child);
        }
        let mut failed = 0;
        for mut child in children {
            if !child.wait().await?.success() {
                failed += 1;
            }
        }
        println!(
            "{shards} concurrent shard(s): {:.0} s wall{}",
            started.elapsed().as_secs_f64(),
            if failed > 0 {
                format!(" ({failed} shard(s) had failures)")
            } else {
                String::new()
            }
        );
    }
    let timings: BTreeMap<String, f64> = shard::read_junit(&[single_junit])
        .map_err(anyhow::Error::msg)?
        .into_iter()
        .map(|(k, r)| (k, r.seconds))
        .collect();
    println!(
        "{} cases, {:.0} s of case time in the single shard",
        timings.len(),
        timings.values().sum::<f64>()
    );
    for shards in 2..=3 {
        let balanced = Plan::balanced(&timings, shards);
        let nextest = nextest_hash_loads(&root, &filter, &timings, shards).await?;
        println!(
            "{shards} shards, longest over mean: {:.2} balanced by time, {:.2} nextest --partition hash, {:.2} the harness's hash",
            shard::imbalance(&balanced.loads),
            shard::imbalance(&nextest),
            shard::imbalance(&shard::hash_loads(&timings, shards))
        );
    }
    Ok(())
}

/// The seconds per shard of nextest's own `--partition hash:i/N`, from its
/// listing of each partition and the single shard's times.
async fn nextest_hash_loads(
    root: &std::path::Path,
    filter: &str,
    timings: &BTreeMap<String, f64>,
    shards: usize,
) -> anyhow::Result<Vec<f64>> {
    // A listed test is `<binary id> [tier,marks] <case>`; the harness's key is `<suite>::<case>`.
    let by_case: BTreeMap<&str, f64> = timings
        .iter()
        .filter_map(|(k, t)| Some((k.split_once("::")?.1, *t)))
        .collect();
    let mut loads = Vec::new();
    for index in 1..=shards {
        let output =
            tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .current_dir(root)
                .args([
                    "nextest",
                    "list",
                    "--workspace",
                    "--locked",
                    "--message-format",
                    "oneline",
                    "-E",
                    filter,
                ])
                .arg("--partition")
                .arg(format!("hash:{index}/{shards}"))
                .output()
                .await?;
        let listed = String::from_utf8_lossy(&output.stdout);
        let load: f64 = listed
            .lines()
            .filter_map(|line| line.rsplit("] ").next())
            .filter_map(|case| by_case.get(case.trim()))
            .sum();
        loads.push(load);
    }
    Ok(loads)
}
