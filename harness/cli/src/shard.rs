//! `testware shard`: a run's JUnit times turned into a plan of N shards balanced
//! by time (or, with `--failed`, a plan of only the cases that failed), and what
//! each CI job runs with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use testware::runner::shard::{self, Plan, ENV_SHARD, ENV_SHARD_PLAN};

/// Writes the plan to `out` and prints the split, the hash split beside it, and
/// the command of each shard.
///
/// # Errors
/// The reports cannot be read, they hold no case of the harness, or the plan
/// cannot be written.
pub fn shard(junit: &[PathBuf], shards: usize, failed: bool, out: &Path) -> anyhow::Result<()> {
    let recorded = shard::read_junit(junit).map_err(anyhow::Error::msg)?;
    if recorded.is_empty() {
        anyhow::bail!(
            "no case of the harness in the JUnit reports under {} (hint: run the suites with HARNESS_JUNIT=<dir>/ first)",
            junit.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    if failed {
        let cases: Vec<String> = recorded
            .iter()
            .filter(|(_, r)| r.failed)
            .map(|(k, _)| k.clone())
            .collect();
        if cases.is_empty() {
            println!("no case failed in those reports: nothing to rerun");
            return Ok(());
        }
        Plan::only(cases.clone()).write(out)?;
        println!("{} failed case(s): {}", cases.len(), cases.join(", "));
        println!(
            "plan written to {}; rerun only them with:\n  {ENV_SHARD}=1/1 {ENV_SHARD_PLAN}={} cargo nextest run …   (or cargo test …)",
            out.display(),
            out.display()
        );
        return Ok(());
    }
    let timings: BTreeMap<String, f64> = recorded
        .iter()
        .map(|(k, r)| (k.clone(), r.seconds))
        .collect();
    let plan = Plan::balanced(&timings, shards);
    plan.write(out)?;
    let total: f64 = timings.values().sum();
    println!(
        "{} cases, {total:.0} s in all, into {shards} shard(s) (plan: {}):",
        timings.len(),
        out.display()
    );
    for (i, load) in plan.loads.iter().enumerate() {
        let count = plan.cases.values().filter(|s| **s == i + 1).count();
        println!("  shard {}: {count} cases, {load:.0} s", i + 1);
    }
    let hash = shard::hash_loads(&timings, shards);
    println!(
        "longest shard over the mean: {:.2} balanced by time, {:.2} split by a hash of the names",
        shard::imbalance(&plan.loads),
        shard::imbalance(&hash)
    );
    println!(
        "run shard i of {shards} with:\n  {ENV_SHARD}=i/{shards} {ENV_SHARD_PLAN}={} cargo nextest run …\n\
         (GitLab `parallel: {shards}`: {ENV_SHARD}=$CI_NODE_INDEX/$CI_NODE_TOTAL; cases new since that run go to the shortest shard)",
        out.display()
    );
    Ok(())
}
