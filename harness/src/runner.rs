//! The test runner every suite uses: cases with a tier and marks, selection by
//! mark expression, quarantine, the cluster requirement, JUnit output.
//!
//! Built on libtest-mimic, so plain libtest options (`--list`, `--exact`,
//! `--ignored`, name filters, `--test-threads`) and nextest's one-process-per-test
//! mode work unchanged. A case's tier and marks are its libtest "kind", shown in
//! listings as `[no_deploy,slow] name: test` — that is how nextest filtersets see them.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use crate::cluster::{self, ClusterUnavailable};
use crate::config::{file_safe, KeepNamespace, RunConfig};
use crate::junit::{self, CaseRecord, CaseStatus};
use crate::namespace::TestNamespace;
use crate::wait::Deadline;

/// How long a namespace kept by `--keep-namespace` lives before the janitor may reap it.
pub const KEEP_FOR: Duration = Duration::from_secs(3600);

/// Where a case runs: decides what it needs and when CI runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// Renders charts and checks manifests; needs helm, no cluster.
    NoDeploy,
    /// Deploys into a real cluster.
    ChartDeploy,
}

impl Tier {
    /// The tier's mark name, as used in mark expressions.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::NoDeploy => "no_deploy",
            Tier::ChartDeploy => "chart_deploy",
        }
    }

    fn default_timeout(self) -> Duration {
        match self {
            Tier::NoDeploy => Duration::from_secs(120),
            Tier::ChartDeploy => Duration::from_secs(600),
        }
    }
}

/// The mark every quarantined case carries.
pub const QUARANTINE_MARK: &str = "quarantine";

/// A case that runs and is reported but whose failure does not fail the build.
#[derive(Debug, Clone)]
pub struct Quarantine {
    reason: String,
    ticket: Option<String>,
    expires: Option<String>,
}

impl Quarantine {
    /// Quarantines a case, saying why.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            ticket: None,
            expires: None,
        }
    }

    /// The issue that tracks the fix.
    pub fn ticket(mut self, ticket: impl Into<String>) -> Self {
        self.ticket = Some(ticket.into());
        self
    }

    /// The last day (`YYYY-MM-DD`, UTC) the quarantine holds; after it the case
    /// fails the run, so quarantine cannot become permanent by neglect.
    pub fn expires(mut self, date: impl Into<String>) -> Self {
        self.expires = Some(date.into());
        self
    }

    fn describe(&self) -> String {
        let mut text = format!("reason: {}", self.reason);
        if let Some(t) = &self.ticket {
            text.push_str(&format!("; ticket: {t}"));
        }
        if let Some(e) = &self.expires {
            text.push_str(&format!("; expires: {e}"));
        }
        text
    }

    /// `Err` with the explanation when the quarantine no longer holds on `today`.
    fn check_expiry(&self, today: time::Date) -> Result<(), String> {
        let Some(expires) = &self.expires else {
            return Ok(());
        };
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::Date::parse(expires, &format).map_err(|e| {
            format!("invalid quarantine expiry {expires:?} (expected YYYY-MM-DD): {e}")
        })?;
        if today > date {
            return Err(format!(
                "quarantine expired on {expires} ({}): fix the case and lift the quarantine, or renew it with a new date",
                self.describe()
            ));
        }
        Ok(())
    }

    fn properties(&self) -> Vec<(String, String)> {
        let mut p = vec![("quarantine.reason".to_owned(), self.reason.clone())];
        p.extend(
            self.ticket
                .iter()
                .map(|t| ("quarantine.ticket".to_owned(), t.clone())),
        );
        p.extend(
            self.expires
                .iter()
                .map(|e| ("quarantine.expires".to_owned(), e.clone())),
        );
        p
    }
}

/// What a case body returns; the error chain is printed when it fails.
pub type CaseResult = anyhow::Result<()>;

type BoxedBody = Arc<dyn Fn(Ctx) -> Pin<Box<dyn Future<Output = CaseResult> + Send>> + Send + Sync>;

/// One registered case: a name, a tier, marks, an optional quarantine and an async body.
pub struct Case {
    name: String,
    tier: Tier,
    marks: Vec<String>,
    quarantine: Option<Quarantine>,
    timeout: Duration,
    body: BoxedBody,
}

impl Case {
    /// A case of the given tier.
    pub fn new<F, Fut>(tier: Tier, name: impl Into<String>, body: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        Self {
            name: name.into(),
            tier,
            marks: Vec::new(),
            quarantine: None,
            timeout: tier.default_timeout(),
            body: Arc::new(move |ctx| Box::pin(body(ctx))),
        }
    }

    /// A case that needs no cluster.
    pub fn no_deploy<F, Fut>(name: impl Into<String>, body: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        Self::new(Tier::NoDeploy, name, body)
    }

    /// A case that needs a cluster.
    pub fn chart_deploy<F, Fut>(name: impl Into<String>, body: F) -> Self
    where
        F: Fn(Ctx) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = CaseResult> + Send + 'static,
    {
        Self::new(Tier::ChartDeploy, name, body)
    }

    /// Adds a mark (for selection with `--mark`).
    pub fn mark(mut self, mark: impl Into<String>) -> Self {
        self.marks.push(mark.into());
        self
    }

    /// Quarantines the case.
    pub fn quarantine(mut self, quarantine: Quarantine) -> Self {
        self.quarantine = Some(quarantine);
        self
    }

    /// The whole case, cleanup included, must end within this time (default:
    /// 2 min for no_deploy, 10 min for chart_deploy).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The tier followed by the marks, `quarantine` last: what `--mark` matches.
    pub fn all_marks(&self) -> Vec<String> {
        let mut marks = vec![self.tier.as_str().to_owned()];
        marks.extend(self.marks.iter().filter(|m| *m != QUARANTINE_MARK).cloned());
        if self.quarantine.is_some() {
            marks.push(QUARANTINE_MARK.to_owned());
        }
        marks
    }
}

/// What a running case knows about its run, and the namespaces it created
/// (the runner deletes them when the case ends, however it ends).
#[derive(Clone)]
pub struct Ctx {
    /// The run's options.
    pub config: Arc<RunConfig>,
    /// The suite's name.
    pub suite: String,
    /// The case's name.
    pub case: String,
    /// The case's tier.
    pub tier: Tier,
    deadline: Deadline,
    scope: Arc<CaseScope>,
}

/// What the runner cleans up after a case.
#[derive(Default)]
struct CaseScope {
    client: tokio::sync::OnceCell<kube::Client>,
    helm: tokio::sync::OnceCell<Arc<crate::helm::Helm>>,
    namespaces: Mutex<Vec<Arc<TestNamespace>>>,
}

impl Ctx {
    /// A context for running case code outside the runner (benchmarks, tools):
    /// nothing is cleaned up for it, and its deadline is `timeout` from now.
    pub fn detached(config: Arc<RunConfig>, case: impl Into<String>, timeout: Duration) -> Self {
        Self {
            config,
            suite: "detached".into(),
            case: case.into(),
            tier: Tier::ChartDeploy,
            deadline: Deadline::after(timeout),
            scope: Arc::default(),
        }
    }

    /// Directory for this case's artifacts (failure bundles, logs); not created here.
    pub fn artifacts_dir(&self) -> PathBuf {
        self.config
            .artifacts
            .join(&self.suite)
            .join(file_safe(&self.case))
    }

    /// When the case body must be done; the runner keeps time after it for cleanup.
    /// Waits inside the case use `ctx.deadline().cap(timeout)`.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// The cluster client (built once per case).
    ///
    /// # Errors
    /// No usable kubeconfig.
    pub async fn client(&self) -> Result<kube::Client, ClusterUnavailable> {
        self.scope
            .client
            .get_or_try_init(|| cluster::client(&self.config))
            .await
            .cloned()
    }

    /// The located, version-checked helm (located once per case).
    ///
    /// # Errors
    /// helm is missing or too old.
    pub async fn helm(&self) -> Result<Arc<crate::helm::Helm>, crate::helm::HelmError> {
        self.scope
            .helm
            .get_or_try_init(|| async { crate::helm::Helm::locate().await.map(Arc::new) })
            .await
            .cloned()
    }

    /// A fresh [`TestNamespace`] for this case. The runner deletes it (and awaits
    /// the deletion) when the case ends — passed, failed, panicked or timed out —
    /// after writing a failure bundle if the case failed, and keeps it instead when
    /// `--keep-namespace` asks for that.
    ///
    /// # Errors
    /// No cluster, or the namespace cannot be created.
    pub async fn namespace(&self) -> anyhow::Result<Arc<TestNamespace>> {
        let client = self.client().await?;
        let ns = Arc::new(TestNamespace::create(&client, &self.config, &self.case).await?);
        self.scope
            .namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ns.clone());
        Ok(ns)
    }
}

/// Whether chart_deploy cases can run.
#[derive(Debug, Clone)]
pub enum ClusterState {
    /// A cluster answered.
    Reachable,
    /// None answered, and why.
    Unreachable(String),
}

/// A set of cases that forms one test binary.
pub struct Suite {
    name: String,
    cases: Vec<Case>,
}

/// The result of running a suite in-process (see [`Suite::run_with`]).
pub struct Report {
    /// libtest-mimic's counts.
    pub conclusion: libtest_mimic::Conclusion,
    /// One record per case that ran.
    pub records: Vec<CaseRecord>,
}

impl Report {
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
        }
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
                    clean_up_on_signal(config.clone());
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
    ) -> Report {
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
                Err(e) => ClusterState::Unreachable(crate::error_chain(&e)),
            };
            if let ClusterState::Unreachable(reason) = &state {
                let effect = if config.require_cluster {
                    "fail"
                } else {
                    "are ignored"
                };
                eprintln!("note: chart_deploy cases {effect}: no reachable cluster: {reason}");
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
        Report {
            conclusion,
            records,
        }
    }
}

/// Everything one trial needs, moved into its closure.
struct CaseRun {
    case: Case,
    ctx: Ctx,
    cluster_state: Arc<OnceLock<ClusterState>>,
    records: Arc<Mutex<Vec<CaseRecord>>>,
    today: time::Date,
}

impl CaseRun {
    fn execute(self) -> Result<Completion, Failed> {
        let started = Instant::now();
        let (status, extra) = self.decide();
        let mut properties = vec![("tier".to_owned(), self.case.tier.as_str().to_owned())];
        properties.extend(extra);
        if !self.case.marks.is_empty() {
            properties.push(("marks".to_owned(), self.case.marks.join(",")));
        }
        if let Some(q) = &self.case.quarantine {
            properties.extend(q.properties());
        }
        let result = match &status {
            CaseStatus::Passed | CaseStatus::QuarantinedFailure(_) => Ok(Completion::Completed),
            CaseStatus::Ignored(reason) => Ok(Completion::ignored_with(reason)),
            CaseStatus::Failed(message) => Err(Failed::from(message.as_str())),
        };
        if let CaseStatus::QuarantinedFailure(message) = &status {
            eprintln!(
                "\n!!!! QUARANTINED FAILURE (does not fail the build): {} [{}]\n!!!! {}\n{message}\n",
                self.ctx.case,
                self.ctx.suite,
                self.case.quarantine.as_ref().map(Quarantine::describe).unwrap_or_default()
            );
        }
        self.records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(CaseRecord {
                name: self.ctx.case.clone(),
                kind: self.case.all_marks().join(","),
                duration: started.elapsed(),
                properties,
                status,
            });
        result
    }

    /// The case's outcome and extra JUnit properties (failure bundles).
    fn decide(&self) -> (CaseStatus, Vec<(String, String)>) {
        if self.case.tier == Tier::ChartDeploy {
            if let Some(ClusterState::Unreachable(reason)) = self.cluster_state.get() {
                let hint = "(hint: set KUBECONFIG or --kube-context, or start the local cluster with `ci/cluster up`)";
                let status = if self.ctx.config.require_cluster {
                    CaseStatus::Failed(format!(
                        "no reachable cluster and --require-cluster is set: {reason} {hint}"
                    ))
                } else {
                    CaseStatus::Ignored(format!("needs a cluster: {reason} {hint}"))
                };
                return (status, Vec::new());
            }
        }
        if let Some(q) = &self.case.quarantine {
            if let Err(expired) = q.check_expiry(self.today) {
                return (CaseStatus::Failed(expired), Vec::new());
            }
        }
        let (result, properties) = run_body(&self.case, self.ctx.clone());
        let status = match result {
            Ok(()) => CaseStatus::Passed,
            Err(message) if self.case.quarantine.is_some() => {
                CaseStatus::QuarantinedFailure(message)
            }
            Err(message) => CaseStatus::Failed(message),
        };
        (status, properties)
    }
}

/// Time kept after the body's deadline for cleanup (bundles, namespace deletion).
fn cleanup_reserve(timeout: Duration) -> Duration {
    (timeout / 4).min(Duration::from_secs(90))
}

/// Runs a case body on its own runtime, turning errors, panics and timeouts into
/// a message, then cleans up what the case created; returns the outcome and
/// JUnit properties (failure bundles).
fn run_body(case: &Case, ctx: Ctx) -> (Result<(), String>, Vec<(String, String)>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return (
                Err(format!("failed to start the case's tokio runtime: {e}")),
                Vec::new(),
            )
        }
    };
    let reserve = if case.tier == Tier::ChartDeploy {
        cleanup_reserve(case.timeout)
    } else {
        Duration::ZERO
    };
    let body_limit = case.timeout - reserve;
    let body = case.body.clone();
    let body_ctx = Ctx {
        deadline: Deadline::after(body_limit),
        ..ctx
    };
    runtime.block_on(async move {
        // The body runs as its own task, so a panic or a timeout ends the task but
        // not this function, which still cleans up on the same runtime.
        let mut task = tokio::spawn(body(body_ctx.clone()));
        let result = match tokio::time::timeout(body_limit, &mut task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(format!("{e:#}")),
            Ok(Err(join)) if join.is_panic() => Err(format!(
                "case panicked: {}",
                panic_message(join.into_panic().as_ref())
            )),
            Ok(Err(join)) => Err(format!("case task ended abnormally: {join}")),
            Err(_elapsed) => {
                task.abort();
                let _ = task.await;
                Err(format!(
                    "case timed out after {body_limit:?} (the case's timeout is {:?}, of which {reserve:?} are kept for cleanup)",
                    case.timeout
                ))
            }
        };
        let cleanup = tokio::time::timeout(
            reserve.max(Duration::from_secs(5)),
            clean_up(&body_ctx, result.as_ref().err()),
        )
        .await
        .unwrap_or_else(|_| {
            (
                vec![format!("cleanup did not finish within {reserve:?}; the janitor of a later run deletes what is left")],
                Vec::new(),
            )
        });
        let (problems, properties) = cleanup;
        let result = match (result, problems.is_empty()) {
            (Ok(()), true) => Ok(()),
            (Ok(()), false) => Err(format!("cleanup failed: {}", problems.join("; "))),
            (Err(message), true) => Err(message),
            (Err(message), false) => Err(format!(
                "{message}\nalso, cleanup failed: {}",
                problems.join("; ")
            )),
        };
        let result = match (result, properties.iter().find(|(k, _)| k == "failure_bundle")) {
            (Err(message), Some((_, path))) => Err(format!("{message}\nfailure bundle: {path}")),
            (result, _) => result,
        };
        (result, properties)
    })
}

/// After a case: for each namespace it created, write a failure bundle if it
/// failed, then keep or delete the namespace. Returns cleanup problems and JUnit
/// properties.
async fn clean_up(ctx: &Ctx, failure: Option<&String>) -> (Vec<String>, Vec<(String, String)>) {
    let namespaces = std::mem::take(
        &mut *ctx
            .scope
            .namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    let (mut problems, mut properties) = (Vec::new(), Vec::new());
    for ns in namespaces {
        if let Some(failure) = failure {
            let dir = ctx.artifacts_dir().join(ns.name());
            match crate::diagnostics::write_bundle(
                ctx.helm().await,
                ns.client(),
                ns.name(),
                failure,
                &dir,
                ctx.config.kube_context.as_deref(),
            )
            .await
            {
                Ok(summary) => {
                    properties.push(("failure_bundle".to_owned(), summary.display().to_string()))
                }
                Err(e) => problems.push(format!(
                    "failed to write the failure bundle to {}: {e}",
                    dir.display()
                )),
            }
        }
        let keep = match ctx.config.keep_namespace {
            KeepNamespace::Always => true,
            KeepNamespace::OnFailure => failure.is_some(),
            KeepNamespace::Never => false,
        };
        if keep {
            match ns.keep(KEEP_FOR).await {
                Ok(how) => eprintln!("{}: {how}", ctx.case),
                Err(e) => problems.push(crate::error_chain(&e)),
            }
            continue;
        }
        if let Err(e) = ns.delete(NAMESPACE_DELETE).await {
            problems.push(crate::error_chain(&e));
        }
    }
    (problems, properties)
}

/// On SIGINT or SIGTERM (Ctrl-C; nextest stopping a run or a slow case), deletes
/// every namespace of this run and awaits it, then exits 130 or 143. Runs on its
/// own thread and runtime, so it works while cases block theirs.
fn clean_up_on_signal(config: RunConfig) {
    let spawned = std::thread::Builder::new()
        .name("signal-cleanup".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut interrupt), Ok(mut terminate)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    eprintln!("warning: cannot handle SIGINT/SIGTERM; a killed run leaves its namespaces to the janitor");
                    return;
                };
                let (name, code) = tokio::select! {
                    _ = interrupt.recv() => ("SIGINT", 130),
                    _ = terminate.recv() => ("SIGTERM", 143),
                };
                eprintln!(
                    "\n{name}: deleting the namespaces of run {} before exiting",
                    config.run_id
                );
                let deleted = match cluster::client(&config).await {
                    Ok(client) => {
                        crate::namespace::delete_run_namespaces(
                            &client,
                            &config.run_id,
                            SIGNAL_CLEANUP,
                        )
                        .await
                    }
                    Err(e) => {
                        eprintln!("error: {}", crate::error_chain(&e));
                        std::process::exit(code);
                    }
                };
                match deleted {
                    Ok(names) => eprintln!("{name}: deleted {} namespace(s): {}", names.len(), names.join(", ")),
                    Err(e) => eprintln!(
                        "{name}: cleanup failed ({}); the janitor of a later run deletes what is left",
                        crate::error_chain(&e)
                    ),
                }
                std::process::exit(code);
            });
        });
    if let Err(e) = spawned {
        eprintln!("warning: cannot start the signal handler thread: {e}");
    }
}

/// How long the signal handler waits for the run's namespaces to go (nextest
/// sends SIGKILL 10 s after SIGTERM by default).
const SIGNAL_CLEANUP: Duration = Duration::from_secs(8);

/// The longest a namespace deletion is awaited after a case.
const NAMESPACE_DELETE: Duration = Duration::from_secs(120);

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".to_owned())
}

fn report_quarantine(records: &[CaseRecord]) {
    let failed: Vec<&CaseRecord> = records
        .iter()
        .filter(|r| matches!(r.status, CaseStatus::QuarantinedFailure(_)))
        .collect();
    if !failed.is_empty() {
        eprintln!(
            "quarantine: {} quarantined case(s) failed and were not counted:",
            failed.len()
        );
        for r in failed {
            eprintln!("  - {}", r.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> (RunConfig, Arguments) {
        let (config, rest) = RunConfig::parse(
            std::iter::once("suite".to_owned()).chain(args.iter().map(|s| s.to_string())),
            |_| None,
        )
        .unwrap();
        (
            config,
            Arguments::from_iter(
                rest.into_iter()
                    .chain(["--test-threads=1", "--logfile=/dev/null"].map(String::from)),
            ),
        )
    }

    fn failing_quarantined(expires: &str) -> Suite {
        Suite::new("t").case(
            Case::no_deploy("flaky", |_| async { anyhow::bail!("the flake") }).quarantine(
                Quarantine::new("known flake")
                    .ticket("T-1")
                    .expires(expires),
            ),
        )
    }

    fn status_of(report: &Report, name: &str) -> CaseStatus {
        report
            .records
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.status.clone())
            .unwrap()
    }

    #[test]
    fn quarantined_failure_is_reported_but_does_not_fail() {
        let (config, args) = config(&[]);
        let report = failing_quarantined("2999-12-31").run_with(config, &args, |_| unreachable!());
        assert!(!report.conclusion.has_failed());
        assert!(
            matches!(status_of(&report, "flaky"), CaseStatus::QuarantinedFailure(m) if m.contains("the flake"))
        );
    }

    #[test]
    fn expired_quarantine_fails_the_run() {
        let (config, args) = config(&[]);
        let report = failing_quarantined("2020-01-31").run_with(config, &args, |_| unreachable!());
        assert!(report.conclusion.has_failed());
        assert!(
            matches!(status_of(&report, "flaky"), CaseStatus::Failed(m) if m.contains("quarantine expired on 2020-01-31"))
        );
    }

    #[test]
    fn invalid_expiry_fails_with_the_reason() {
        let (config, args) = config(&[]);
        let report = failing_quarantined("next week").run_with(config, &args, |_| unreachable!());
        assert!(
            matches!(status_of(&report, "flaky"), CaseStatus::Failed(m) if m.contains("invalid quarantine expiry"))
        );
    }

    fn mixed() -> Suite {
        Suite::new("t")
            .case(Case::no_deploy("renders", |_| async { Ok(()) }))
            .case(Case::chart_deploy("deploys", |_| async { Ok(()) }).mark("slow"))
            .case(Case::no_deploy("panics", |_| async { panic!("boom") }))
            .case(
                Case::no_deploy("hangs", |_| std::future::pending())
                    .timeout(Duration::from_millis(50)),
            )
    }

    #[test]
    fn missing_cluster_ignores_chart_deploy_with_the_reason() {
        let (config, args) = config(&["--mark", "chart_deploy"]);
        let report = mixed().run_with(config, &args, |_| {
            Err(ClusterUnavailable::NoKubeconfig("no file".into()))
        });
        assert_eq!(report.records.len(), 1);
        assert!(
            matches!(status_of(&report, "deploys"), CaseStatus::Ignored(m) if m.contains("needs a cluster") && m.contains("hint"))
        );
        assert!(!report.conclusion.has_failed());
    }

    #[test]
    fn missing_cluster_fails_when_required() {
        let (config, args) = config(&["--mark", "chart_deploy", "--require-cluster"]);
        let report = mixed().run_with(config, &args, |_| {
            Err(ClusterUnavailable::NoKubeconfig("no file".into()))
        });
        assert!(report.conclusion.has_failed());
        assert!(
            matches!(status_of(&report, "deploys"), CaseStatus::Failed(m) if m.contains("--require-cluster"))
        );
    }

    #[test]
    fn no_deploy_selection_never_probes_the_cluster() {
        let (config, args) = config(&[
            "--mark",
            "no_deploy and not chart_deploy",
            "--skip",
            "hangs",
            "--skip",
            "panics",
        ]);
        let report = mixed().run_with(config, &args, |_| panic!("probed"));
        assert_eq!(report.conclusion.num_passed, 1);
    }

    #[test]
    fn panics_and_timeouts_become_failures_with_messages() {
        let (config, args) = config(&["--mark", "no_deploy"]);
        let report = mixed().run_with(config, &args, |_| unreachable!());
        assert!(
            matches!(status_of(&report, "panics"), CaseStatus::Failed(m) if m.contains("case panicked: boom"))
        );
        assert!(
            matches!(status_of(&report, "hangs"), CaseStatus::Failed(m) if m.contains("timed out after 50ms"))
        );
    }

    #[test]
    fn marks_include_tier_and_quarantine_last() {
        let case = Case::chart_deploy("x", |_| async { Ok(()) })
            .mark("quarantine")
            .mark("kafka")
            .quarantine(Quarantine::new("r"));
        assert_eq!(case.all_marks(), ["chart_deploy", "kafka", "quarantine"]);
    }
}
