//! Ephemeral test namespaces: created per case, labelled with run, job and case,
//! kept alive by a renewed expiry, deleted and awaited at the end; and the
//! janitor that reaps the namespaces of killed runs.
//!
//! Deletion does the namespace controller's work itself: the controller waits a
//! fixed 5 s before it starts on a deleted namespace (for HA API servers), which
//! would dominate every case's teardown. The harness marks the namespace
//! terminating (no new content can be created), deletes every namespaced object
//! type it lists (pods without grace period), waits until every list is empty,
//! and only then removes the namespace's `kubernetes` finalizer. Content still
//! there after a short while is named with what holds it ([`holds`]); in the
//! harness's own test namespaces the finalizers of what was asked to go are
//! removed (their controller is often a pod of the namespace, deleted first),
//! elsewhere the rest is left to the namespace controller, awaited as usual.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Pod};
use kube::api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::{verbs, ApiResource, Scope};

use crate::cluster::holds::{self, Held};
use crate::cluster::pod_security::PodSecurity;
use crate::cluster::wait::WaitError;
use crate::cluster::{api_error, labels, ClusterError};
use crate::config::RunConfig;

/// How long the harness waits for a namespace's content to disappear before it
/// says what holds it (and releases it, or leaves it to the namespace controller).
const SWEEP_BUDGET: Duration = Duration::from_secs(20);

/// How long content whose finalizers were removed gets to disappear.
const RELEASED_BUDGET: Duration = Duration::from_secs(10);

/// What a namespace deletion found holding it after [`SWEEP_BUDGET`], and what
/// it did about it; empty when the content went by itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletion {
    /// The objects left, and what kept them.
    pub held: Vec<Held>,
    /// Those whose finalizers the harness removed (its own test namespaces only).
    pub released: Vec<String>,
    /// Those it tried to release and could not, with why.
    pub not_released: Vec<String>,
}

impl Deletion {
    /// In words, if anything held the deletion up.
    pub fn summary(&self, namespace: &str) -> Option<String> {
        if self.held.is_empty() {
            return None;
        }
        let mut text = format!(
            "namespace {namespace} was not empty {} s after its deletion: {}",
            SWEEP_BUDGET.as_secs(),
            holds::describe(&self.held)
        );
        if !self.released.is_empty() {
            text.push_str(&format!(
                "; the harness removed the finalizers of: {}",
                self.released.join(", ")
            ));
        }
        if !self.not_released.is_empty() {
            text.push_str(&format!(
                "; could not release: {}",
                self.not_released.join(", ")
            ));
        }
        Some(text)
    }
}

/// The `expires-at` annotation's value `lease` from now.
pub(crate) fn expiry_from_now(lease: Duration) -> String {
    let at = time::OffsetDateTime::now_utc() + lease;
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// An ephemeral namespace for one case, labelled with the run, job and case.
/// Delete it with [`TestNamespace::delete`], which waits until it is gone.
pub struct TestNamespace {
    client: kube::Client,
    name: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish()
    }
}

impl TestNamespace {
    /// Creates a namespace named by [`RunConfig::namespace_name`] for `case`,
    /// enforcing the run's Pod Security level, and waits until pods can be
    /// created in it.
    ///
    /// # Errors
    /// The API server refuses the namespace, or it does not become usable in 30 s.
    pub async fn create(
        client: &kube::Client,
        config: &RunConfig,
        case: &str,
    ) -> Result<Self, ClusterError> {
        Self::create_with(client, config, case, config.pod_security).await
    }

    /// [`TestNamespace::create`] enforcing Pod Security level `level`.
    ///
    /// # Errors
    /// As [`TestNamespace::create`].
    pub async fn create_with(
        client: &kube::Client,
        config: &RunConfig,
        case: &str,
        level: PodSecurity,
    ) -> Result<Self, ClusterError> {
        let name = config.namespace_name();
        let mut label_values = vec![
            (labels::MANAGED_BY, labels::MANAGER.to_owned()),
            (labels::RUN_ID, config.run_id.clone()),
            (labels::CASE, label_value(case)),
        ];
        label_values.extend(level.labels());
        if let Some(job) = &config.ci_job_id {
            label_values.push((labels::JOB_ID, label_value(job)));
        }
        let lease = config.namespace_lease;
        let namespace = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    label_values
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                ),
                annotations: Some([(labels::EXPIRES_AT.to_owned(), expiry_from_now(lease))].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        kube::Api::<Namespace>::all(client.clone())
            .create(&Default::default(), &namespace)
            .await
            .map_err(api_error(format!("create namespace {name}")))?;
        // While this run lives, push the expiry forward; a killed run stops renewing
        // and the janitor of a later run reaps the namespace.
        let (renew_client, renew_name) = (client.clone(), name.clone());
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 5).await;
                let _ = set_expiry(&renew_client, &renew_name, lease).await;
            }
        });
        let ns = Self {
            client: client.clone(),
            name,
            renewal,
        };
        ns.wait_usable(Duration::from_secs(30)).await?;
        Ok(ns)
    }

    /// Waits until pods can be created: the `default` ServiceAccount exists and,
    /// on clusters before 1.24 (token Secrets), has its token.
    async fn wait_usable(&self, timeout: Duration) -> Result<(), ClusterError> {
        use k8s_openapi::api::core::v1::ServiceAccount;
        let version = self
            .client
            .apiserver_version()
            .await
            .map_err(api_error("read the server version"))?;
        let minor: u32 = version
            .minor
            .trim_end_matches('+')
            .parse()
            .unwrap_or(u32::MAX);
        let needs_token = version.major == "1" && minor < 24;
        let accounts: kube::Api<ServiceAccount> = self.api();
        let usable = move |sa: Option<&ServiceAccount>| {
            sa.is_some_and(|sa| !needs_token || sa.secrets.as_ref().is_some_and(|s| !s.is_empty()))
        };
        let waited = tokio::time::timeout(
            timeout,
            kube::runtime::wait::await_condition(accounts, "default", usable),
        )
        .await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ClusterError::Wait(WaitError::Timeout {
                what: format!("namespace {} to be usable", self.name),
                waited: timeout,
                last: e.to_string(),
                cause: None,
            })),
            Err(_) => Err(ClusterError::Wait(WaitError::Timeout {
                what: format!("the default ServiceAccount of namespace {}", self.name),
                waited: timeout,
                last: "no token yet (is kube-controller-manager running?)".into(),
                cause: None,
            })),
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client the namespace was created with.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// A namespaced API in this namespace.
    pub fn api<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        kube::Api::namespaced(self.client.clone(), &self.name)
    }

    /// Creates `pod` here and waits (by watch) until it is ready, at most
    /// `timeout`; returns its name.
    ///
    /// # Errors
    /// The pod is refused, or not ready in time (the error explains why).
    pub async fn start_pod(&self, pod: &Pod, timeout: Duration) -> anyhow::Result<String> {
        let created = self.api::<Pod>().create(&Default::default(), pod).await?;
        let name = created.metadata.name.unwrap_or_default();
        crate::cluster::wait::pod_ready(&self.client, &self.name, &name, timeout).await?;
        Ok(name)
    }

    /// Sets the replicas of workload `name` (a Deployment or StatefulSet) through
    /// its scale subresource, as `kubectl scale` does.
    ///
    /// # Errors
    /// The API server refuses (e.g. no such workload).
    pub async fn scale<K>(&self, name: &str, replicas: i32) -> Result<(), ClusterError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        self.api::<K>()
            .patch_scale(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}})),
            )
            .await
            .map_err(api_error(format!("scale {name} to {replicas}")))?;
        Ok(())
    }

    /// Keeps the namespace for inspection: stops renewing it and sets its expiry
    /// `keep_for` ahead, so a later run's janitor still removes it eventually.
    /// Returns the commands that inspect it.
    ///
    /// # Errors
    /// The expiry cannot be updated.
    pub async fn keep(&self, keep_for: Duration) -> Result<String, ClusterError> {
        self.renewal.abort();
        set_expiry(&self.client, &self.name, keep_for).await?;
        let ns = &self.name;
        Ok(format!(
            "kept namespace {ns} for {} min (then the janitor deletes it); inspect it with:\n  \
             kubectl get all,events -n {ns}\n  \
             kubectl describe pods -n {ns}\n  \
             helm list -n {ns}\n  \
             kubectl delete namespace {ns}   # when done",
            keep_for.as_secs() / 60
        ))
    }

    /// Deletes the namespace and everything in it, and waits until it is gone
    /// together with the persistent volumes its claims were bound to. Says what
    /// held the deletion up, if anything did ([`Deletion::summary`]).
    ///
    /// # Errors
    /// The deletion is refused, or something still exists after `timeout`
    /// (named, with its finalizers and owners).
    pub async fn delete(&self, timeout: Duration) -> Result<Deletion, ClusterError> {
        self.renewal.abort();
        delete_namespace(&self.client, &self.name, timeout).await
    }
}

async fn set_expiry(
    client: &kube::Client,
    name: &str,
    from_now: Duration,
) -> Result<(), ClusterError> {
    let patch = serde_json::json!({"metadata": {"annotations": {labels::EXPIRES_AT: expiry_from_now(from_now)}}});
    kube::Api::<Namespace>::all(client.clone())
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(api_error(format!("renew the expiry of namespace {name}")))?;
    Ok(())
}

/// Deletes namespace `name` and its content, and waits until the namespace and the
/// persistent volumes of its claims are gone (see the module notes for how).
///
/// # Errors
/// The deletion is refused, or something still exists after `timeout` (named,
/// with its finalizers and owners).
pub async fn delete_namespace(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> Result<Deletion, ClusterError> {
    let deadline = Instant::now() + timeout;
    let namespaces = kube::Api::<Namespace>::all(client.clone());
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), name);
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::background()
    };
    // Stop the pods first: nothing in a test namespace needs a grace period.
    let _ = pods.delete_collection(&now, &ListParams::default()).await;
    let Some(ns) = namespaces
        .get_opt(name)
        .await
        .map_err(api_error(format!("read namespace {name}")))?
    else {
        return Ok(Deletion::default());
    };
    let Some(uid) = ns.metadata.uid.clone() else {
        return Ok(Deletion::default());
    };
    match namespaces.delete(name, &DeleteParams::background()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Deletion::default()),
        Err(e) => return Err(api_error(format!("delete namespace {name}"))(e)),
    }
    let types = namespaced_types(client).await.unwrap_or_default();
    let (emptied, deletion) = sweep_or_explain(client, &ns, &types, deadline).await;
    if emptied {
        finalize(client, name).await;
    }
    let gone = kube::runtime::wait::await_condition(
        namespaces.clone(),
        name,
        kube::runtime::wait::conditions::is_deleted(&uid),
    );
    let gone = async {
        tokio::select! {
            result = gone => result.map(|_| ()),
            never = hurry_pods(&pods) => never,
        }
    };
    let left = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(left, gone).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            return Err(ClusterError::Wait(WaitError::Timeout {
                what: format!("namespace {name} to be deleted"),
                waited: timeout,
                last: e.to_string(),
                cause: None,
            }))
        }
        Err(_) => {
            let held: Vec<Held> = holds::remaining_in(client, name, &types)
                .await
                .into_iter()
                .map(|(_, held)| held)
                .collect();
            return Err(ClusterError::Wait(WaitError::Timeout {
                what: format!("namespace {name} to be deleted"),
                waited: timeout,
                last: format!(
                    "{}; {}",
                    namespace_state(&namespaces, name).await,
                    holds::describe(&held)
                ),
                cause: None,
            }));
        }
    }
    let left = deadline.saturating_duration_since(Instant::now());
    release_volumes(client, name, left).await?;
    Ok(deletion)
}

/// Sweeps the terminating namespace `ns` ([`sweep`]); `true` once it is empty.
/// Content left after [`SWEEP_BUDGET`] is named with what holds it (the
/// [`Deletion`]), and in the harness's own namespaces released
/// ([`holds::release`]) and swept again.
async fn sweep_or_explain(
    client: &kube::Client,
    ns: &Namespace,
    types: &[ApiResource],
    deadline: Instant,
) -> (bool, Deletion) {
    let name = ns.metadata.name.as_deref().unwrap_or_default();
    if types.is_empty() {
        return (false, Deletion::default());
    }
    let until = (Instant::now() + SWEEP_BUDGET).min(deadline);
    if sweep(client, name, types, until).await {
        return (true, Deletion::default());
    }
    let held = holds::remaining_in(client, name, types).await;
    let mut deletion = Deletion {
        held: held.iter().map(|(_, h)| h.clone()).collect(),
        ..Deletion::default()
    };
    let ours = ns
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::MANAGED_BY))
        .is_some_and(|m| m == labels::MANAGER);
    if ours {
        (deletion.released, deletion.not_released) = holds::release(client, name, &held).await;
    }
    if let Some(summary) = deletion.summary(name) {
        tracing::warn!(namespace = name, "{summary}");
    }
    let until = (Instant::now() + RELEASED_BUDGET).min(deadline);
    let emptied = !deletion.released.is_empty() && sweep(client, name, types, until).await;
    (emptied, deletion)
}

/// Controllers may still create pods while the namespace terminates, and the
/// namespace controller deletes them with their own grace period: watch the
/// namespace's pods and cut each one's grace period to 0. Never returns.
async fn hurry_pods<T>(pods: &kube::Api<Pod>) -> T {
    use futures::StreamExt as _;
    use kube::runtime::WatchStreamExt as _;
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    let events = kube::runtime::watcher(pods.clone(), Default::default())
        .default_backoff()
        .applied_objects();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        let Ok(pod) = event else { continue };
        let graced = pod
            .metadata
            .deletion_grace_period_seconds
            .is_none_or(|g| g > 0);
        if let (true, Some(name)) = (graced, pod.metadata.name.as_deref()) {
            let _ = pods.delete(name, &now).await;
        }
    }
    std::future::pending().await
}

/// The namespaced object types that can be listed and deleted as collections.
async fn namespaced_types(client: &kube::Client) -> Result<Vec<ApiResource>, kube::Error> {
    let discovery = kube::Discovery::new(client.clone()).run().await?;
    Ok(discovery
        .groups()
        .flat_map(|g| g.recommended_resources())
        .filter(|(_, caps)| {
            caps.scope == Scope::Namespaced
                && caps.supports_operation(verbs::LIST)
                && caps.supports_operation(verbs::DELETE_COLLECTION)
        })
        .map(|(resource, _)| resource)
        .collect())
}

/// Deletes every object of `types` in the terminating namespace and waits
/// (polling every 100 ms) until none is left or `until` passes. `true`: the
/// namespace is empty.
async fn sweep(client: &kube::Client, name: &str, types: &[ApiResource], until: Instant) -> bool {
    let apis: Vec<kube::Api<DynamicObject>> = types
        .iter()
        .map(|t| kube::Api::namespaced_with(client.clone(), name, t))
        .collect();
    let now = DeleteParams {
        grace_period_seconds: Some(0),
        ..DeleteParams::background()
    };
    let (everything, one) = (ListParams::default(), ListParams::default().limit(1));
    let deletions = apis
        .iter()
        .map(|api| api.delete_collection(&now, &everything));
    let _ = futures::future::join_all(deletions).await;
    loop {
        let lists = apis.iter().map(|api| api.list_metadata(&one));
        let remaining = futures::future::join_all(lists)
            .await
            .into_iter()
            .map(|list| list.map(|l| l.items.len()).unwrap_or(1))
            .sum::<usize>();
        if remaining == 0 {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Removes the `kubernetes` finalizer of an emptied, terminating namespace and
/// deletes it again, which removes it at once. Failures leave the namespace to the
/// controller, so they are not errors.
async fn finalize(client: &kube::Client, name: &str) {
    let namespaces = kube::Api::<Namespace>::all(client.clone());
    let Ok(Some(mut ns)) = namespaces.get_opt(name).await else {
        return;
    };
    if let Some(spec) = ns.spec.as_mut() {
        spec.finalizers = Some(Vec::new());
    }
    if namespaces
        .replace_subresource("finalize", name, &Default::default(), &ns)
        .await
        .is_ok()
    {
        let _ = namespaces.delete(name, &DeleteParams::background()).await;
    }
}

async fn namespace_state(namespaces: &kube::Api<Namespace>, name: &str) -> String {
    namespaces
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|ns| ns.status)
        .map(|s| {
            let conditions: Vec<String> = s
                .conditions
                .unwrap_or_default()
                .iter()
                .filter(|c| c.status == "True")
                .map(|c| {
                    format!(
                        "{}: {}",
                        c.type_,
                        c.message.clone().unwrap_or_default().trim()
                    )
                })
                .collect();
            format!(
                "phase {}; {}",
                s.phase.unwrap_or_default(),
                conditions.join("; ")
            )
        })
        .unwrap_or_else(|| "gone".into())
}

/// Deletes the persistent volumes that were bound to claims in namespace `name`
/// (provisioners delete those with reclaim policy `Delete` themselves; a test's
/// `Retain` volume is deleted here) and waits until they are gone.
async fn release_volumes(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> Result<(), ClusterError> {
    let volumes = kube::Api::<PersistentVolume>::all(client.clone());
    let of_namespace = |pv: &PersistentVolume| {
        pv.spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .and_then(|c| c.namespace.as_deref())
            == Some(name)
    };
    let list = volumes
        .list(&Default::default())
        .await
        .map_err(api_error("list persistent volumes"))?;
    let mine: Vec<PersistentVolume> = list.items.into_iter().filter(of_namespace).collect();
    for pv in &mine {
        let retained = pv
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
            != Some("Delete");
        if let (true, Some(pv_name)) = (retained, pv.metadata.name.as_deref()) {
            let _ = volumes.delete(pv_name, &Default::default()).await;
        }
    }
    for pv in mine {
        let (Some(pv_name), Some(uid)) = (pv.metadata.name, pv.metadata.uid) else {
            continue;
        };
        let gone = kube::runtime::wait::await_condition(
            volumes.clone(),
            &pv_name,
            kube::runtime::wait::conditions::is_deleted(&uid),
        );
        if tokio::time::timeout(timeout, gone).await.is_err() {
            let phase = volumes
                .get_opt(&pv_name)
                .await
                .ok()
                .flatten()
                .and_then(|pv| pv.status)
                .and_then(|s| s.phase)
                .unwrap_or_default();
            return Err(ClusterError::Wait(WaitError::Timeout {
                what: format!("persistent volume {pv_name} of namespace {name} to be deleted"),
                waited: timeout,
                last: format!("phase {phase} (is the volume provisioner running?)"),
                cause: None,
            }));
        }
    }
    Ok(())
}

/// Whether a harness namespace's lease (`expires-at`) has passed at `now`.
fn expired(ns: &Namespace, now: time::OffsetDateTime) -> bool {
    expiry_of(&ns.metadata).is_some_and(|at| at < now)
}

/// When a harness object's lease runs out (its `expires-at` annotation), if it has one.
pub(crate) fn expiry_of(meta: &kube::api::ObjectMeta) -> Option<time::OffsetDateTime> {
    let at = meta.annotations.as_ref()?.get(labels::EXPIRES_AT)?;
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}

/// The harness namespaces of live runs (lease not expired, not being deleted),
/// as `(run id, namespace)`: what a cluster-wide reset must not touch.
///
/// # Errors
/// Listing namespaces fails.
pub async fn live_runs(client: &kube::Client) -> Result<Vec<(String, String)>, ClusterError> {
    let namespaces = harness_namespaces(client).await?;
    Ok(live_of(&namespaces, time::OffsetDateTime::now_utc()))
}

/// Every namespace the harness created (by its managed-by label).
async fn harness_namespaces(client: &kube::Client) -> Result<Vec<Namespace>, ClusterError> {
    let api = kube::Api::<Namespace>::all(client.clone());
    let selector = format!("{}={}", labels::MANAGED_BY, labels::MANAGER);
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error("list harness namespaces"))?;
    Ok(list.items)
}

/// [`live_runs`] over listed namespaces.
fn live_of(namespaces: &[Namespace], now: time::OffsetDateTime) -> Vec<(String, String)> {
    namespaces
        .iter()
        .filter(|ns| ns.metadata.deletion_timestamp.is_none() && !expired(ns, now))
        .filter_map(|ns| {
            let run = ns
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::RUN_ID))
                .cloned()
                .unwrap_or_default();
            Some((run, ns.metadata.name.clone()?))
        })
        .collect()
}

/// Deletes the namespaces of runs that stopped renewing them (killed runs):
/// harness-managed namespaces whose `expires-at` has passed. Returns their names;
/// the namespace controller finishes the deletion.
///
/// # Errors
/// Listing namespaces fails.
pub async fn reap_expired(client: &kube::Client) -> Result<Vec<String>, ClusterError> {
    let api = kube::Api::<Namespace>::all(client.clone());
    let now = time::OffsetDateTime::now_utc();
    let mut reaped = Vec::new();
    for ns in harness_namespaces(client).await? {
        let expired = expired(&ns, now);
        let (Some(name), true, None) = (
            ns.metadata.name.clone(),
            expired,
            ns.metadata.deletion_timestamp.as_ref(),
        ) else {
            continue;
        };
        // Nothing in a test namespace needs a grace period; without this the
        // namespace controller waits out each pod's (often 30 s).
        let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &name);
        let now = DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::background()
        };
        let _ = pods.delete_collection(&now, &ListParams::default()).await;
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {
                // As a case's own cleanup does: every object goes without grace,
                // so controllers of the killed run cannot recreate pods that the
                // namespace controller then waits on.
                let types = namespaced_types(client).await.unwrap_or_default();
                let until = Instant::now() + SWEEP_BUDGET + RELEASED_BUDGET;
                if sweep_or_explain(client, &ns, &types, until).await.0 {
                    finalize(client, &name).await;
                }
                reaped.push(name)
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(api_error(format!("delete expired namespace {name}"))(e)),
        }
    }
    Ok(reaped)
}

/// Deletes, concurrently and awaited, every namespace of run `run_id` (what a
/// signal handler does before the process exits). Returns the names deleted.
///
/// # Errors
/// Listing fails, or a namespace is still there after `timeout`.
pub async fn delete_run_namespaces(
    client: &kube::Client,
    run_id: &str,
    timeout: Duration,
) -> Result<Vec<String>, ClusterError> {
    let api = kube::Api::<Namespace>::all(client.clone());
    let selector = format!(
        "{}={},{}={run_id}",
        labels::MANAGED_BY,
        labels::MANAGER,
        labels::RUN_ID
    );
    let names: Vec<String> = api
        .list_metadata(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error(format!("list the namespaces of run {run_id}")))?
        .items
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .collect();
    let deletions = names
        .iter()
        .map(|name| delete_namespace(client, name, timeout));
    for result in futures::future::join_all(deletions).await {
        result?;
    }
    Ok(names)
}

/// Label values: at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends.
pub fn label_value(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(name: &str, run: &str, expires: &str, deleting: bool) -> Namespace {
        let mut metadata = serde_json::json!({
            "name": name,
            "labels": {labels::MANAGED_BY: labels::MANAGER, labels::RUN_ID: run},
            "annotations": {labels::EXPIRES_AT: expires},
        });
        if deleting {
            metadata["deletionTimestamp"] = "2026-12-03T11:59:00Z".into();
        }
        serde_json::from_value(serde_json::json!({ "metadata": metadata })).unwrap()
    }

    #[test]
    fn live_runs_are_those_whose_lease_has_not_passed() {
        let now = time::macros::datetime!(2026-12-03 12:00 UTC);
        let namespaces = [
            namespace("t-live", "run-a", "2026-12-03T12:05:00Z", false),
            namespace("t-killed", "run-b", "2026-12-03T11:55:00Z", false),
            namespace("t-going", "run-c", "2026-12-03T12:05:00Z", true),
            namespace("t-no-lease", "run-d", "soon", false),
        ];
        assert_eq!(
            live_of(&namespaces, now),
            vec![
                ("run-a".to_owned(), "t-live".to_owned()),
                // An unreadable lease never counts as expired: the run may be live.
                ("run-d".to_owned(), "t-no-lease".to_owned()),
            ]
        );
    }
}
