//! `testware check`: the no_deploy checks of charts (policy rules and `helm
//! lint --strict` on each chart × value set), with a report and JUnit.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use testware::charts::chart::ChartError;
use testware::charts::snapshot::Snapshots;
use testware::charts::{changes, coverage, dependencies};
use testware::junit::{CaseRecord, CaseStatus};
use testware::manifest::policy;
use testware::{ChartSet, ValueSet};

/// The charts the arguments name, as (directory of charts, chart name): a chart
/// directory (with a Chart.yaml), or a directory of charts, each one of them.
fn chart_dirs(args: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut found = Vec::new();
    for arg in args {
        let dir = std::path::absolute(arg)?;
        // A directory of charts: every chart in it.
        if dir.is_dir() && !dir.join("Chart.yaml").exists() {
            let names = ChartSet::new(&dir).names()?;
            if !names.is_empty() {
                found.extend(names.into_iter().map(|name| (dir.clone(), name)));
                continue;
            }
        }
        // Otherwise a chart: opening it says what is wrong with it.
        let (Some(root), Some(name)) = (dir.parent(), dir.file_name().and_then(|n| n.to_str()))
        else {
            anyhow::bail!("{} is not a chart directory", dir.display());
        };
        ChartSet::new(root).open(name)?;
        found.push((root.to_path_buf(), name.to_owned()));
    }
    Ok(found)
}

/// The value sets `--values` names: each argument one set, its comma-separated
/// files layered in order. Files that are not regular files (a pipe from
/// `<(…)`) are read once into `spool`, as every check reads them again.
fn value_sets(values: &[String], spool: &Spool) -> anyhow::Result<Vec<ValueSet>> {
    values
        .iter()
        .map(|arg| {
            let files = arg
                .split(',')
                .map(|f| {
                    let path = PathBuf::from(f);
                    let kind = std::fs::metadata(&path)
                        .map_err(|e| anyhow::anyhow!("values file {f} cannot be read: {e}"))?;
                    if kind.is_file() {
                        Ok(std::path::absolute(&path)?)
                    } else if kind.is_dir() {
                        anyhow::bail!("values file {f} is a directory")
                    } else {
                        spool.keep(&path)
                    }
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(ValueSet::layered(arg.clone(), files))
        })
        .collect()
}

/// Copies of values read from pipes, removed when the check ends.
struct Spool {
    dir: PathBuf,
}

const SPOOL_PREFIX: &str = "testware-check-values-";

impl Spool {
    /// A spool for this process; those of killed checks (their process gone)
    /// are removed first.
    fn new() -> Self {
        let temp = std::env::temp_dir();
        for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(SPOOL_PREFIX)) else {
                continue;
            };
            if !std::path::Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Self {
            dir: temp.join(format!("{SPOOL_PREFIX}{}", std::process::id())),
        }
    }

    fn keep(&self, pipe: &std::path::Path) -> anyhow::Result<PathBuf> {
        let text = std::fs::read(pipe)
            .map_err(|e| anyhow::anyhow!("values {} cannot be read: {e}", pipe.display()))?;
        std::fs::create_dir_all(&self.dir)?;
        let copy = self.dir.join(format!(
            "values-{}.yaml",
            std::fs::read_dir(&self.dir)?.count()
        ));
        std::fs::write(&copy, text)?;
        Ok(copy)
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What to check, as the command line names it.
pub struct Inputs {
    /// Chart directories, or directories of charts.
    pub charts: Vec<PathBuf>,
    /// `--values` sets (comma-separated files each).
    pub values: Vec<String>,
    /// Directories of chart archives for remote dependencies not on disk.
    pub dependency_dirs: Vec<PathBuf>,
    /// A git ref: only the charts changed since it, their versions raised.
    pub since: Option<String>,
    /// Renders held against these snapshots too.
    pub snapshots: Option<Snapshots>,
    /// Template coverage reported, with this goal.
    pub coverage: Option<CoverageGoal>,
}

/// What `--coverage` asks of each chart.
pub struct CoverageGoal {
    /// The least share of branches taken, in percent, if any.
    pub min: Option<f64>,
}

/// Runs the checks; returns how many failed. A choice of rules leaves out
/// `helm lint`, which is not one of them.
pub async fn check(
    inputs: &Inputs,
    options: &policy::CheckOptions,
    junit: Option<&std::path::Path>,
) -> anyhow::Result<usize> {
    let spool = Spool::new();
    let given = if inputs.values.is_empty() {
        None
    } else {
        Some(value_sets(&inputs.values, &spool)?)
    };
    for dir in &inputs.dependency_dirs {
        anyhow::ensure!(
            dir.is_dir(),
            "--dependency-dir {}: not a directory (give one that holds chart archives, <name>-<version>.tgz)",
            dir.display()
        );
    }
    // Archives the user pulled before count as on disk too.
    let archive_dirs: Vec<PathBuf> = inputs
        .dependency_dirs
        .iter()
        .cloned()
        .chain(dependencies::helm_repository_cache())
        .collect();
    let mut records = Vec::new();
    let mut charts = chart_dirs(&inputs.charts)?;
    if let Some(reference) = &inputs.since {
        charts = changed_since(reference, charts, &mut records)?;
        if charts.is_empty() {
            if let Some(path) = junit {
                testware::junit::write(path, "testware-check", &records)?;
            }
            return Ok(0);
        }
    }
    for (root, name) in charts {
        let missing = dependencies::missing_remote(&root.join(&name))?;
        let set = if missing.is_empty() {
            Arc::new(ChartSet::new(root))
        } else {
            let (found, left_out): (Vec<_>, Vec<_>) = missing
                .into_iter()
                .map(|d| (dependencies::find_archive(&d, &archive_dirs), d))
                .partition(|(archive, _)| archive.is_some());
            let left_out: Vec<_> = left_out.into_iter().map(|(_, d)| d).collect();
            if !left_out.is_empty() {
                // One finding for the chart, not one per value set.
                let message = dependencies::not_checked(&name, &left_out);
                println!("note: {message}\n");
                records.push(record(
                    format!("dependencies::{name}"),
                    Instant::now(),
                    CaseStatus::Ignored(message),
                    None,
                ));
            }
            let copies = spool.dir.join("charts");
            let copy = dependencies::copy_without(&root.join(&name), &left_out, &copies)?;
            for (archive, d) in found.into_iter().filter_map(|(a, d)| Some((a?, d))) {
                println!(
                    "note: chart {name}: dependency {} {} from {}\n",
                    d.name,
                    d.version,
                    archive.display()
                );
                let file = archive.file_name().expect("an archive has a file name");
                std::fs::create_dir_all(copy.join("charts"))?;
                std::fs::copy(&archive, copy.join("charts").join(file))?;
            }
            Arc::new(ChartSet::new(copies))
        };
        let name = name.as_str();
        // The same loop as the suites' policy cases (policy::cases).
        let checks = policy::plan(&set, name, given.clone())?
            .into_iter()
            .filter(|c| options.rules.is_empty() || c.kind == policy::CheckKind::Policy);
        let mut notices = Notices::default();
        for check in checks {
            let started = Instant::now();
            let (status, output) = match outcome(&check, options, &mut notices).await {
                Ok(warnings) => {
                    let output = warnings.map(|report| report.to_string());
                    if let Some(report) = &output {
                        println!("{report}");
                    }
                    (CaseStatus::Passed, output)
                }
                Err(e) => (status_of(&e), None),
            };
            records.push(record(check.name(), started, status, output));
        }
        let sets = match &given {
            Some(sets) => sets.clone(),
            None => set.open(name)?.value_sets(),
        };
        if let Some(goal) = &inputs.coverage {
            records.push(coverage_case(&set, name, &sets, goal, &spool.dir.join("coverage")).await);
        }
        if let Some(snapshots) = &inputs.snapshots {
            for values in sets {
                let started = Instant::now();
                let status = match snapshots.assert_render(&set, name, &values).await {
                    Ok(()) => CaseStatus::Passed,
                    Err(e) => status_of(&e),
                };
                records.push(record(
                    format!("snapshot::{name}::{}", values.label),
                    started,
                    status,
                    None,
                ));
            }
        }
    }
    drop(spool);
    let failed: Vec<&CaseRecord> = records
        .iter()
        .filter(|r| matches!(r.status, CaseStatus::Failed(_) | CaseStatus::Errored(_)))
        .collect();
    for r in &records {
        match &r.status {
            CaseStatus::Failed(message) => println!("FAIL {}\n{}\n", r.name, indent(message)),
            CaseStatus::Errored(message) => {
                println!("ERROR {} (not checked)\n{}\n", r.name, indent(message))
            }
            CaseStatus::Ignored(_) => println!("skip {} (see the note above)", r.name),
            _ => println!("ok   {}", r.name),
        }
    }
    let skipped = records
        .iter()
        .filter(|r| matches!(r.status, CaseStatus::Ignored(_)))
        .count();
    let errored = records
        .iter()
        .filter(|r| matches!(r.status, CaseStatus::Errored(_)))
        .count();
    println!(
        "\n{} checks: {} passed, {} failed{}{}",
        records.len(),
        records.len() - failed.len() - skipped,
        failed.len(),
        if errored > 0 {
            format!(" ({errored} not checked)")
        } else {
            String::new()
        },
        if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        },
    );
    if let Some(path) = junit {
        testware::junit::write(path, "testware-check", &records)?;
    }
    Ok(failed.len())
}

/// The case `coverage::<chart>`: the report as its output (printed), its
/// figures as JUnit properties; it fails below the goal, and is an error when
/// no value set could be measured.
async fn coverage_case(
    charts: &ChartSet,
    name: &str,
    sets: &[ValueSet],
    goal: &CoverageGoal,
    scratch: &std::path::Path,
) -> CaseRecord {
    let started = Instant::now();
    let measured = coverage::measure(charts, name, sets, scratch).await;
    let case = format!("coverage::{name}");
    let report = match measured {
        Ok(report) => report,
        Err(e) => return record(case, started, CaseStatus::Errored(format!("{e:#}")), None),
    };
    let text = report.to_string();
    println!("{text}");
    let (taken, all) = report.ratio();
    let status = match goal.min {
        _ if report.measured.is_empty() => CaseStatus::Errored(format!(
            "no value set of chart {name} could be measured:\n{text}"
        )),
        Some(min) if report.percent() < min => CaseStatus::Failed(format!(
            "chart {name}: {taken} of {all} branches taken ({:.1} %), below --coverage-min {min} %",
            report.percent()
        )),
        _ => CaseStatus::Passed,
    };
    let mut case = record(case, started, status, Some(text));
    case.properties.extend([
        ("coverage.branches".into(), format!("{taken}/{all}")),
        (
            "coverage.percent".into(),
            format!("{:.1}", report.percent()),
        ),
    ]);
    case
}

/// The charts of `charts` changed since `reference`, each with a case
/// `version::<chart>` in `records` that fails when its version was not raised.
fn changed_since(
    reference: &str,
    charts: Vec<(PathBuf, String)>,
    records: &mut Vec<CaseRecord>,
) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let started = Instant::now();
    let dirs: Vec<PathBuf> = charts.iter().map(|(root, name)| root.join(name)).collect();
    let (base, changes) = changes::since(reference, &dirs)?;
    let short = &base[..base.len().min(12)];
    let changed: Vec<_> = changes.iter().filter(|c| c.changed()).collect();
    if changed.is_empty() {
        println!(
            "nothing changed since {reference} (merge base {short}) in the {} chart(s) given: no chart to check",
            charts.len()
        );
        return Ok(Vec::new());
    }
    println!(
        "{} of {} chart(s) changed since {reference} (merge base {short}):",
        changed.len(),
        charts.len()
    );
    for c in &changed {
        let why = match &c.change {
            changes::Change::Files(files) => files.join(", "),
            changes::Change::Dependency(dir) => format!("its file:// dependency {dir}"),
            changes::Change::Unchanged => String::new(),
        };
        let version = match &c.version_before {
            Some(before) => format!("{before} -> {}", c.version),
            None => format!("{}, new", c.version),
        };
        println!("  {} ({version}): {why}", c.name);
    }
    println!();
    for c in &changed {
        let status = match c.version_problem(reference) {
            Some(problem) => CaseStatus::Failed(problem),
            None => CaseStatus::Passed,
        };
        records.push(record(
            format!("version::{}", c.name),
            started,
            status,
            None,
        ));
    }
    Ok(charts
        .into_iter()
        .zip(&changes)
        .filter(|(_, c)| c.changed())
        .map(|(chart, _)| chart)
        .collect())
}

/// Runs one check as [`policy::Check::run`] does, except that a warning about
/// the chart rather than one of its objects (a value key no pod takes) is given
/// with the first value set only.
async fn outcome(
    check: &policy::Check,
    options: &policy::CheckOptions,
    notices: &mut Notices,
) -> anyhow::Result<Option<policy::Report>> {
    if check.kind != policy::CheckKind::Policy {
        return check.run(options).await;
    }
    let mut report =
        policy::check_chart_with(&check.charts, &check.chart, &check.values, options).await?;
    report.violations.retain(|v| notices.first_time(v));
    anyhow::ensure!(report.passes(), "{report}");
    Ok((!report.violations.is_empty()).then_some(report))
}

/// The chart-wide warnings already given for one chart.
#[derive(Default)]
struct Notices(std::collections::HashSet<(policy::Rule, String, String)>);

impl Notices {
    /// `false` for a chart-wide warning given before; errors always count.
    fn first_time(&mut self, v: &policy::Violation) -> bool {
        let chart_wide = v.object.starts_with("value ") || v.object.starts_with("chart ");
        v.severity == policy::Severity::Error
            || !chart_wide
            || self.0.insert((v.rule, v.object.clone(), v.message.clone()))
    }
}

/// A check that could not run — the chart does not render — is an error;
/// findings (rules or lint) are a failure.
fn status_of(e: &anyhow::Error) -> CaseStatus {
    let message = format!("{e:#}");
    match e.downcast_ref::<ChartError>() {
        Some(ChartError::Lint { .. }) | None => CaseStatus::Failed(message),
        Some(_) => CaseStatus::Errored(message),
    }
}

fn record(
    name: String,
    started: Instant,
    status: CaseStatus,
    output: Option<String>,
) -> CaseRecord {
    CaseRecord {
        name,
        kind: "no_deploy".into(),
        duration: started.elapsed(),
        properties: vec![("tier".into(), "no_deploy".into())],
        status,
        output,
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("     {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
