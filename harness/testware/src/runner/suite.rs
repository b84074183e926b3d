//! `Suite`: the cases of one test binary, selected, run under libtest-mimic and
//! reported.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use libtest_mimic::{Arguments, Trial};

use super::execution::{report_quarantine, CaseRun};
use super::requirements::{Requirements, Unmet};
use super::{Case, Ctx, Tier};
use crate::charts::chart::ChartSet;
use crate::cluster::wait::Deadline;
use crate::cluster::{self, ClusterUnavailable};
use crate::config::RunConfig;
use crate::report::junit::{self, CaseRecord};

/// A set of cases that forms one test binary.
pub struct Suite {
    name: String,
    cases: Vec<Case>,
    charts: Option<Arc<ChartSet>>,
}

/// The result of running a suite in-process (see [`Suite::run_with`]).
pub struct SuiteReport {
    /// libtest-mimic's counts.
    pub conclusion: libtest_mimic::Conclusion,
    /// One record per case that ran.
    pub records: Vec<CaseRecord>,
}

impl SuiteReport {
    /// The process exit code: quarantined failures do not count.
    pub fn exit_code(&self) -> ExitCode {
        self.conclusion.exit_code()
    }
}

impl Suite {
    /// An empty suite; `name` names the JUnit testsuite and the artifacts directory.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            cases: Vec::new(),
            charts: None,
        }
    }

    /// Gives the suite's cases the charts under `root` (see [`ChartSet::new`] for
    /// how a relative root is found); cases reach them as an `Arc<ChartSet>`
    /// parameter or through [`Ctx::charts`].
    pub fn charts(self, root: impl Into<std::path::PathBuf>) -> Self {
        self.chart_set(ChartSet::new(root))
    }

    /// Gives the suite's cases an existing chart set (shared with generated cases).
    pub fn chart_set(mut self, charts: Arc<ChartSet>) -> Self {
        self.charts = Some(charts);
        self
    }

    /// Adds a case.
    pub fn case(mut self, case: Case) -> Self {
        self.cases.push(case);
        self
    }

    /// Adds several cases (e.g. one per values file).
    pub fn cases(mut self, cases: impl IntoIterator<Item = Case>) -> Self {
        self.cases.extend(cases);
        self
    }

    /// Parses the process's arguments and environment, runs the selected cases and
    /// returns the exit code for `main`.
    pub fn run(self) -> ExitCode {
        crate::report::timeline::init();
        let (config, args) = match RunConfig::from_process() {
            Ok(parsed) => parsed,
            // --help, or a command line clap refuses: clap says it and exits.
            Err(crate::config::ConfigError::Arguments(e)) => e.exit(),
            Err(e) => {
                eprintln!("error: {}", crate::error_chain(&e));
                return ExitCode::from(2);
            }
        };
        let report = self.run_with(config, &args, |config, tier| match tier {
            Tier::NoDeploy => Ok(()),
            Tier::Component => crate::containers::engine::probe(&config.tools).map(|_| ()),
            Tier::ChartDeploy => prepare_cluster(config).map_err(|e| e.with_remedy()),
        });
        report.exit_code()
    }

    /// Runs with an explicit config, arguments and requirement probe: called once
    /// per tier with a requirement ([`Tier::requirement`]) that a selected case
    /// has, before the cases run; `Err` says why the requirement is not met.
    pub fn run_with(
        self,
        config: RunConfig,
        args: &Arguments,
        mut probe: impl FnMut(&RunConfig, Tier) -> Result<(), String>,
    ) -> SuiteReport {
        let config = Arc::new(config);
        let requirements = Requirements::default();
        let records: Arc<Mutex<Vec<CaseRecord>>> = Arc::default();
        let today = time::OffsetDateTime::now_utc().date();

        let selected: Vec<Case> = self
            .cases
            .into_iter()
            .filter(|c| {
                config
                    .mark
                    .as_ref()
                    .is_none_or(|m| m.matches(&c.all_marks()))
            })
            .collect();
        let selected = match &config.shard {
            Some(shard) => {
                let names: Vec<String> = selected.iter().map(|c| c.name.clone()).collect();
                let kept = shard.keep(&self.name, &names);
                selected
                    .into_iter()
                    .filter(|c| kept.contains(&c.name))
                    .collect()
            }
            None => selected,
        };

        let trials: Vec<(Tier, Trial)> = selected
            .into_iter()
            .map(|case| {
                let tier = case.tier;
                let kind = case.all_marks().join(",");
                let name = case.name.clone();
                let run = CaseRun {
                    ctx: Ctx {
                        config: config.clone(),
                        suite: self.name.clone(),
                        case: case.name.clone(),
                        tier,
                        deadline: Deadline::after(case.timeout),
                        charts: self.charts.clone(),
                        scope: Arc::default(),
                    },
                    case,
                    requirements: requirements.clone(),
                    records: records.clone(),
                    today,
                };
                (
                    tier,
                    Trial::ignorable_test(name, move || run.execute()).with_kind(kind),
                )
            })
            .collect();

        let mut unmet = Vec::new();
        for tier in [Tier::ChartDeploy, Tier::Component] {
            let needed = !args.list
                && trials.iter().any(|(t, trial)| {
                    *t == tier && !args.is_filtered_out(trial) && !args.is_ignored(trial)
                });
            if !needed {
                continue;
            }
            if let Err(reason) = probe(&config, tier) {
                let effect = if config.require_cluster {
                    "fail"
                } else {
                    "are ignored"
                };
                let what = tier.requirement().unwrap_or("requirement");
                eprintln!(
                    "note: {} cases {effect}: no usable {what}: {reason}",
                    tier.as_str()
                );
                unmet.push(Unmet { tier, reason });
            }
        }
        requirements.settle(unmet);

        let single_case = (config.under_nextest && args.exact)
            .then(|| args.filter.clone())
            .flatten();
        let conclusion = libtest_mimic::run(args, trials.into_iter().map(|(_, t)| t).collect());

        let records = std::mem::take(&mut *records.lock().unwrap_or_else(|p| p.into_inner()));
        report_quarantine(&records);
        if let Some(path) = config.junit_file(&self.name, single_case.as_deref()) {
            if !records.is_empty() {
                if let Err(e) = junit::write(&path, &self.name, &records) {
                    eprintln!(
                        "error: failed to write JUnit report {}: {e}",
                        path.display()
                    );
                }
            }
        }
        SuiteReport {
            conclusion,
            records,
        }
    }
}

/// Before the first chart_deploy case: the probe (a usable cluster), the signal
/// handler that deletes the run's namespaces, and the janitor that reaps what
/// killed runs left behind.
fn prepare_cluster(config: &RunConfig) -> Result<(), ClusterUnavailable> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClusterUnavailable::Runtime)?;
    runtime.block_on(async {
        cluster::probe(config).await?;
        super::signals::clean_up_on_signal(config.clone());
        let reaped = match cluster::client(config).await {
            Ok(client) => {
                match crate::cluster::claims::reap_expired(&client).await {
                    Ok(objects) if !objects.is_empty() => eprintln!(
                        "janitor: deleted cluster-scoped objects of killed runs: {}",
                        objects.join(", ")
                    ),
                    Ok(_) => {}
                    Err(e) => eprintln!("warning: janitor failed: {}", crate::error_chain(&e)),
                }
                crate::cluster::namespace::reap_expired(&client)
                    .await
                    .map_err(|e| crate::error_chain(&e))
            }
            Err(e) => Err(crate::error_chain(&e)),
        };
        match reaped {
            Ok(reaped) if !reaped.is_empty() => eprintln!(
                "janitor: deleted expired namespaces of killed runs: {}",
                reaped.join(", ")
            ),
            Ok(_) => {}
            Err(e) => eprintln!("warning: janitor failed: {e}"),
        }
        Ok(())
    })
}
