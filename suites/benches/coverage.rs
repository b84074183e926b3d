//! Benchmark: what template coverage costs beside a plain check. For each chart
//! under test, over all its value sets, in one run on the same machine: the
//! policy check alone, and the coverage measurement (instrumented copy, one
//! render of it per value set, the chart's own render twice for the
//! comparison); the median of 3 rounds each, with a renderer of its own per
//! round and the render cache off, and the ratio. Run with
//! `cargo bench -p suites --bench coverage`.

use std::time::{Duration, Instant};

use testware::charts::coverage;
use testware::config::Tools;
use testware::manifest::policy::{self, CheckOptions};
use testware::ChartSet;

const ROUNDS: usize = 3;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

fn fresh_charts() -> std::sync::Arc<ChartSet> {
    let tools = Tools {
        render_cache: false,
        ..Tools::from_process()
    };
    ChartSet::with_tools(suites::charts_dir(), tools)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

async fn run() -> anyhow::Result<()> {
    let scratch =
        std::env::temp_dir().join(format!("testware-bench-coverage-{}", std::process::id()));
    let names = fresh_charts().names()?;
    println!("chart           value sets   check (s)   coverage (s)   ratio   branches taken");
    let (mut all_check, mut all_coverage) = (Duration::ZERO, Duration::ZERO);
    for name in &names {
        let sets = fresh_charts().open(name)?.value_sets();
        let (mut checks, mut measures) = (Vec::new(), Vec::new());
        let mut figures = String::new();
        for _ in 0..ROUNDS {
            let charts = fresh_charts();
            let started = Instant::now();
            for values in &sets {
                policy::check_chart_with(&charts, name, values, &CheckOptions::default()).await?;
            }
            checks.push(started.elapsed());
            let charts = fresh_charts();
            let started = Instant::now();
            let report = coverage::measure(&charts, name, &sets, &scratch).await?;
            measures.push(started.elapsed());
            let (taken, of) = report.ratio();
            figures = format!("{taken}/{of}, {} not measured", report.not_measured.len());
        }
        let (check, measure) = (median(checks), median(measures));
        all_check += check;
        all_coverage += measure;
        println!(
            "{name:<15} {:>10}   {:>9.2}   {:>12.2}   {:>5.2}   {figures}",
            sets.len(),
            check.as_secs_f64(),
            measure.as_secs_f64(),
            measure.as_secs_f64() / check.as_secs_f64()
        );
    }
    println!(
        "all charts                   {:>9.2}   {:>12.2}   {:>5.2}",
        all_check.as_secs_f64(),
        all_coverage.as_secs_f64(),
        all_coverage.as_secs_f64() / all_check.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
