//! Running one case: the cluster requirement, quarantine expiry, the body on its
//! own runtime under its deadline, cleanup, and the typed outcome that becomes a
//! libtest result and a JUnit record.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libtest_mimic::{Completion, Failed};

use super::body::BoxedBody;
use super::requirements::Requirements;
use super::{Case, Ctx, Quarantine, Tier};
use crate::cluster::faults::EXCLUSIVE_MARK;
use crate::cluster::sharing::{self, ClusterHold, HoldKind, Holder};
use crate::cluster::wait::Deadline;
use crate::config::KeepNamespace;
use crate::report::junit::{CaseRecord, CaseStatus};
use crate::report::redact::Redactor;

/// How long a namespace kept by `--keep-namespace` lives before the janitor may reap it.
pub const KEEP_FOR: Duration = Duration::from_secs(3600);

/// Everything one trial needs, moved into its closure.
pub(crate) struct CaseRun {
    pub(crate) case: Case,
    pub(crate) ctx: Ctx,
    pub(crate) requirements: Requirements,
    pub(crate) records: Arc<Mutex<Vec<CaseRecord>>>,
    pub(crate) today: time::Date,
}

/// How a case body ended.
#[derive(Debug)]
enum BodyEnd {
    /// It returned `Ok`.
    Passed,
    /// It returned an error (the whole chain).
    Failed(String),
    /// It panicked, with the panic's message.
    Panicked(String),
    /// It outlived its share of the case's timeout.
    TimedOut {
        body_limit: Duration,
        timeout: Duration,
        reserve: Duration,
    },
    /// The runner could not run it.
    NotRun(String),
}

impl BodyEnd {
    fn failure(&self) -> Option<String> {
        match self {
            BodyEnd::Passed => None,
            BodyEnd::Failed(message) | BodyEnd::NotRun(message) => Some(message.clone()),
            BodyEnd::Panicked(message) => Some(format!("case panicked: {message}")),
            BodyEnd::TimedOut { body_limit, timeout, reserve } => Some(format!(
                "case timed out after {body_limit:?} (the case's timeout is {timeout:?}, of which {reserve:?} are kept for cleanup)"
            )),
        }
    }
}

/// What cleaning up after a case found.
#[derive(Debug, Default)]
struct Cleanup {
    /// What could not be cleaned up.
    problems: Vec<String>,
    /// The failure bundles written (one per namespace of a failed case).
    bundles: Vec<PathBuf>,
    /// What the bundles found secret, for the failure message.
    redactor: Redactor,
}

/// How a case ended: its body, then its cleanup.
#[derive(Debug)]
struct Outcome {
    body: BodyEnd,
    cleanup: Cleanup,
    /// How it held the cluster, and how long it waited for that.
    hold: Option<(HoldKind, Duration)>,
}

impl Outcome {
    /// `None` when the case passed and cleaned up; else the message to show.
    fn failure(&self) -> Option<String> {
        let problems = &self.cleanup.problems;
        let mut message = match (self.body.failure(), problems.is_empty()) {
            (None, true) => return None,
            (None, false) => format!("cleanup failed: {}", problems.join("; ")),
            (Some(message), true) => message,
            (Some(message), false) => {
                format!("{message}\nalso, cleanup failed: {}", problems.join("; "))
            }
        };
        if let Some(bundle) = self.cleanup.bundles.first() {
            message.push_str(&format!("\nfailure bundle: {}", bundle.display()));
        }
        // What goes to the terminal, libtest's output and JUnit: no secrets.
        Some(self.cleanup.redactor.text(&message))
    }
}

impl CaseRun {
    pub(crate) fn execute(self) -> Result<Completion, Failed> {
        let started = Instant::now();
        let CaseRun {
            case,
            ctx,
            requirements,
            records,
            today,
        } = self;
        let Case {
            name,
            tier,
            marks,
            quarantine,
            timeout,
            body,
        } = case;
        let kind = {
            let mut all = vec![tier.as_str().to_owned()];
            all.extend(
                marks
                    .iter()
                    .filter(|m| *m != super::QUARANTINE_MARK)
                    .cloned(),
            );
            if quarantine.is_some() {
                all.push(super::QUARANTINE_MARK.to_owned());
            }
            all.join(",")
        };
        let exclusive = marks.iter().any(|m| m == EXCLUSIVE_MARK);
        let (status, bundles, hold) = decide(
            &ctx,
            (tier, exclusive),
            quarantine.as_ref(),
            timeout,
            body,
            requirements.unmet(tier).map(|u| u.reason.as_str()),
            today,
        );
        let status = flaky_unless_first_attempt(status, ctx.config.attempt, quarantine.is_some());
        let mut properties = vec![("tier".to_owned(), tier.as_str().to_owned())];
        if ctx.config.attempt > 1 {
            properties.push(("attempt".to_owned(), ctx.config.attempt.to_string()));
            let flaky = matches!(&status, CaseStatus::Failed(m) | CaseStatus::QuarantinedFailure(m) if m.starts_with(FLAKY));
            properties.push(("flaky".to_owned(), flaky.to_string()));
        }
        if let Some((kind, waited)) = hold {
            properties.push(("cluster_hold".to_owned(), kind.as_str().to_owned()));
            properties.push((
                "cluster_wait_seconds".to_owned(),
                format!("{:.1}", waited.as_secs_f64()),
            ));
        }
        properties.extend(
            bundles
                .iter()
                .map(|b| ("failure_bundle".to_owned(), b.display().to_string())),
        );
        if !marks.is_empty() {
            properties.push(("marks".to_owned(), marks.join(",")));
        }
        if let Some(q) = &quarantine {
            properties.extend(q.properties());
        }
        let result = match &status {
            CaseStatus::Passed | CaseStatus::QuarantinedFailure(_) => Ok(Completion::Completed),
            CaseStatus::Ignored(reason) => Ok(Completion::ignored_with(reason)),
            CaseStatus::Failed(message) | CaseStatus::Errored(message) => {
                Err(Failed::from(message.as_str()))
            }
        };
        if let CaseStatus::QuarantinedFailure(message) = &status {
            eprintln!(
                "\n!!!! QUARANTINED FAILURE (does not fail the build): {name} [{}]\n!!!! {}\n{message}\n",
                ctx.suite,
                quarantine.as_ref().map(Quarantine::describe).unwrap_or_default()
            );
        }
        records
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(CaseRecord {
                name,
                kind,
                duration: started.elapsed(),
                properties,
                status,
                output: None,
            });
        result
    }
}

/// How a flaky case's message starts (JUnit, the summary).
const FLAKY: &str = "flaky:";

/// A pass on a retry (nextest's attempt 2 or later: the attempts before it
/// failed) is flaky: a failure, or a quarantined failure — never hidden as a pass.
fn flaky_unless_first_attempt(status: CaseStatus, attempt: u32, quarantined: bool) -> CaseStatus {
    if attempt <= 1 || status != CaseStatus::Passed {
        return status;
    }
    let message = format!(
        "{FLAKY} passed on attempt {attempt} after failing on the attempts before it (their reports are beside this one); \
         a case that passes only on a retry fails the build — fix it, or quarantine it to keep it running without failing the build"
    );
    eprintln!("\n!!!! FLAKY: {message}\n");
    if quarantined {
        CaseStatus::QuarantinedFailure(message)
    } else {
        CaseStatus::Failed(message)
    }
}

/// The case's status, the failure bundles written for it, and how it held the
/// cluster. `(tier, exclusive)`: whether it holds the cluster alone.
fn decide(
    ctx: &Ctx,
    (tier, exclusive): (Tier, bool),
    quarantine: Option<&Quarantine>,
    timeout: Duration,
    body: BoxedBody,
    unmet: Option<&str>,
    today: time::Date,
) -> (CaseStatus, Vec<PathBuf>, Option<(HoldKind, Duration)>) {
    if let Some(reason) = unmet {
        let what = tier.requirement().unwrap_or("requirement");
        let status = if ctx.config.require_cluster {
            CaseStatus::Failed(format!(
                "no usable {what} and --require-cluster is set: {reason}"
            ))
        } else {
            CaseStatus::Ignored(format!("needs a {what}: {reason}"))
        };
        return (status, Vec::new(), None);
    }
    if let Some(q) = quarantine {
        if let Err(expired) = q.check_expiry(today) {
            return (CaseStatus::Failed(expired), Vec::new(), None);
        }
    }
    let outcome = run_body((tier, exclusive), timeout, body, ctx.clone());
    let status = match outcome.failure() {
        None => CaseStatus::Passed,
        Some(message) if quarantine.is_some() => CaseStatus::QuarantinedFailure(message),
        Some(message) => CaseStatus::Failed(message),
    };
    (status, outcome.cleanup.bundles, outcome.hold)
}

/// How long before the body's deadline its waits end: enough to return their
/// explained error before the case's timeout cuts the body.
fn wait_margin(body_limit: Duration) -> Duration {
    (body_limit / 20).min(Duration::from_secs(5))
}

/// Time kept after the body's deadline for cleanup (bundles, namespace deletion).
fn cleanup_reserve(timeout: Duration) -> Duration {
    (timeout / 4).min(Duration::from_secs(90))
}

/// Runs a case body on its own runtime — errors, panics and timeouts all end it
/// — then cleans up what the case created. A chart_deploy case holds the
/// cluster from before its body (whose time starts after any wait for the
/// hold) to after its cleanup: alone if `exclusive`, else beside others.
fn run_body(
    (tier, exclusive): (Tier, bool),
    timeout: Duration,
    body: BoxedBody,
    ctx: Ctx,
) -> Outcome {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Outcome {
                body: BodyEnd::NotRun(format!("failed to start the case's tokio runtime: {e}")),
                cleanup: Cleanup::default(),
                hold: None,
            }
        }
    };
    let reserve = if tier == Tier::ChartDeploy {
        cleanup_reserve(timeout)
    } else {
        Duration::ZERO
    };
    let body_limit = timeout - reserve;
    // Every event of the case, its wait for the cluster, body and cleanup, joins its timeline.
    let case = ctx.case.clone();
    let span = crate::report::timeline::case_span(&case);
    let _entered = span.enter();
    tracing::debug!(?tier, ?timeout, "case started");
    let outcome = runtime.block_on(async move {
        ctx.scope
            .exclusive
            .store(exclusive, std::sync::atomic::Ordering::SeqCst);
        let hold = match tier {
            Tier::ChartDeploy if ctx.config.hold_cluster => match take_hold(&ctx, exclusive).await {
                Ok(hold) => hold,
                Err(message) => {
                    return Outcome {
                        body: BodyEnd::NotRun(message),
                        cleanup: Cleanup::default(),
                        hold: None,
                    }
                }
            },
            _ => None,
        };
        let held = hold.as_ref().map(|h| (h.kind(), h.waited()));
        *ctx.scope.hold.lock().unwrap_or_else(|p| p.into_inner()) = hold.clone();
        let body_ctx = Ctx {
            deadline: Deadline::after(body_limit),
            ..ctx
        };
        // The body runs as its own task, so a panic or a timeout ends the task but
        // not this function, which still cleans up on the same runtime.
        // Every wait of the body ends a little before the body's deadline
        // (`Deadline::current`), so its explained timeout is what the case reports.
        let waits_end = Deadline::after(body_limit.saturating_sub(wait_margin(body_limit)));
        let mut task = tokio::spawn(waits_end.scope(body(body_ctx.clone())));
        let end = match tokio::time::timeout(body_limit, &mut task).await {
            Ok(Ok(Ok(()))) => BodyEnd::Passed,
            Ok(Ok(Err(e))) => BodyEnd::Failed(format!("{e:#}")),
            Ok(Err(join)) if join.is_panic() => {
                BodyEnd::Panicked(panic_message(join.into_panic().as_ref()))
            }
            Ok(Err(join)) => BodyEnd::NotRun(format!("case task ended abnormally: {join}")),
            Err(_elapsed) => {
                task.abort();
                let _ = task.await;
                BodyEnd::TimedOut {
                    body_limit,
                    timeout,
                    reserve,
                }
            }
        };
        let failure = end.failure();
        // Filled as cleanup goes, so what it learnt survives a cleanup timeout.
        let mut cleanup = Cleanup {
            redactor: if body_ctx.config.redact {
                Redactor::default()
            } else {
                Redactor::disabled()
            },
            ..Cleanup::default()
        };
        let finished = tokio::time::timeout(
            reserve.max(Duration::from_secs(5)),
            clean_up(&body_ctx, failure.as_ref(), &mut cleanup),
        )
        .await;
        if finished.is_err() {
            cleanup.problems.push(format!(
                "cleanup did not finish within {reserve:?}; the janitor of a later run deletes what is left"
            ));
        }
        // The body's task is over (a node fault it injected undone as it ended),
        // and so is the cleanup: the next case may have the cluster.
        body_ctx.scope.hold.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(hold) = hold {
            if let Err(e) = hold.release().await {
                cleanup.problems.push(crate::error_chain(&e));
            }
        }
        Outcome {
            body: end,
            cleanup,
            hold: held,
        }
    });
    crate::report::timeline::forget(&case);
    outcome
}

/// The case's hold on the cluster: exclusive for a case that changes nodes,
/// shared for the others — waiting at most `HARNESS_CLUSTER_WAIT`. A cluster
/// that refuses the harness Leases gets no shared holds (said once), and its
/// exclusive cases do not run.
async fn take_hold(ctx: &Ctx, exclusive: bool) -> Result<Option<Arc<ClusterHold>>, String> {
    let client = ctx.client().await.map_err(|e| crate::error_chain(&e))?;
    let holder = Holder::of(&ctx.config, &ctx.case);
    let deadline = Deadline::after(ctx.config.cluster_wait);
    let taken = match exclusive {
        true => ClusterHold::exclusive(&client, &holder, deadline).await,
        false => ClusterHold::shared(&client, &holder, deadline).await,
    };
    match taken {
        Ok(hold) => {
            let kind = hold.kind().as_str();
            match hold.waited_for() {
                Some(whom) => {
                    tracing::info!(waited = ?hold.waited(), whom, "holding the cluster ({kind})");
                    if exclusive {
                        eprintln!(
                            "{}: holds the cluster alone after waiting {:.1} s (last for {whom})",
                            ctx.case,
                            hold.waited().as_secs_f64()
                        );
                    }
                }
                None => tracing::debug!(waited = ?hold.waited(), "holding the cluster ({kind})"),
            }
            Ok(Some(Arc::new(hold)))
        }
        Err(e) if !exclusive && sharing::is_forbidden(&e) => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                eprintln!(
                    "warning: the cluster refuses the harness's Leases ({}); cases run without holds, so a case that changes nodes cannot run alone",
                    crate::error_chain(&e)
                )
            });
            Ok(None)
        }
        Err(e) => Err(format!(
            "the case did not get its turn on the cluster: {}",
            crate::error_chain(&e)
        )),
    }
}

/// After a case: for each namespace it created, write a failure bundle if it
/// failed (learning the namespace's secrets, so the failure message can be
/// redacted too), then keep or delete the namespace.
async fn clean_up(ctx: &Ctx, failure: Option<&String>, cleanup: &mut Cleanup) {
    let namespaces = std::mem::take(
        &mut *ctx
            .scope
            .namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    let keep = match ctx.config.keep_namespace {
        KeepNamespace::Always => true,
        KeepNamespace::OnFailure => failure.is_some(),
        KeepNamespace::Never => false,
    };
    for ns in namespaces {
        let mut bundle_dir = None;
        if let Some(failure) = failure {
            let dir = ctx.artifacts_dir().join(ns.name());
            tracing::info!(namespace = ns.name(), "writing the failure bundle");
            match crate::report::diagnostics::write_bundle(
                ctx.helm().await,
                ns.client(),
                ns.name(),
                failure,
                &dir,
                ctx.config.kube_context.as_deref(),
                &mut cleanup.redactor,
            )
            .await
            {
                Ok(summary) => {
                    cleanup.bundles.push(summary);
                    bundle_dir = Some(dir);
                }
                Err(e) => cleanup.problems.push(format!(
                    "failed to write the failure bundle to {}: {e}",
                    dir.display()
                )),
            }
        }
        if keep {
            match ns.keep(KEEP_FOR).await {
                Ok(how) => eprintln!("{}: {how}", ctx.case),
                Err(e) => cleanup.problems.push(crate::error_chain(&e)),
            }
        } else {
            match ns.delete(NAMESPACE_DELETE).await {
                Ok(deletion) => {
                    if let Some(summary) = deletion.summary(ns.name()) {
                        eprintln!("{}: {}", ctx.case, cleanup.redactor.text(&summary));
                    }
                }
                Err(e) => cleanup.problems.push(crate::error_chain(&e)),
            }
        }
        // What the harness did, its cleanup included, redacted like the bundle.
        if let Some(dir) = bundle_dir {
            let timeline = crate::report::timeline::lines(&ctx.case).join("\n");
            let written = std::fs::write(
                dir.join("timeline.txt"),
                cleanup.redactor.text(&timeline) + "\n",
            );
            if let Err(e) = written {
                cleanup.problems.push(format!(
                    "failed to write the timeline to {}: {e}",
                    dir.display()
                ));
            }
        }
    }
    release_claims(ctx, keep, cleanup).await;
}

/// After the namespaces: the cluster-scoped objects the case's releases
/// claimed, deleted and their claims given up — or kept with the namespaces.
async fn release_claims(ctx: &Ctx, keep: bool, cleanup: &mut Cleanup) {
    let claims = std::mem::take(&mut *ctx.scope.claims.lock().unwrap_or_else(|p| p.into_inner()));
    for claim in claims {
        if keep {
            claim.keep(KEEP_FOR).await;
        } else if let Err(e) = claim.release().await {
            cleanup.problems.push(crate::error_chain(&e));
        }
    }
}

/// The longest a namespace deletion is awaited after a case.
const NAMESPACE_DELETE: Duration = Duration::from_secs(120);

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic payload".to_owned())
}

pub(crate) fn report_quarantine(records: &[CaseRecord]) {
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
