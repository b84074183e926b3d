//! `Suite`: the cases of one test binary, selected, run under libtest-mimic and
//! reported.

use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};

use libtest_mimic::{Arguments, Trial};

use super::execution::{report_quarantine, CaseRun};
use super::{Case, Ctx, Tier};
use crate::chart::ChartSet;
use crate::cluster::{self, ClusterUnavailable};
use crate::config::RunConfig;
use crate::junit::{self, CaseRecord};
use crate::wait::Deadline;

/// Whether chart_deploy cases can run.
#[derive(Debug, Clone)]
pub enum ClusterState {
    /// A cluster answered.
    Reachable,
    /// None answered, or none can take pods: why, and what to do.
    Unusable(String),
}

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
        let (config, rest) = match RunConfig::from_process() {
            Ok(parsed) => parsed,
            Err(e) => {
                eprintln!("error: {}", crate::error_chain(&e));
                return ExitCode::from(2);
            }
        };
        let args = Arguments::from_iter(rest);
        let report = self.run_with(config, &args, |config| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(rt) => rt.block_on(async {
                    cluster::probe(config).await?;
                    super::signals::clean_up_on_signal(config.clone());
                    // The janitor: reap what killed runs left behind.
                    match cluster::client(config).await {
                        Ok(client) => match crate::namespace::reap_expired(&client).await {
                            Ok(reaped) if !reaped.is_empty() => {
                                eprintln!(
                                    "janitor: deleted expired namespaces of killed runs: {}",
                                    reaped.join(", ")
                                );
                            }
                            Ok(_) => {}
                            Err(e) => {
                                eprintln!("warning: janitor failed: {}", crate::error_chain(&e))
                            }
                        },
                        Err(e) => eprintln!("warning: janitor failed: {}", crate::error_chain(&e)),
                    }
                    Ok(())
                }),
                Err(e) => Err(ClusterUnavailable::Runtime(e)),
            }
        });
        report.exit_code()
    }

    /// Runs with an explicit config, arguments and cluster probe (the probe is
    /// called once, and only when a selected chart_deploy case is about to run).
    pub fn run_with(
        self,
        config: RunConfig,
        args: &Arguments,
        probe: impl FnOnce(&RunConfig) -> Result<(), ClusterUnavailable>,
    ) -> SuiteReport {
        let config = Arc::new(config);
        let cluster_state: Arc<OnceLock<ClusterState>> = Arc::new(OnceLock::new());
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
                    cluster_state: cluster_state.clone(),
                    records: records.clone(),
                    today,
                };
                (
                    tier,
                    Trial::ignorable_test(name, move || run.execute()).with_kind(kind),
                )
            })
            .collect();

        let needs_cluster = !args.list
            && trials.iter().any(|(tier, trial)| {
                *tier == Tier::ChartDeploy
                    && !args.is_filtered_out(trial)
                    && !args.is_ignored(trial)
            });
        if needs_cluster {
            let state = match probe(&config) {
                Ok(()) => ClusterState::Reachable,
                Err(e) => ClusterState::Unusable(e.with_remedy()),
            };
            if let ClusterState::Unusable(reason) = &state {
                let effect = if config.require_cluster {
                    "fail"
                } else {
                    "are ignored"
                };
                eprintln!("note: chart_deploy cases {effect}: no usable cluster: {reason}");
            }
            let _ = cluster_state.set(state);
        }

        let single_case = (std::env::var_os("NEXTEST").is_some() && args.exact)
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
