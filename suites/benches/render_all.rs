//! Benchmark: wall time to render and policy-check every chart × values set, and
//! the number of helm processes started (target: under 5 s on 2 cores, one helm
//! process per render). Run with `cargo bench -p suites --bench render_all`.
//!
//! Pass 1 renders everything concurrently, as a suite process does; pass 2 asks
//! for the same renders again and must be served from the cache.
//!
//! Then the render cache across runs: every render into a scratch disk cache,
//! again by a new renderer (helm processes: 0), and after one changed byte.
//!
//! Then, one at a time over the same renders plus the fixture charts
//! (`fixtures/policy-charts`): `helm template` alone, and the harness's render,
//! parse and every rule (schemas included) — checks per second and the overhead
//! ratio (harness time / helm time), in one run on the same machine.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use testware::charts::render_cache::RenderCache;
use testware::manifest::api_versions::KubeVersion;
use testware::manifest::policy::{self, ProbeValues};
use testware::manifest::schema::Schemas;
use testware::{ChartRenderer, ChartSet, Helm};

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let tools = testware::config::Tools::from_process();
    let helm = Arc::new(Helm::locate(&tools).await?);
    let renderer = Arc::new(ChartRenderer::new(helm.clone()));
    let mut jobs = Vec::new();
    let charts = ChartSet::new(suites::charts_dir());
    let names = charts.names()?;
    for name in &names {
        let chart = charts.open(name)?;
        for values in chart.value_sets() {
            let mut options = values.options();
            options.values.set = ProbeValues::default().set_args();
            jobs.push((chart.clone(), options));
        }
    }
    let schemas = Schemas::shared(
        &testware::manifest::schema::root(&tools),
        KubeVersion::DEFAULT,
    )
    .ok();
    if schemas.is_none() {
        println!("no schemas installed (ci/install-schemas): the schema rule is left out");
    }
    let before = helm.processes_started();
    for pass in 1..=2 {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (chart, options) in jobs.clone() {
            let renderer = renderer.clone();
            let schemas = schemas.clone();
            tasks.spawn(async move {
                let t = Instant::now();
                let rendered = renderer.render(&chart, &options).await?;
                let probe = ProbeValues::default();
                let cx = policy::Context {
                    probe: Some(&probe),
                    kube_version: rendered
                        .options
                        .kube_version
                        .unwrap_or(KubeVersion::DEFAULT),
                    schemas: schemas.as_deref(),
                    ..policy::Context::new(&rendered.chart, &rendered.options.release)
                };
                let violations = policy::check_all(&rendered, &cx).len();
                anyhow::Ok((t.elapsed(), rendered.objects().len(), violations))
            });
        }
        let (mut objects, mut violations, mut slowest) = (0, 0, std::time::Duration::ZERO);
        while let Some(result) = tasks.join_next().await {
            let (took, n, v) = result??;
            objects += n;
            violations += v;
            slowest = slowest.max(took);
        }
        println!(
            "pass {pass}: {} renders of {} charts, {objects} objects, {violations} violations: wall {:.3} s, slowest render+check {:.3} s, helm processes so far {}",
            jobs.len(),
            names.len(),
            started.elapsed().as_secs_f64(),
            slowest.as_secs_f64(),
            helm.processes_started() - before
        );
    }
    println!(
        "helm {} at {}; one process per distinct render, none for cached ones",
        helm.version(),
        helm.path().display()
    );
    across_runs(&helm, &jobs).await?;
    overhead(&helm, jobs, schemas.as_deref()).await
}

/// Renders kept on disk, as the next run finds them: every render once into a
/// scratch render cache, then again by a new renderer (a new run: helm
/// processes 0), then once more after one changed byte of one chart (helm
/// processes: that chart's value sets).
async fn across_runs(
    helm: &Arc<Helm>,
    jobs: &[(testware::HelmChart, testware::RenderOptions)],
) -> anyhow::Result<()> {
    let scratch = std::env::temp_dir().join(format!(
        "render-all-bench-{}",
        testware::config::random_suffix(6)
    ));
    let disk = RenderCache::new(scratch.join("renders"));
    let run = |jobs: Vec<(testware::HelmChart, testware::RenderOptions)>| {
        let renderer = ChartRenderer::new(helm.clone()).with_disk_cache(disk.clone());
        async move {
            let before = helm.processes_started();
            let started = Instant::now();
            for (chart, options) in &jobs {
                renderer.render(chart, options).await?;
            }
            anyhow::Ok((helm.processes_started() - before, started.elapsed()))
        }
    };
    let (first, took_first) = run(jobs.to_vec()).await?;
    let (second, took_second) = run(jobs.to_vec()).await?;
    // One chart copied and changed by one byte: its renders run helm again.
    let (chart, _) = jobs.first().context("no charts to render")?;
    let copy = scratch.join(chart.meta().name.as_str());
    // -L: a chart may be a link (echo-server links to the library's chart).
    let status = std::process::Command::new("cp")
        .arg("-rL")
        .arg(chart.dir())
        .arg(&copy)
        .status()?;
    anyhow::ensure!(status.success(), "copying {} failed", chart.dir().display());
    let copied = testware::HelmChart::open(&copy)?;
    let copied_jobs: Vec<_> = jobs
        .iter()
        .filter(|(c, _)| c.dir() == chart.dir())
        .map(|(_, options)| (copied.clone(), options.clone()))
        .collect();
    run(copied_jobs.clone()).await?;
    let chart_yaml = copy.join("Chart.yaml");
    let mut text = std::fs::read_to_string(&chart_yaml)?;
    text.push('\n');
    std::fs::write(&chart_yaml, text)?;
    let (changed, took_changed) = run(copied_jobs.clone()).await?;
    println!(
        "across runs (render cache on disk, one render at a time): first run {first} helm processes in {:.2} s; next run over unchanged charts {second} in {:.2} s; after one changed byte of {} {changed} in {:.2} s ({} value sets)",
        took_first.as_secs_f64(),
        took_second.as_secs_f64(),
        chart.meta().name,
        took_changed.as_secs_f64(),
        copied_jobs.len()
    );
    std::fs::remove_dir_all(&scratch)?;
    Ok(())
}

/// `helm template` alone against render + parse + every rule, one at a time.
async fn overhead(
    helm: &Arc<Helm>,
    mut jobs: Vec<(testware::HelmChart, testware::RenderOptions)>,
    schemas: Option<&Schemas>,
) -> anyhow::Result<()> {
    let fixtures = ChartSet::new(suites::repo_root().join("fixtures/policy-charts"));
    for name in fixtures.names()? {
        let chart = fixtures.open(&name)?;
        for values in chart.value_sets() {
            let mut options = values.options();
            options.values.set = ProbeValues::default().set_args();
            jobs.push((chart.clone(), options));
        }
    }
    let probe = ProbeValues::default();
    let (mut helm_alone, mut harness) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    let (mut checked, mut refused, mut objects) = (0u32, 0u32, 0usize);
    for (chart, options) in &jobs {
        let t = Instant::now();
        if helm.template(chart.dir(), options).await.is_err() {
            refused += 1; // a chart that refuses its defaults: both sides fail alike
            continue;
        }
        helm_alone += t.elapsed();
        // A renderer of its own: nothing cached.
        let renderer = ChartRenderer::new(helm.clone());
        let t = Instant::now();
        let rendered = renderer.render(chart, options).await?;
        let cx = policy::Context {
            probe: Some(&probe),
            schemas,
            ..policy::Context::new(&rendered.chart, &rendered.options.release)
        };
        let _ = policy::check_all(&rendered, &cx);
        harness += t.elapsed();
        objects += rendered.objects().len();
        checked += 1;
    }
    println!(
        "one at a time, {checked} renders ({refused} refused by helm, left out), {objects} objects: helm template alone {:.3} s, harness render+parse+rules {:.3} s: {:.1} checks/s, overhead ratio {:.2} ({:+.1} ms per render)",
        helm_alone.as_secs_f64(),
        harness.as_secs_f64(),
        f64::from(checked) / harness.as_secs_f64(),
        harness.as_secs_f64() / helm_alone.as_secs_f64(),
        (harness.as_secs_f64() - helm_alone.as_secs_f64()) * 1000.0 / f64::from(checked.max(1))
    );
    Ok(())
}
