//! Template coverage over a chart's value sets: which branches of its
//! templates (`if`/`else`, `with`, `range` over empty and non-empty lists,
//! `define` bodies — helpers and library charts' included) no value set takes,
//! and which value keys no value set reads.
//!
//! Helm has no hook for this, so a copy of the chart is instrumented
//! ([`instrument`]): every branch prints a marker, a YAML comment, when it
//! runs, and helpers' markers are taken out of what `include` returns and
//! printed beside it. Each value set renders the copy; the markers in the
//! output are the branches taken. The render with the markers taken out must
//! be the chart's own render (volatile fields aside): when it is not — a
//! marker in a flow sequence, a `tpl` whose text includes a helper — the value
//! set is reported as not measured rather than counted wrong.

pub mod instrument;
pub mod values;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::chart::{ChartSet, ValueSet};
use crate::charts::snapshot;
use crate::manifest::Manifests;
use instrument::Branch;
use values::Key;

/// A branch and the file it is in (relative to the chart, e.g.
/// `templates/deployment.yaml`, `charts/common/templates/_labels.tpl`).
#[derive(Debug, Clone)]
pub struct FileBranch {
    /// The file.
    pub file: String,
    /// The branch.
    pub branch: Branch,
}

/// A key read by a template.
#[derive(Debug, Clone)]
pub struct Read {
    /// The key's dotted path.
    pub key: String,
    /// The template.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// Whether a measured value set ran the code that reads it.
    pub taken: bool,
}

/// The coverage of one chart over its value sets.
#[derive(Debug, Clone)]
pub struct Coverage {
    /// The chart.
    pub chart: String,
    /// The value sets measured.
    pub measured: Vec<String>,
    /// The value sets not measured, and why.
    pub not_measured: Vec<(String, String)>,
    /// Every branch of the chart's templates.
    pub branches: Vec<FileBranch>,
    /// The ids of the branches some measured value set took.
    pub taken: BTreeSet<usize>,
    /// The keys `values.yaml` defines.
    pub defined: Vec<Key>,
    /// The keys the templates read.
    pub reads: Vec<Read>,
}

impl Coverage {
    /// Branches taken, of all.
    pub fn ratio(&self) -> (usize, usize) {
        let taken = self
            .branches
            .iter()
            .filter(|b| self.taken.contains(&b.branch.id))
            .count();
        (taken, self.branches.len())
    }

    /// Branches taken, in percent (100 for a chart without branches).
    pub fn percent(&self) -> f64 {
        match self.ratio() {
            (_, 0) => 100.0,
            (taken, all) => taken as f64 * 100.0 / all as f64,
        }
    }

    /// The branches no measured value set took, in file order.
    pub fn not_taken(&self) -> Vec<&FileBranch> {
        self.branches
            .iter()
            .filter(|b| !self.taken.contains(&b.branch.id))
            .collect()
    }

    /// Keys `values.yaml` defines that no template reads.
    pub fn unread(&self) -> Vec<&Key> {
        self.defined
            .iter()
            .filter(|k| !self.reads.iter().any(|r| values::covers(&r.key, &k.path)))
            .collect()
    }

    /// Keys `values.yaml` defines that templates read only where no value set goes.
    pub fn read_only_where_not_taken(&self) -> Vec<&Key> {
        self.defined
            .iter()
            .filter(|k| {
                let reads: Vec<_> = self
                    .reads
                    .iter()
                    .filter(|r| values::covers(&r.key, &k.path))
                    .collect();
                !reads.is_empty() && reads.iter().all(|r| !r.taken)
            })
            .collect()
    }

    /// Reads of keys `values.yaml` does not define (a value set must give them,
    /// or the template has a default).
    pub fn undefined_reads(&self) -> Vec<&Read> {
        let mut seen = BTreeSet::new();
        self.reads
            .iter()
            .filter(|r| !self.defined.iter().any(|k| values::covers(&r.key, &k.path)))
            .filter(|r| seen.insert(r.key.clone()))
            .collect()
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (taken, all) = self.ratio();
        if self.measured.is_empty() {
            writeln!(f, "coverage of chart {}: no value set measured", self.chart)?;
            for (set, why) in &self.not_measured {
                writeln!(f, "  value set {set} not measured: {why}")?;
            }
            return Ok(());
        }
        writeln!(
            f,
            "coverage of chart {} over {} value set(s) ({}): {taken} of {all} branches taken ({:.1} %)",
            self.chart,
            self.measured.len(),
            self.measured.join(", "),
            self.percent()
        )?;
        let not_taken = self.not_taken();
        if !not_taken.is_empty() {
            writeln!(f, "  branches no value set takes:")?;
            for b in not_taken {
                writeln!(f, "    {}:{}: {}", b.file, b.branch.line, b.branch.kind)?;
            }
        }
        let unread = self.unread();
        if !unread.is_empty() {
            writeln!(f, "  value keys no template reads:")?;
            for k in unread {
                writeln!(f, "    values.yaml:{}: {}", k.line, k.path)?;
            }
        }
        let only = self.read_only_where_not_taken();
        if !only.is_empty() {
            writeln!(f, "  value keys read only in branches no value set takes:")?;
            for k in only {
                writeln!(f, "    values.yaml:{}: {}", k.line, k.path)?;
            }
        }
        let undefined = self.undefined_reads();
        if !undefined.is_empty() {
            writeln!(f, "  value keys read but not in values.yaml:")?;
            for r in undefined {
                writeln!(f, "    {}:{}: {}", r.file, r.line, r.key)?;
            }
        }
        for (set, why) in &self.not_measured {
            writeln!(f, "  value set {set} not measured: {why}")?;
        }
        Ok(())
    }
}

/// Measures `chart` of `charts` over `sets`, instrumenting a copy under
/// `scratch` (replaced if there).
///
/// # Errors
/// The chart cannot be copied, a template does not lex, or helm is missing.
/// A value set that does not render is reported, not an error.
pub async fn measure(
    charts: &ChartSet,
    chart: &str,
    sets: &[ValueSet],
    scratch: &Path,
) -> anyhow::Result<Coverage> {
    let dir = charts.dir(chart);
    let copy = scratch.join(chart);
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    crate::charts::dependencies::copy_tree(&dir, &copy)?;
    let mut next_id = 0;
    let mut branches = Vec::new();
    let mut reads = Vec::new();
    let libraries = library_subcharts(&copy);
    for file in templates(&copy)? {
        let relative = file
            .strip_prefix(&copy)
            .unwrap_or(&file)
            .display()
            .to_string();
        let text = std::fs::read_to_string(&file)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        let (instrumented, found) = instrument::instrument(&text, &mut next_id)
            .map_err(|e| anyhow::anyhow!("chart {chart}: {relative}: {e}"))?;
        std::fs::write(&file, instrumented)?;
        // The chart's own `.Values`: its templates and its library charts'.
        if !file.starts_with(copy.join("charts")) || libraries.iter().any(|l| file.starts_with(l)) {
            for (key, at) in values::read(&text) {
                reads.push((
                    relative.clone(),
                    key,
                    line(&text, at),
                    innermost(&found, at),
                ));
            }
        }
        branches.extend(found.into_iter().map(|branch| FileBranch {
            file: relative.clone(),
            branch,
        }));
    }
    std::fs::write(copy.join(instrument::HELPERS_FILE), instrument::HELPERS)?;
    let helm = charts.renderer().await?;
    let mut coverage = Coverage {
        chart: chart.to_owned(),
        measured: Vec::new(),
        not_measured: Vec::new(),
        branches,
        taken: BTreeSet::new(),
        defined: values::defined(
            &std::fs::read_to_string(dir.join("values.yaml")).unwrap_or_default(),
        ),
        reads: Vec::new(),
    };
    for set in sets {
        let options = set.options();
        let outcome: anyhow::Result<Result<BTreeSet<usize>, String>> = async {
            let expected = snapshot::stable_document(charts, chart, &options).await?;
            let text = match helm.helm().template(&copy, &options).await {
                Ok(text) => text,
                Err(e) => {
                    // helm's own words, without the command line.
                    let message = crate::error_chain(&e);
                    let said = message
                        .split_once("Error: ")
                        .map_or(message.as_str(), |(_, said)| said);
                    return Ok(Err(format!(
                        "the chart with markers does not render (a branch inside a flow collection?): {}",
                        said.lines().next().unwrap_or_default()
                    )));
                }
            };
            let (ids, clean) = instrument::markers(&text);
            let mut got = match Manifests::parse(&clean) {
                Ok(m) => snapshot::document(&m),
                Err(e) => return Ok(Err(format!("the render with markers taken out does not parse: {e}"))),
            };
            mask_like(&mut got, &expected);
            Ok(match first_difference(&expected, &got, String::new()) {
                None => Ok(ids),
                Some(at) => Err(format!(
                    "the markers changed the render at {at} (a helper whose output is compared or hashed?)"
                )),
            })
        }
        .await;
        match outcome {
            Ok(Ok(ids)) => {
                coverage.taken.extend(ids);
                coverage.measured.push(set.label.clone());
            }
            Ok(Err(why)) => coverage.not_measured.push((set.label.clone(), why)),
            Err(e) => coverage
                .not_measured
                .push((set.label.clone(), format!("does not render: {e:#}"))),
        }
    }
    let measured_any = !coverage.measured.is_empty();
    coverage.reads = reads
        .into_iter()
        .map(|(file, key, line, inside)| Read {
            taken: match inside {
                Some(id) => coverage.taken.contains(&id),
                // Outside every branch: read whenever the file renders, which
                // for a helper file (`_*.tpl`) is never outside a define.
                None => measured_any && !is_helper(&file),
            },
            key,
            file,
            line,
        })
        .collect();
    Ok(coverage)
}

/// The template files of the chart and its unpacked subcharts, sorted; not
/// NOTES.txt (`helm template` leaves it out of the output).
fn templates(chart: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut dirs = vec![chart.join("templates")];
    let subcharts = chart.join("charts");
    if subcharts.is_dir() {
        for entry in std::fs::read_dir(&subcharts)? {
            let path = entry?.path();
            if path.is_dir() {
                found.extend(templates(&path)?);
            }
        }
    }
    while let Some(dir) = dirs.pop() {
        if !dir.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n != "NOTES.txt") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// The directories of `chart`'s library subcharts (unpacked under
/// `charts/`): their helpers run with the parent's context, so their
/// `.Values` are the parent's.
fn library_subcharts(chart: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(chart.join("charts"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|dir| {
            crate::HelmChart::open(dir)
                .is_ok_and(|c| c.meta().chart_type.as_deref() == Some("library"))
        })
        .collect()
}

fn is_helper(file: &str) -> bool {
    Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('_'))
}

fn line(text: &str, at: usize) -> usize {
    text[..at].bytes().filter(|b| *b == b'\n').count() + 1
}

/// The id of the innermost branch whose body holds `at`.
fn innermost(branches: &[Branch], at: usize) -> Option<usize> {
    branches
        .iter()
        .filter(|b| b.body.contains(&at))
        .min_by_key(|b| b.body.len())
        .map(|b| b.id)
}

/// `got` with `[volatile]` wherever `expected` has it.
fn mask_like(got: &mut Value, expected: &Value) {
    match (got, expected) {
        (g, Value::String(s)) if s == "[volatile]" => *g = Value::String(s.clone()),
        (Value::Object(g), Value::Object(e)) => {
            for (k, v) in g.iter_mut() {
                if let Some(ev) = e.get(k) {
                    mask_like(v, ev);
                }
            }
        }
        (Value::Array(g), Value::Array(e)) => {
            for (gv, ev) in g.iter_mut().zip(e) {
                mask_like(gv, ev);
            }
        }
        _ => {}
    }
}

/// The path of the first place `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys()) {
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => {
                        if let Some(d) = first_difference(p, q, format!("{at}.{key}")) {
                            return Some(d);
                        }
                    }
                    _ => return Some(format!("{at}.{key}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(if at.is_empty() { "the top".into() } else { at }),
    }
}
