//! Waiting: [`wait_until`] for any async check, and watch-based conditions for the
//! common cases (pod ready, workload rolled out, job complete, endpoints ready, PVC
//! bound, namespace gone). Every wait has a timeout that is honoured exactly, and a
//! timeout explains itself: what was awaited, for how long, the last state seen,
//! and the root cause found by walking workload -> pods -> containers -> events.
//! A rollout ends sooner when one of its pods is stuck in a state it cannot leave
//! by itself ([`status::stuck`]), with the same explanation.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Endpoints, Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::de::DeserializeOwned;

use crate::cluster::status::{
    self, daemonset_state, deployment_state, is_ready, job_state, statefulset_state, FailFast,
    State, Stuck, WorkloadKind,
};
use crate::cluster::{explain, pod_security};

/// The one point in time by which a case must be done. The runner sets it for the
/// case body's task, and every wait of this module run on that task ends by it
/// whatever timeout it was given ([`Deadline::current`]), so no wait eats the
/// time kept for cleanup. (Tasks a case spawns itself do not inherit it; they can
/// use `deadline.cap(timeout)`.)
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

tokio::task_local! {
    static CASE_DEADLINE: Deadline;
}

/// `timeout`, capped by the current case's deadline when there is one.
fn within_case(timeout: Duration) -> Duration {
    Deadline::current().map_or(timeout, |d| d.cap(timeout))
}

impl Deadline {
    /// The deadline `after` from now.
    pub fn after(after: Duration) -> Self {
        Self {
            at: Instant::now() + after,
        }
    }

    /// The instant itself.
    pub fn at(&self) -> Instant {
        self.at
    }

    /// Time left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// `timeout`, shortened so it ends no later than the deadline.
    pub fn cap(&self, timeout: Duration) -> Duration {
        timeout.min(self.remaining())
    }

    /// The deadline of the case whose body runs on this task, if any.
    pub fn current() -> Option<Deadline> {
        CASE_DEADLINE.try_with(|d| *d).ok()
    }

    /// Runs `body` with this deadline as [`Deadline::current`].
    pub async fn scope<F: Future>(self, body: F) -> F::Output {
        CASE_DEADLINE.scope(self, body).await
    }
}

/// Why a wait ended without its condition.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The condition did not hold in time.
    #[error("timed out after {} waiting for {what}; last state: {last}{}", seconds(*.waited), cause.as_ref().map(|c| format!("; cause: {c}")).unwrap_or_default())]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        waited: Duration,
        /// The last state seen.
        last: String,
        /// The root cause found by walking the object's dependents, if any.
        cause: Option<String>,
    },
    /// The condition can no longer become true (e.g. a Job that failed).
    #[error("{what} failed: {reason}")]
    Failed {
        /// What was awaited.
        what: String,
        /// Why it cannot happen, explained.
        reason: String,
    },
    /// A pod it needs is stuck in a state it cannot leave by itself, so the
    /// wait ended before its deadline ([`status::stuck`]).
    #[error("{0}")]
    Stuck(Box<StuckPod>),
}

/// A wait that ended at a stuck pod ([`WaitError::Stuck`]).
#[derive(Debug, thiserror::Error)]
#[error("gave up waiting for {what} after {}: pod {pod} is stuck in {state}: {detail}; {explained}", seconds(*.waited))]
pub struct StuckPod {
    /// What was awaited.
    pub what: String,
    /// How long it had waited.
    pub waited: Duration,
    /// The stuck pod.
    pub pod: String,
    /// Its state, as Kubernetes names it (`ImagePullBackOff`, `CrashLoopBackOff`, …).
    pub state: String,
    /// What is stuck and why.
    pub detail: String,
    /// The pod explained as a timeout would: containers, last log lines, events.
    pub explained: String,
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// How [`wait_until`] spaces its checks: from `first`, doubling, capped at `max`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// The pause after the first failed check.
    pub first: Duration,
    /// The longest pause between checks.
    pub max: Duration,
}

impl Default for Backoff {
    /// 50 ms doubling up to 1 s: quick for fast conditions, cheap for slow ones.
    fn default() -> Self {
        Self {
            first: Duration::from_millis(50),
            max: Duration::from_secs(1),
        }
    }
}

/// Calls `check` until it returns `Ok`, with [`Backoff::default`] between calls,
/// for at most `timeout`. `check` returns `Err(state)` while the condition does not
/// hold; the last state is shown if time runs out. A check that is still running
/// at the deadline is cancelled: the deadline is never overshot.
///
/// # Errors
/// [`WaitError::Timeout`] with the last state.
pub async fn wait_until<T, E, F, Fut>(
    what: impl Into<String>,
    timeout: Duration,
    check: F,
) -> Result<T, WaitError>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    wait_until_with(what, timeout, Backoff::default(), check).await
}

/// [`wait_until`] with an explicit [`Backoff`].
///
/// # Errors
/// [`WaitError::Timeout`] with the last state.
pub async fn wait_until_with<T, E, F, Fut>(
    what: impl Into<String>,
    timeout: Duration,
    backoff: Backoff,
    mut check: F,
) -> Result<T, WaitError>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let what = what.into();
    let started = tokio::time::Instant::now();
    let deadline = started + within_case(timeout);
    let mut pause = backoff.first;
    let mut last = "not checked yet".to_owned();
    let mut checks = 0u32;
    loop {
        checks += 1;
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(Ok(value)) => {
                tracing::debug!(
                    what,
                    checks,
                    seconds = started.elapsed().as_secs_f64(),
                    "wait ended"
                );
                return Ok(value);
            }
            Ok(Err(state)) => {
                let state = state.to_string();
                if state != last {
                    tracing::debug!(what, state, "waiting");
                }
                last = state;
            }
            Err(_) => last = format!("{last} (the last check was still running at the deadline)"),
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            tracing::warn!(what, last, "wait timed out");
            return Err(WaitError::Timeout {
                what,
                waited: now - started,
                last,
                cause: None,
            });
        }
        tokio::time::sleep_until((now + pause).min(deadline)).await;
        pause = (pause * 2).min(backoff.max);
    }
}

/// Watches object `name` through `api` until `state` says it is done (`Ok`), for at
/// most `timeout`; `state` gets `None` while the object does not exist. On timeout
/// the error carries the last state and what `explain` finds.
///
/// # Errors
/// [`WaitError::Timeout`]; [`WaitError::Failed`] when `state` says it never will be.
pub async fn watch_until<K, C, X, XF>(
    api: &kube::Api<K>,
    name: &str,
    what: String,
    timeout: Duration,
    state: C,
    explain: X,
) -> Result<Option<K>, WaitError>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    C: Fn(Option<&K>) -> State,
    X: FnOnce() -> XF,
    XF: Future<Output = String>,
{
    let started = Instant::now();
    let mut last = "no answer from the API server yet".to_owned();
    let watch = async {
        let events = kube::runtime::watcher::watch_object(api.clone(), name);
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            let object = match event {
                Ok(object) => object,
                Err(e) => {
                    // The watcher recovers by itself; remember why it is quiet.
                    last = format!("watch error: {e}");
                    continue;
                }
            };
            match state(object.as_ref()) {
                State::Done => {
                    tracing::debug!(
                        what,
                        seconds = started.elapsed().as_secs_f64(),
                        "watch ended"
                    );
                    return Ok(object);
                }
                State::Pending(s) => {
                    if s != last {
                        tracing::debug!(what, state = s, "watching");
                    }
                    last = s;
                }
                State::Failed(reason) => {
                    tracing::warn!(what, reason, "watch saw a failure");
                    return Err(WaitError::Failed {
                        what: what.clone(),
                        reason,
                    });
                }
            }
        }
        // The stream never ends; if it did, treat it as a wait that timed out.
        std::future::pending().await
    };
    match tokio::time::timeout(within_case(timeout), watch).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(what, last, "watch timed out");
            Err(WaitError::Timeout {
                waited: started.elapsed(),
                cause: Some(explain().await).filter(|c| !c.is_empty()),
                what,
                last,
            })
        }
    }
}

/// Waits until pod `name` is Ready.
///
/// # Errors
/// A timeout explained by the pod's container states, last exits and events.
pub async fn pod_ready(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<Pod, WaitError> {
    let pods: &kube::Api<Pod> = &kube::Api::namespaced(client.clone(), namespace);
    let what = format!("pod {name} to be ready");
    let pod = watch_until(
        pods,
        name,
        what.clone(),
        timeout,
        |pod| match pod {
            None => State::Pending("does not exist".into()),
            Some(p) if is_ready(p) => State::Done,
            Some(p) => State::Pending(explain::describe_pod(p)),
        },
        || explain::explain_pod(pods, name),
    )
    .await?;
    pod.ok_or(WaitError::Failed {
        what,
        reason: "the pod disappeared".into(),
    })
}

/// Waits until workload `kind/name` in `namespace` has rolled out: every replica
/// updated and available (Jobs: complete).
///
/// # Errors
/// A timeout explained by walking the workload's pods; a failed Job.
pub async fn rolled_out(
    client: &kube::Client,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    rolled_out_failing_fast(client, namespace, kind, name, timeout, FailFast::default()).await
}

/// [`rolled_out`], ending as soon as one of the workload's pods is stuck by
/// `policy` (an image that cannot be pulled, a crash loop past its restarts, …).
///
/// # Errors
/// [`WaitError::Stuck`] with the pod explained; otherwise as [`rolled_out`].
pub async fn rolled_out_failing_fast(
    client: &kube::Client,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
    timeout: Duration,
    policy: FailFast,
) -> Result<(), WaitError> {
    let started = Instant::now();
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), namespace);
    let stuck = async {
        match pod_selector(client, namespace, kind, name).await {
            Some(selector) => first_stuck_pod(&pods, &selector, policy).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = roll_out(client, namespace, kind, name, timeout) => result,
        (pod, found) = stuck => {
            let what = format!("{} {name} to roll out", kind.as_str());
            Err(stuck_error(&pods, what, started.elapsed(), pod, found).await)
        }
        message = pod_security::first_refused_pod(client, namespace, kind, name) => {
            Err(WaitError::Failed {
                what: format!("{} {name} to roll out", kind.as_str()),
                reason: format!(
                    "the API server refuses its pods: {message} (hint: the namespace enforces this Pod Security level; make the pods comply, or ask for another level: HARNESS_POD_SECURITY or Ctx::create_namespace_with)"
                ),
            })
        }
    }
}

/// [`WaitError::Stuck`] for pod `pod` found stuck in `found` while awaiting
/// `what`, the pod explained as a timeout would.
pub async fn stuck_error(
    pods: &kube::Api<Pod>,
    what: String,
    waited: Duration,
    pod: String,
    found: Stuck,
) -> WaitError {
    tracing::warn!(what, pod, state = found.reason, "a pod is stuck");
    WaitError::Stuck(Box::new(StuckPod {
        what,
        waited,
        explained: explain::explain_pod(pods, &pod).await,
        pod,
        state: found.reason,
        detail: found.detail,
    }))
}

/// The label selector of the pods workload `kind/name` makes, if it can be read
/// (Jobs: the `job-name` label Kubernetes gives their pods).
async fn pod_selector(
    client: &kube::Client,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
) -> Option<String> {
    use crate::cluster::versions::spec;
    let labels = match kind {
        WorkloadKind::Deployment => {
            let api = kube::Api::<Deployment>::namespaced(client.clone(), namespace);
            let object = api.get_opt(name).await.ok()??;
            spec(&object.spec)?.selector.match_labels.clone()
        }
        WorkloadKind::StatefulSet => {
            let api = kube::Api::<StatefulSet>::namespaced(client.clone(), namespace);
            let object = api.get_opt(name).await.ok()??;
            spec(&object.spec)?.selector.match_labels.clone()
        }
        WorkloadKind::DaemonSet => {
            let api = kube::Api::<DaemonSet>::namespaced(client.clone(), namespace);
            let object = api.get_opt(name).await.ok()??;
            spec(&object.spec)?.selector.match_labels.clone()
        }
        WorkloadKind::Job => return Some(format!("job-name={name}")),
    }?;
    (!labels.is_empty()).then(|| explain::selector_string(&labels))
}

/// Watches the pods `selector` selects until one is stuck ([`status::stuck`]);
/// a state that settles must last `policy.settle` on the same pod. Returns the
/// pod's name and state; never ends while none is stuck.
pub async fn first_stuck_pod(
    pods: &kube::Api<Pod>,
    selector: &str,
    policy: FailFast,
) -> (String, Stuck) {
    use kube::runtime::watcher::{self, Event};
    use kube::runtime::WatchStreamExt as _;
    let events = watcher::watcher(pods.clone(), watcher::Config::default().labels(selector))
        .default_backoff();
    futures::pin_mut!(events);
    let mut latest = std::collections::BTreeMap::<String, Pod>::new();
    let mut since = std::collections::BTreeMap::<(String, String), Instant>::new();
    // Settling states are judged again each second: nothing may change meanwhile.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Apply(pod) | Event::InitApply(pod))) => {
                    if let Some(name) = pod.metadata.name.clone() {
                        latest.insert(name, pod);
                    }
                }
                Some(Ok(Event::Delete(pod))) => {
                    if let Some(name) = &pod.metadata.name {
                        latest.remove(name);
                    }
                }
                // The watcher recovers from errors by itself.
                Some(Ok(Event::Init | Event::InitDone) | Err(_)) => {}
                None => std::future::pending().await,
            },
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        for (name, pod) in &latest {
            let found = match status::stuck(pod, &policy) {
                None if policy.enabled => stuck_claim_of(pods, pod).await,
                found => found,
            };
            match found {
                Some(found) if !found.settles => return (name.clone(), found),
                Some(found) => {
                    let first = *since
                        .entry((name.clone(), found.reason.clone()))
                        .or_insert(now);
                    if now - first >= policy.settle {
                        return (name.clone(), found);
                    }
                }
                None => since.retain(|(pod, _), _| pod != name),
            }
        }
    }
}

/// A claim `pod` waits for that cannot be bound ([`status::claim_stuck`]): a
/// StorageClass that does not exist, or none named and no default.
async fn stuck_claim_of(pods: &kube::Api<Pod>, pod: &Pod) -> Option<Stuck> {
    let names = status::unbound_claims_of(pod);
    if names.is_empty() {
        return None;
    }
    let client = pods.clone().into_client();
    let claims: kube::Api<PersistentVolumeClaim> =
        kube::Api::namespaced(client.clone(), pod.metadata.namespace.as_deref()?);
    let classes = storage_classes(&client).await?;
    for name in names {
        // A claim not made yet (a StatefulSet's) is not judged.
        let Ok(Some(claim)) = claims.get_opt(&name).await else {
            continue;
        };
        if let Some(found) = status::claim_stuck(&claim, &classes) {
            return Some(found);
        }
    }
    None
}

/// The cluster's StorageClasses, if they can be listed.
async fn storage_classes(client: &kube::Client) -> Option<Vec<StorageClass>> {
    let api = kube::Api::<StorageClass>::all(client.clone());
    Some(api.list(&Default::default()).await.ok()?.items)
}

/// [`rolled_out`] without the stuck-pod watch.
async fn roll_out(
    client: &kube::Client,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let what = format!("{} {name} to roll out", kind.as_str());
    let explain = || explain::explain_workload(client, namespace, kind, name);
    match kind {
        WorkloadKind::Deployment => {
            let api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), namespace);
            watch_until(&api, name, what, timeout, deployment_state, explain).await?;
        }
        WorkloadKind::StatefulSet => {
            let api: kube::Api<StatefulSet> = kube::Api::namespaced(client.clone(), namespace);
            watch_until(&api, name, what, timeout, statefulset_state, explain).await?;
        }
        WorkloadKind::DaemonSet => {
            let api: kube::Api<DaemonSet> = kube::Api::namespaced(client.clone(), namespace);
            watch_until(&api, name, what, timeout, daemonset_state, explain).await?;
        }
        WorkloadKind::Job => {
            job_complete(client, namespace, name, timeout).await?;
        }
    }
    Ok(())
}

/// The rollout state of workload `kind/name` right now (one read, no waiting):
/// the same judgement [`rolled_out`] waits for.
pub async fn workload_state(
    client: &kube::Client,
    namespace: &str,
    kind: WorkloadKind,
    name: &str,
) -> State {
    async fn judge<K>(
        client: &kube::Client,
        namespace: &str,
        name: &str,
        state: fn(Option<&K>) -> State,
    ) -> State
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        match kube::Api::<K>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await
        {
            Ok(object) => state(object.as_ref()),
            Err(e) => State::Pending(format!("cannot read it: {e}")),
        }
    }
    match kind {
        WorkloadKind::Deployment => judge(client, namespace, name, deployment_state).await,
        WorkloadKind::StatefulSet => judge(client, namespace, name, statefulset_state).await,
        WorkloadKind::DaemonSet => judge(client, namespace, name, daemonset_state).await,
        WorkloadKind::Job => judge(client, namespace, name, job_state).await,
    }
}

/// Waits until Job `name` has completed.
///
/// # Errors
/// A timeout explained by the Job's pods; [`WaitError::Failed`] as soon as the Job fails.
pub async fn job_complete(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let jobs: kube::Api<Job> = kube::Api::namespaced(client.clone(), namespace);
    let result = watch_until(
        &jobs,
        name,
        format!("Job {name} to complete"),
        timeout,
        job_state,
        || explain::explain_workload(client, namespace, WorkloadKind::Job, name),
    )
    .await;
    match result {
        Err(WaitError::Failed { what, reason }) => {
            let pods = explain::explain_workload(client, namespace, WorkloadKind::Job, name).await;
            Err(WaitError::Failed {
                what,
                reason: format!("{reason}; {pods}"),
            })
        }
        other => other.map(|_| ()),
    }
}

/// Waits until Service `service`'s Endpoints list at least one ready address.
///
/// # Errors
/// A timeout explained by the pods the service selects.
pub async fn endpoints_ready(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    timeout: Duration,
) -> Result<Endpoints, WaitError> {
    let api: kube::Api<Endpoints> = kube::Api::namespaced(client.clone(), namespace);
    let what = format!("Service {service} to have a ready endpoint");
    let endpoints = watch_until(
        &api,
        service,
        what.clone(),
        timeout,
        |e| {
            let ready = e
                .iter()
                .flat_map(|e| e.subsets.iter().flatten())
                .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
            let not_ready = e
                .iter()
                .flat_map(|e| e.subsets.iter().flatten())
                .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
            match (e, ready) {
                (None, _) => State::Pending("no Endpoints object".into()),
                (Some(_), 0) => State::Pending(format!("0 ready addresses, {not_ready} not ready")),
                _ => State::Done,
            }
        },
        || explain::explain_service(client, namespace, service),
    )
    .await?;
    endpoints.ok_or(WaitError::Failed {
        what,
        reason: "the Endpoints object disappeared".into(),
    })
}

/// Waits until PersistentVolumeClaim `name` is Bound, or no longer than the
/// default [`FailFast::settle`] once it cannot be ([`status::claim_stuck`]).
///
/// # Errors
/// A timeout explained by the claim's events (provisioning failures, a storage
/// class that binds only when a pod uses the claim); [`WaitError::Failed`] for
/// a claim that cannot be bound.
pub async fn pvc_bound(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<PersistentVolumeClaim, WaitError> {
    let claims: kube::Api<PersistentVolumeClaim> = kube::Api::namespaced(client.clone(), namespace);
    let what = format!("PersistentVolumeClaim {name} to be bound");
    let bound = pvc_bound_or_timeout(client, &claims, namespace, name, &what, timeout);
    tokio::select! {
        result = bound => result,
        found = first_stuck_claim(client, &claims, name, FailFast::default()) => {
            let events = explain::events_of(client, namespace, name, false).await;
            Err(WaitError::Failed {
                what,
                reason: format!("{}: {}; {events}", found.reason, found.detail),
            })
        }
    }
}

/// Checks claim `name` each second until it has been stuck for `policy.settle`.
async fn first_stuck_claim(
    client: &kube::Client,
    claims: &kube::Api<PersistentVolumeClaim>,
    name: &str,
    policy: FailFast,
) -> Stuck {
    let mut since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let found = match (claims.get_opt(name).await, storage_classes(client).await) {
            (Ok(Some(claim)), Some(classes)) => status::claim_stuck(&claim, &classes),
            _ => None,
        };
        match found {
            Some(found) if since.get_or_insert_with(Instant::now).elapsed() >= policy.settle => {
                return found
            }
            Some(_) => {}
            None => since = None,
        }
    }
}

/// [`pvc_bound`] without the stuck-claim check.
async fn pvc_bound_or_timeout(
    client: &kube::Client,
    claims: &kube::Api<PersistentVolumeClaim>,
    namespace: &str,
    name: &str,
    what: &str,
    timeout: Duration,
) -> Result<PersistentVolumeClaim, WaitError> {
    let what = what.to_string();
    let claim = watch_until(
        claims,
        name,
        what.clone(),
        timeout,
        |c| match c
            .and_then(|c| c.status.as_ref())
            .and_then(|s| s.phase.as_deref())
        {
            Some("Bound") => State::Done,
            Some("Lost") => State::Failed("the claim lost its volume".into()),
            Some(phase) => State::Pending(format!("phase {phase}")),
            None if c.is_none() => State::Pending("does not exist".into()),
            None => State::Pending("no phase yet".into()),
        },
        || explain::events_of(client, namespace, name, false),
    )
    .await?;
    claim.ok_or(WaitError::Failed {
        what,
        reason: "the claim disappeared".into(),
    })
}

/// Waits until namespace `name` no longer exists.
///
/// # Errors
/// A timeout with the namespace's phase and conditions (what content remains).
pub async fn namespace_gone(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> Result<(), WaitError> {
    let api = kube::Api::<Namespace>::all(client.clone());
    watch_until(
        &api,
        name,
        format!("namespace {name} to be gone"),
        timeout,
        |ns| match ns {
            None => State::Done,
            Some(ns) => State::Pending(explain::describe_namespace(ns)),
        },
        || async { String::new() },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test(start_paused = true)]
    async fn returns_the_value_once_the_check_passes() {
        let mut calls = 0;
        let value = wait_until("three calls", Duration::from_secs(10), || {
            calls += 1;
            let n = calls;
            async move {
                if n >= 3 {
                    Ok(n)
                } else {
                    Err(format!("call {n}"))
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(value, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_exactly_at_the_deadline_with_the_last_state() {
        let started = tokio::time::Instant::now();
        let err = wait_until("never", Duration::from_millis(2500), || async {
            Err::<(), _>("still red")
        })
        .await
        .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_millis(2500));
        let text = err.to_string();
        assert!(
            text.starts_with("timed out after 2.5 s waiting for never"),
            "{text}"
        );
        assert!(text.contains("last state: still red"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_check_is_cut_at_the_deadline() {
        let started = tokio::time::Instant::now();
        let err = wait_until("hang", Duration::from_secs(3), || {
            std::future::pending::<Result<(), String>>()
        })
        .await
        .unwrap_err();
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert!(
            err.to_string().contains("still running at the deadline"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_and_is_capped() {
        let times = Arc::new(Mutex::new(Vec::new()));
        let started = tokio::time::Instant::now();
        let backoff = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_millis(400),
        };
        let _ = wait_until_with("capped", Duration::from_millis(1500), backoff, || {
            times.lock().unwrap().push(started.elapsed().as_millis());
            async { Err::<(), _>("no") }
        })
        .await;
        // Pauses 100, 200, 400, 400, 400 ms; the last is cut to the deadline.
        assert_eq!(*times.lock().unwrap(), [0, 100, 300, 700, 1100, 1500]);
    }

    #[test]
    fn deadline_caps_timeouts() {
        let deadline = Deadline::after(Duration::from_secs(10));
        assert!(deadline.cap(Duration::from_secs(60)) <= Duration::from_secs(10));
        assert_eq!(deadline.cap(Duration::from_secs(1)), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn waits_inside_a_case_end_by_its_deadline_whatever_their_timeout() {
        let started = std::time::Instant::now();
        let never = || async { Err::<(), _>("still red") };
        let err = Deadline::after(Duration::from_millis(300))
            .scope(wait_until("never", Duration::from_secs(30), never))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{err}");
        assert!(err.to_string().contains("last state: still red"), "{err}");
        assert!(
            Deadline::current().is_none(),
            "the deadline is the case's only"
        );
    }
}
