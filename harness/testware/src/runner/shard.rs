//! Shards: one run's cases split over several processes or CI jobs sharing a
//! cluster, balanced by the times a previous run took.
//!
//! `HARNESS_SHARD=i/N` makes a suite run only the cases of shard `i` (1-based).
//! With `HARNESS_SHARD_PLAN=<file>` (a [`Plan`] that `testware shard` writes from
//! a run's JUnit reports) the known cases go where the plan put them — the
//! longest first, each to the shard with the least work so far — and cases the
//! plan does not know (new ones) go, in name order, to the shard that is then
//! the shortest, counted at the plan's mean case time. Without a plan the cases
//! are split by a hash of their names. Every process computes the same split
//! from the same plan and case list, so the shards together run every case
//! exactly once — under nextest too, whose listing and per-case processes all
//! apply it. A plan made with `--failed` lists only the failed cases of a run
//! and runs nothing else: the rerun of a failed run's cases.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `i/N`: run only shard `i` of `N`.
pub const ENV_SHARD: &str = "HARNESS_SHARD";
/// A [`Plan`] file for the split (else a hash of the names).
pub const ENV_SHARD_PLAN: &str = "HARNESS_SHARD_PLAN";

/// Where each case runs, from a previous run's times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// How many shards the plan splits into.
    pub shards: usize,
    /// Each known case (`<suite>::<case>`) and its shard, 1-based.
    pub cases: BTreeMap<String, usize>,
    /// Seconds of known work per shard.
    pub loads: Vec<f64>,
    /// The mean seconds of a known case: what a new case counts as.
    pub estimate: f64,
    /// Only the planned cases run (a rerun of failed cases); new ones do not.
    pub only_planned: bool,
}

/// A case's identity across suites: `<suite>::<case>`.
pub fn case_key(suite: &str, case: &str) -> String {
    format!("{suite}::{case}")
}

impl Plan {
    /// `shards` shards balanced over `timings` (`<suite>::<case>`, seconds):
    /// longest case first, each to the shard with the least work so far.
    pub fn balanced(timings: &BTreeMap<String, f64>, shards: usize) -> Self {
        let shards = shards.max(1);
        let mut by_time: Vec<(&String, f64)> = timings.iter().map(|(k, t)| (k, *t)).collect();
        by_time.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        let mut loads = vec![0.0; shards];
        let mut cases = BTreeMap::new();
        for (key, seconds) in by_time {
            let shard = shortest(&loads);
            loads[shard] += seconds;
            cases.insert(key.clone(), shard + 1);
        }
        let estimate = match timings.len() {
            0 => 1.0,
            n => timings.values().sum::<f64>() / n as f64,
        };
        Self {
            shards,
            cases,
            loads,
            estimate,
            only_planned: false,
        }
    }

    /// One shard of exactly `cases` (a rerun of a run's failed cases).
    pub fn only(cases: impl IntoIterator<Item = String>) -> Self {
        let cases: BTreeMap<String, usize> = cases.into_iter().map(|c| (c, 1)).collect();
        Self {
            shards: 1,
            loads: vec![0.0],
            estimate: 1.0,
            cases,
            only_planned: true,
        }
    }

    /// Reads a plan written by [`Plan::write`].
    ///
    /// # Errors
    /// The file cannot be read or is not a plan.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the shard plan {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "{} is not a shard plan ({e}); hint: write one with `testware shard`",
                path.display()
            )
        })
    }

    /// Writes the plan as JSON, creating parent directories.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, text + "\n")
    }

    /// The shard (1-based) of each of `cases` of `suite`: the plan's for known
    /// ones, the then-shortest for new ones (in name order); `None` for new ones
    /// of a plan that runs only its own cases.
    fn assign(&self, suite: &str, cases: &[String]) -> BTreeMap<String, Option<usize>> {
        let mut loads = self.loads.clone();
        loads.resize(self.shards.max(1), 0.0);
        let mut sorted: Vec<&String> = cases.iter().collect();
        sorted.sort();
        sorted
            .into_iter()
            .map(|case| {
                let shard = match self.cases.get(&case_key(suite, case)) {
                    Some(shard) => Some(*shard),
                    None if self.only_planned => None,
                    None => {
                        let shard = shortest(&loads);
                        loads[shard] += self.estimate;
                        Some(shard + 1)
                    }
                };
                (case.clone(), shard)
            })
            .collect()
    }
}

/// The index of the least loaded shard (the first of equals).
fn shortest(loads: &[f64]) -> usize {
    loads
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i)
}

/// The shard (1-based) of `key` among `shards` by a stable hash of the name
/// (FNV-1a: the same in every process and build).
pub fn hash_shard(key: &str, shards: usize) -> usize {
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % shards.max(1) as u64) as usize + 1
}

/// Which shard this process runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Shard {
    /// 1-based.
    pub index: usize,
    /// How many shards there are.
    pub total: usize,
    /// The plan, if given (else a hash of the names splits).
    pub plan: Option<Plan>,
    /// Where the plan came from, for messages.
    pub plan_path: Option<PathBuf>,
}

impl Shard {
    /// From `HARNESS_SHARD` and `HARNESS_SHARD_PLAN` in `env`; `None` when no shard is set.
    ///
    /// # Errors
    /// The shard is not `i/N` with `1 <= i <= N`, the plan cannot be read, or
    /// it was made for another number of shards.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let Some(text) = env(ENV_SHARD).filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let parsed = text
            .split_once('/')
            .and_then(|(i, n)| {
                Some((
                    i.trim().parse::<usize>().ok()?,
                    n.trim().parse::<usize>().ok()?,
                ))
            })
            .filter(|(i, n)| *i >= 1 && i <= n);
        let Some((index, total)) = parsed else {
            return Err(format!(
                "{ENV_SHARD}={text:?} is not a shard: expected i/N with 1 <= i <= N, e.g. 2/3"
            ));
        };
        let plan_path = env(ENV_SHARD_PLAN)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let plan = plan_path.as_deref().map(Plan::read).transpose()?;
        if let Some(plan) = &plan {
            if plan.shards != total {
                return Err(format!(
                    "the shard plan {} splits into {} shards, but {ENV_SHARD}={text} asks for {total}; hint: write the plan with `testware shard --shards {total}`",
                    plan_path.as_deref().unwrap_or(Path::new("?")).display(),
                    plan.shards
                ));
            }
        }
        Ok(Some(Self {
            index,
            total,
            plan,
            plan_path,
        }))
    }

    /// The names among `cases` (of `suite`) that this shard runs.
    pub fn keep(&self, suite: &str, cases: &[String]) -> BTreeSet<String> {
        match &self.plan {
            Some(plan) => plan
                .assign(suite, cases)
                .into_iter()
                .filter(|(_, shard)| *shard == Some(self.index))
                .map(|(case, _)| case)
                .collect(),
            None => cases
                .iter()
                .filter(|c| hash_shard(&case_key(suite, c), self.total) == self.index)
                .cloned()
                .collect(),
        }
    }
}

/// The longest shard over the mean of `loads` (1.0: perfectly even).
pub fn imbalance(loads: &[f64]) -> f64 {
    let total: f64 = loads.iter().sum();
    if loads.is_empty() || total <= 0.0 {
        return 1.0;
    }
    let longest = loads.iter().copied().fold(0.0, f64::max);
    longest / (total / loads.len() as f64)
}

/// The loads of the hash split of `timings` over `shards`, for comparison.
pub fn hash_loads(timings: &BTreeMap<String, f64>, shards: usize) -> Vec<f64> {
    let mut loads = vec![0.0; shards.max(1)];
    for (key, seconds) in timings {
        loads[hash_shard(key, shards) - 1] += seconds;
    }
    loads
}

/// A case's time and whether it failed, as a run's JUnit reports say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recorded {
    /// Seconds (the longest attempt's).
    pub seconds: f64,
    /// Whether any attempt failed or errored.
    pub failed: bool,
}

/// The harness's cases in the JUnit reports under `paths` (files, or
/// directories searched recursively): `<suite>::<case>` with time and failure.
/// Reports of other tools (without the harness's `kind` property) are passed over.
///
/// # Errors
/// A path cannot be read, or a report does not parse (named).
pub fn read_junit(paths: &[PathBuf]) -> Result<BTreeMap<String, Recorded>, String> {
    let mut files = Vec::new();
    for path in paths {
        collect_xml(path, &mut files)?;
    }
    let mut cases: BTreeMap<String, Recorded> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let report = quick_junit::Report::deserialize_from_str(&text)
            .map_err(|e| format!("{} is not a JUnit report: {e}", file.display()))?;
        for suite in &report.test_suites {
            for case in &suite.test_cases {
                let ours = case.properties.iter().any(|p| p.name.as_str() == "kind");
                if !ours {
                    continue;
                }
                let suite_name = case
                    .classname
                    .as_ref()
                    .map_or_else(|| suite.name.as_str().to_owned(), |c| c.as_str().to_owned());
                let seconds = case.time.unwrap_or(Duration::ZERO).as_secs_f64();
                let failed = matches!(case.status, quick_junit::TestCaseStatus::NonSuccess { .. });
                let entry = cases
                    .entry(case_key(&suite_name, case.name.as_str()))
                    .or_insert(Recorded {
                        seconds,
                        failed: false,
                    });
                entry.seconds = entry.seconds.max(seconds);
                entry.failed |= failed;
            }
        }
    }
    Ok(cases)
}

fn collect_xml(path: &Path, into: &mut Vec<PathBuf>) -> Result<(), String> {
    if path.is_file() {
        into.push(path.to_owned());
        return Ok(());
    }
    let entries = std::fs::read_dir(path).map_err(|e| {
        format!(
            "cannot read JUnit reports in {}: {e}; hint: give the directory a previous run wrote (HARNESS_JUNIT)",
            path.display()
        )
    })?;
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for entry in paths {
        if entry.is_dir() {
            collect_xml(&entry, into)?;
        } else if entry.extension().is_some_and(|e| e == "xml") {
            into.push(entry);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timings(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, t)| ((*k).to_owned(), *t)).collect()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_longest_cases_are_spread_first_and_new_ones_go_to_the_shortest() {
        let known = timings(&[
            ("s::a", 60.0),
            ("s::b", 50.0),
            ("s::c", 10.0),
            ("s::d", 10.0),
            ("s::e", 5.0),
        ]);
        let plan = Plan::balanced(&known, 2);
        // a → 1, b → 2, c → 2 (60 vs 60), d → 1 (70 vs 60)… e → 2.
        assert_eq!(plan.loads, vec![70.0, 65.0]);
        assert!(imbalance(&plan.loads) < 1.04, "{:?}", plan.loads);
        assert_eq!(plan.estimate, 27.0);
        let one = Shard {
            index: 1,
            total: 2,
            plan: Some(plan.clone()),
            plan_path: None,
        };
        let two = Shard {
            index: 2,
            ..one.clone()
        };
        let all = names(&["a", "b", "c", "d", "e", "new1", "new2"]);
        let (first, second) = (one.keep("s", &all), two.keep("s", &all));
        // Every case exactly once.
        assert!(first.is_disjoint(&second));
        assert_eq!(first.len() + second.len(), all.len());
        // new1 goes to the then-shortest (2: 65 + 27 = 92), new2 to 1 (70 + 27).
        assert!(
            second.contains("new1") && first.contains("new2"),
            "{first:?} {second:?}"
        );
    }

    #[test]
    fn without_a_plan_a_hash_splits_every_case_exactly_once() {
        let all: Vec<String> = (0..40).map(|i| format!("case_{i}")).collect();
        let kept: Vec<BTreeSet<String>> = (1..=3)
            .map(|index| {
                Shard {
                    index,
                    total: 3,
                    plan: None,
                    plan_path: None,
                }
                .keep("s", &all)
            })
            .collect();
        let union: BTreeSet<&String> = kept.iter().flatten().collect();
        assert_eq!(union.len(), 40);
        assert_eq!(kept.iter().map(BTreeSet::len).sum::<usize>(), 40);
        assert!(kept.iter().all(|k| !k.is_empty()), "{kept:?}");
    }

    #[test]
    fn a_rerun_plan_runs_only_its_cases() {
        let shard = Shard {
            index: 1,
            total: 1,
            plan: Some(Plan::only(["s::b".to_owned()])),
            plan_path: None,
        };
        assert_eq!(
            shard.keep("s", &names(&["a", "b", "c"])),
            BTreeSet::from(["b".to_owned()])
        );
        assert!(shard.keep("other", &names(&["b"])).is_empty());
    }

    #[test]
    fn a_bad_shard_or_a_plan_for_another_count_is_refused() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(Shard::from_env(env(&[])), Ok(None));
        for bad in ["0/3", "4/3", "x", "1/"] {
            let pairs: &'static [(&str, &str)] = Box::leak(Box::new([(ENV_SHARD, bad)]));
            let err = Shard::from_env(env(pairs)).unwrap_err();
            assert!(err.contains("expected i/N"), "{err}");
        }
        let dir = std::env::temp_dir().join(format!("shard-plan-{}", std::process::id()));
        let path = dir.join("plan.json");
        Plan::balanced(&timings(&[("s::a", 1.0)]), 2)
            .write(&path)
            .unwrap();
        let text: &'static str = Box::leak(path.display().to_string().into_boxed_str());
        let pairs: &'static [(&str, &str)] =
            Box::leak(Box::new([(ENV_SHARD, "1/3"), (ENV_SHARD_PLAN, text)]));
        let err = Shard::from_env(env(pairs)).unwrap_err();
        assert!(
            err.contains("splits into 2 shards") && err.contains("--shards 3"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn junit_reports_give_times_and_failures_of_the_harness_cases_only() {
        use crate::report::junit::{render, CaseRecord, CaseStatus};
        let record = |name: &str, seconds: u64, status| CaseRecord {
            name: name.into(),
            kind: "chart_deploy".into(),
            duration: Duration::from_secs(seconds),
            properties: vec![],
            status,
            output: None,
        };
        let dir = std::env::temp_dir().join(format!("shard-junit-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("nested")).unwrap();
        std::fs::write(
            dir.join("echo.xml"),
            render("echo", &[record("ok", 12, CaseStatus::Passed)]),
        )
        .unwrap();
        std::fs::write(
            dir.join("nested/echo--bad.xml"),
            render("echo", &[record("bad", 3, CaseStatus::Failed("no".into()))]),
        )
        .unwrap();
        // nextest's own report: no `kind` property, left out.
        std::fs::write(dir.join("junit.xml"), "<testsuites><testsuite name=\"suites::echo\" tests=\"1\"><testcase name=\"ok\" classname=\"suites::echo\" time=\"1\"/></testsuite></testsuites>").unwrap();
        let read = read_junit(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(read.len(), 2, "{read:?}");
        assert_eq!(
            read["echo::ok"],
            Recorded {
                seconds: 12.0,
                failed: false
            }
        );
        assert_eq!(
            read["echo::bad"],
            Recorded {
                seconds: 3.0,
                failed: true
            }
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
