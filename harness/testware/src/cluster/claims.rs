//! Cluster-scoped objects a release creates (CustomResourceDefinitions,
//! ClusterRoles and their bindings, PriorityClasses, StorageClasses, webhook
//! configurations): claimed through cluster-wide Leases before the install, so
//! cases that create the same one never run at once — in one process, across
//! processes, shards and CI jobs — and deleted when the case ends.
//!
//! A namespace deletion never reaches such objects, and two releases cannot both
//! own one (helm refuses the second: "exists and cannot be imported into the
//! current release"). So before installing, the harness renders the chart, asks
//! the server which of its kinds are cluster-scoped, and takes one Lease per object
//! in [`CLAIMS_NAMESPACE`] (in name order, so two claimants never deadlock),
//! waiting while another case holds it. The Lease is the record: it names the
//! objects and the release namespace, carries the run, job and case as labels,
//! and is renewed while its case runs. After the case the objects are deleted and
//! awaited, then the Leases. A killed run stops renewing; the next claimant of
//! the object or the janitor ([`reap_expired`]) deletes what the dead claim names
//! — only objects helm created for that claim's release namespace, never a live
//! run's — and then the Lease.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
    PostParams, Preconditions,
};
use kube::discovery::Scope;
use serde::{Deserialize, Serialize};

use crate::cluster::namespace::{expiry_from_now, expiry_of};
use crate::cluster::wait::Deadline;
use crate::cluster::{api_error, labels, ClusterError};
use crate::config::RunConfig;
use crate::manifest::Manifests;

/// The namespace of the claims' Leases, beside the control plane's own.
pub const CLAIMS_NAMESPACE: &str = "kube-system";

/// Label on claim Leases, and on the cluster's holds ([`crate::cluster::sharing`]),
/// so the janitor and a signal handler reap both alike.
pub(crate) const CLAIM_LABEL: &str = "testware.io/claim";
/// Annotation: the claimed object, as JSON ([`ClusterObject`]).
const OBJECT_ANNOTATION: &str = "testware.io/object";
/// Annotation: the namespace of the release that creates the object.
const NAMESPACE_ANNOTATION: &str = "testware.io/release-namespace";
/// The annotation helm writes on everything it creates: whose release it is.
const HELM_RELEASE_NAMESPACE: &str = "meta.helm.sh/release-namespace";

/// How long a claim outlives its last renewal; a live claim renews every third of it.
pub(crate) const CLAIM_LEASE: Duration = Duration::from_secs(30);
/// How often a waiting claimant looks again.
pub(crate) const POLL: Duration = Duration::from_secs(1);
/// How long the deletion of a claimed object is awaited.
const OBJECT_DELETE: Duration = Duration::from_secs(60);

/// A cluster-scoped object of a render.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClusterObject {
    /// `apiVersion`, e.g. `rbac.authorization.k8s.io/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// `kind`, e.g. `ClusterRole`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
}

impl std::fmt::Display for ClusterObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

impl ClusterObject {
    fn group(&self) -> &str {
        self.api_version.rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// The Lease that claims it: one name per kind, group and name, whatever
    /// the API version.
    fn lease_name(&self) -> String {
        use sha2::Digest;
        let identity = format!("{}.{}/{}", self.kind, self.group(), self.name);
        let digest = sha2::Sha256::digest(identity.as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("testware-claim-{hex}")
    }

    async fn resource(&self, client: &kube::Client) -> Result<(ApiResource, Scope), kube::Error> {
        resource_of(client, &self.api_version, &self.kind).await
    }
}

async fn resource_of(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
) -> Result<(ApiResource, Scope), kube::Error> {
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, caps) = kube::discovery::pinned_kind(client, &gvk).await?;
    Ok((resource, caps.scope))
}

/// How the server serves `kind` in `api_version` (namespaced or cluster-wide);
/// `None` if it does not serve it (or discovery fails).
pub async fn served_scope(client: &kube::Client, api_version: &str, kind: &str) -> Option<Scope> {
    resource_of(client, api_version, kind)
        .await
        .ok()
        .map(|(_, scope)| scope)
}

/// The objects of `manifests` the server serves as cluster-scoped (kinds it does
/// not know yet, e.g. of a CRD in the same render, count as namespaced).
pub async fn cluster_scoped(client: &kube::Client, manifests: &Manifests) -> Vec<ClusterObject> {
    let mut scopes: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut found = Vec::new();
    for object in manifests.objects() {
        let candidate = ClusterObject {
            api_version: object.api_version.clone(),
            kind: object.kind.clone(),
            name: object.name().to_owned(),
        };
        let key = (object.api_version.clone(), object.kind.clone());
        let cluster_wide = match scopes.get(&key) {
            Some(known) => *known,
            None => {
                let known = matches!(candidate.resource(client).await, Ok((_, Scope::Cluster)));
                scopes.insert(key, known);
                known
            }
        };
        if cluster_wide && !candidate.name.is_empty() {
            found.push(candidate);
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Who claims: the case of a run, and the namespace its release is in.
#[derive(Debug, Clone)]
pub struct Claimant {
    /// The run's id.
    pub run_id: String,
    /// The CI job, if any.
    pub job_id: Option<String>,
    /// The case.
    pub case: String,
    /// The release namespace (the objects' helm annotation names it).
    pub namespace: String,
}

impl Claimant {
    /// The claimant of `case` in `config`'s run, installing into `namespace`.
    pub fn of(config: &RunConfig, case: &str, namespace: &str) -> Self {
        Self {
            run_id: config.run_id.clone(),
            job_id: config.ci_job_id.clone(),
            case: case.to_owned(),
            namespace: namespace.to_owned(),
        }
    }

    fn identity(&self) -> String {
        format!("{}/{}", self.run_id, self.namespace)
    }

    fn lease(&self, name: &str, object: &ClusterObject) -> Lease {
        Lease {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                namespace: Some(CLAIMS_NAMESPACE.to_owned()),
                labels: Some(lease_labels(
                    &self.run_id,
                    self.job_id.as_deref(),
                    &self.case,
                )),
                annotations: Some(BTreeMap::from([
                    (
                        OBJECT_ANNOTATION.to_owned(),
                        serde_json::to_string(object).unwrap_or_default(),
                    ),
                    (NAMESPACE_ANNOTATION.to_owned(), self.namespace.clone()),
                    (labels::EXPIRES_AT.to_owned(), expiry_from_now(CLAIM_LEASE)),
                ])),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity()),
                lease_duration_seconds: Some(CLAIM_LEASE.as_secs() as i32),
                ..Default::default()
            }),
        }
    }
}

/// The labels of a claim's (or a hold's) Lease: the harness's, the run's, the
/// CI job's and the case's, so it is listed, reaped and explained alike.
pub(crate) fn lease_labels(
    run_id: &str,
    job_id: Option<&str>,
    case: &str,
) -> BTreeMap<String, String> {
    let mut values = BTreeMap::from([
        (labels::MANAGED_BY.to_owned(), labels::MANAGER.to_owned()),
        (CLAIM_LABEL.to_owned(), "true".to_owned()),
        (labels::RUN_ID.to_owned(), run_id.to_owned()),
        (
            labels::CASE.to_owned(),
            crate::cluster::namespace::label_value(case),
        ),
    ]);
    if let Some(job) = job_id {
        values.insert(
            labels::JOB_ID.to_owned(),
            crate::cluster::namespace::label_value(job),
        );
    }
    values
}

/// The claims of one release: its cluster-scoped objects, held until
/// [`Claim::release`] (or, after a killed run, until they expire).
pub struct Claim {
    client: kube::Client,
    claimant: Claimant,
    objects: Vec<ClusterObject>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim")
            .field("objects", &self.objects)
            .field("namespace", &self.claimant.namespace)
            .finish()
    }
}

pub(crate) fn leases(client: &kube::Client) -> kube::Api<Lease> {
    kube::Api::namespaced(client.clone(), CLAIMS_NAMESPACE)
}

pub(crate) fn annotation<'a>(lease: &'a Lease, key: &str) -> Option<&'a str> {
    lease
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Whether a claim's Lease has passed its expiry at `now` (no expiry: passed).
pub(crate) fn expired(lease: &Lease, now: time::OffsetDateTime) -> bool {
    expiry_of(&lease.metadata).is_none_or(|at| at <= now)
}

/// Who holds a claim (or a hold), in words.
pub(crate) fn holder(lease: &Lease) -> String {
    let label = |key: &str| {
        lease
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_else(|| "-".into())
    };
    let mut text = format!(
        "case {} of run {} (CI job {}",
        label(labels::CASE),
        label(labels::RUN_ID),
        label(labels::JOB_ID),
    );
    if let Some(namespace) = annotation(lease, NAMESPACE_ANNOTATION) {
        text.push_str(&format!(", namespace {namespace}"));
    }
    text.push(')');
    text
}

impl Claim {
    /// Claims `objects` for `claimant`, waiting while other cases hold any of
    /// them, at most until `deadline`. Claims left by killed runs (expired) are
    /// reaped on the way: their objects deleted, then taken over.
    ///
    /// # Errors
    /// An object is still claimed by another case at the deadline (named), or
    /// the API server refuses the Lease.
    pub async fn acquire(
        client: &kube::Client,
        claimant: Claimant,
        mut objects: Vec<ClusterObject>,
        deadline: Deadline,
    ) -> Result<Self, ClusterError> {
        objects.sort_by_key(ClusterObject::lease_name);
        objects.dedup();
        let started = std::time::Instant::now();
        let mut held = Vec::new();
        for object in &objects {
            if let Err(e) = acquire_one(client, &claimant, object, deadline, started).await {
                for done in &held {
                    let _ = release_lease(client, &claimant, done).await;
                }
                return Err(e);
            }
            held.push(object.clone());
            tracing::info!(object = %object, namespace = %claimant.namespace, "claimed a cluster-scoped object");
        }
        let (renew_client, renew_claimant, renew_objects) =
            (client.clone(), claimant.clone(), objects.clone());
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(CLAIM_LEASE / 3).await;
                for object in &renew_objects {
                    let _ = renew(&renew_client, &renew_claimant, object, CLAIM_LEASE).await;
                }
            }
        });
        Ok(Self {
            client: client.clone(),
            claimant,
            objects,
            renewal,
        })
    }

    /// The claimed objects.
    pub fn objects(&self) -> &[ClusterObject] {
        &self.objects
    }

    /// Labels the claimed objects with the run, job and case (after the install
    /// created them; objects not there are passed over).
    pub async fn label_objects(&self) {
        let mut values = serde_json::Map::new();
        values.insert(labels::RUN_ID.into(), self.claimant.run_id.clone().into());
        values.insert(
            labels::CASE.into(),
            crate::cluster::namespace::label_value(&self.claimant.case).into(),
        );
        if let Some(job) = &self.claimant.job_id {
            values.insert(
                labels::JOB_ID.into(),
                crate::cluster::namespace::label_value(job).into(),
            );
        }
        let patch = serde_json::json!({"metadata": {"labels": values}});
        for object in &self.objects {
            if let Ok((resource, _)) = object.resource(&self.client).await {
                let api = kube::Api::<DynamicObject>::all_with(self.client.clone(), &resource);
                let _ = api
                    .patch(&object.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await;
            }
        }
    }

    /// Keeps the objects for inspection: the claims stop renewing and expire
    /// `keep_for` from now, after which a claimant or the janitor removes them.
    pub async fn keep(&self, keep_for: Duration) {
        self.renewal.abort();
        for object in &self.objects {
            let _ = renew(&self.client, &self.claimant, object, keep_for).await;
        }
    }

    /// Deletes the claimed objects this claim's release created, waits until
    /// they are gone, then gives the claims up.
    ///
    /// # Errors
    /// An object cannot be deleted or is still there after a minute (the claim is
    /// then left to expire, and the next claimant or the janitor retries).
    pub async fn release(&self) -> Result<(), ClusterError> {
        self.renewal.abort();
        let mut problems = Vec::new();
        for object in &self.objects {
            match delete_owned(&self.client, object, &self.claimant.namespace).await {
                Ok(()) => release_lease(&self.client, &self.claimant, object).await?,
                Err(e) => problems.push(crate::error_chain(&e)),
            }
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(ClusterError::Wait(
                crate::cluster::wait::WaitError::Timeout {
                    what: "the case's cluster-scoped objects to be deleted".into(),
                    waited: OBJECT_DELETE,
                    last: problems.join("; "),
                    cause: None,
                },
            )),
        }
    }
}

async fn acquire_one(
    client: &kube::Client,
    claimant: &Claimant,
    object: &ClusterObject,
    deadline: Deadline,
    started: std::time::Instant,
) -> Result<(), ClusterError> {
    let api = leases(client);
    let name = object.lease_name();
    let wanted = claimant.lease(&name, object);
    loop {
        let current = api
            .get_opt(&name)
            .await
            .map_err(api_error(format!("read Lease {CLAIMS_NAMESPACE}/{name}")))?;
        let taken = match current {
            None => api
                .create(&PostParams::default(), &wanted)
                .await
                .map(|_| ()),
            Some(lease) if lease_holder(&lease) == Some(claimant.identity()) => return Ok(()),
            Some(lease) if expired(&lease, time::OffsetDateTime::now_utc()) => {
                tracing::info!(object = %object, holder = %holder(&lease), "taking over an expired claim");
                reap(client, &lease).await?;
                let mut replacement = wanted.clone();
                replacement.metadata.resource_version = lease.metadata.resource_version.clone();
                api.replace(&name, &PostParams::default(), &replacement)
                    .await
                    .map(|_| ())
            }
            Some(lease) => {
                if deadline.remaining() < POLL {
                    return Err(ClusterError::Wait(crate::cluster::wait::WaitError::Timeout {
                        what: format!("the claim on {object} (cluster-scoped: one case at a time)"),
                        waited: started.elapsed(),
                        last: format!(
                            "still claimed by {} (Lease {CLAIMS_NAMESPACE}/{name}); hint: cases installing the same cluster-scoped object run one after another, so give such cases time, or render the object's name from the release",
                            holder(&lease)
                        ),
                        cause: None,
                    }));
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
        };
        match taken {
            Ok(()) => return Ok(()),
            // Another claimant was faster: look again.
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(api_error(format!("create Lease {CLAIMS_NAMESPACE}/{name}"))(e)),
        }
    }
}

pub(crate) fn lease_holder(lease: &Lease) -> Option<String> {
    lease.spec.as_ref()?.holder_identity.clone()
}

async fn renew(
    client: &kube::Client,
    claimant: &Claimant,
    object: &ClusterObject,
    from_now: Duration,
) -> Result<(), kube::Error> {
    renew_lease(
        &leases(client),
        &object.lease_name(),
        &claimant.identity(),
        from_now,
    )
    .await
}

/// Moves Lease `name`'s expiry to `from_now`, while `identity` still holds it.
pub(crate) async fn renew_lease(
    api: &kube::Api<Lease>,
    name: &str,
    identity: &str,
    from_now: Duration,
) -> Result<(), kube::Error> {
    let patch = serde_json::json!({
        "metadata": {"annotations": {labels::EXPIRES_AT: expiry_from_now(from_now)}},
        "spec": {"leaseDurationSeconds": from_now.as_secs()},
    });
    if let Some(lease) = api.get_opt(name).await? {
        if lease_holder(&lease).as_deref() == Some(identity) {
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    Ok(())
}

async fn release_lease(
    client: &kube::Client,
    claimant: &Claimant,
    object: &ClusterObject,
) -> Result<(), ClusterError> {
    let api = leases(client);
    let name = object.lease_name();
    let Some(lease) = api
        .get_opt(&name)
        .await
        .map_err(api_error(format!("read Lease {CLAIMS_NAMESPACE}/{name}")))?
    else {
        return Ok(());
    };
    if lease_holder(&lease) != Some(claimant.identity()) {
        return Ok(());
    }
    delete_lease(&api, &lease).await.map(|_| ())
}

/// Deletes `lease` unless it changed since it was read (taken over meanwhile);
/// `true` if this call deleted it.
pub(crate) async fn delete_lease(
    api: &kube::Api<Lease>,
    lease: &Lease,
) -> Result<bool, ClusterError> {
    let name = lease.metadata.name.clone().unwrap_or_default();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            resource_version: lease.metadata.resource_version.clone(),
            uid: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(false),
        Err(e) => Err(api_error(format!("delete Lease {CLAIMS_NAMESPACE}/{name}"))(e)),
    }
}

/// Deletes `object` if helm created it for a release in `namespace`, and waits
/// until it is gone.
async fn delete_owned(
    client: &kube::Client,
    object: &ClusterObject,
    namespace: &str,
) -> Result<(), ClusterError> {
    let Ok((resource, _)) = object.resource(client).await else {
        // The kind is no longer served (its CRD went): nothing of it is left.
        return Ok(());
    };
    let api = kube::Api::<DynamicObject>::all_with(client.clone(), &resource);
    let Some(live) = api
        .get_opt(&object.name)
        .await
        .map_err(api_error(format!("read {object}")))?
    else {
        return Ok(());
    };
    let owner = live
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HELM_RELEASE_NAMESPACE));
    if owner.map(String::as_str) != Some(namespace) {
        return Ok(());
    }
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: live.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    match api.delete(&object.name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => return Ok(()),
        Err(e) => return Err(api_error(format!("delete {object}"))(e)),
    }
    let uid = live.metadata.uid.clone().unwrap_or_default();
    let gone = kube::runtime::wait::await_condition(
        api,
        &object.name,
        kube::runtime::wait::conditions::is_deleted(&uid),
    );
    match tokio::time::timeout(OBJECT_DELETE, gone).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ClusterError::Wait(
            crate::cluster::wait::WaitError::Timeout {
                what: format!("{object} to be deleted"),
                waited: OBJECT_DELETE,
                last: e.to_string(),
                cause: None,
            },
        )),
        Err(_) => Err(ClusterError::Wait(
            crate::cluster::wait::WaitError::Timeout {
                what: format!("{object} to be deleted"),
                waited: OBJECT_DELETE,
                last: format!(
                    "finalizers: {:?}",
                    live.metadata.finalizers.unwrap_or_default()
                ),
                cause: None,
            },
        )),
    }
}

/// Deletes what an expired claim names (if its release created it); the Lease
/// is left to the caller.
async fn reap(client: &kube::Client, lease: &Lease) -> Result<(), ClusterError> {
    let object: Option<ClusterObject> =
        annotation(lease, OBJECT_ANNOTATION).and_then(|text| serde_json::from_str(text).ok());
    match (object, annotation(lease, NAMESPACE_ANNOTATION)) {
        (Some(object), Some(namespace)) => delete_owned(client, &object, namespace).await,
        _ => Ok(()),
    }
}

/// The janitor's part for cluster-scoped objects: claims whose run stopped
/// renewing them (killed runs) — their objects deleted, then the Leases.
/// Returns the objects (`Kind/name`); live runs' claims are left alone.
///
/// # Errors
/// Listing the Leases fails, or a Lease cannot be deleted.
pub async fn reap_expired(client: &kube::Client) -> Result<Vec<String>, ClusterError> {
    let now = time::OffsetDateTime::now_utc();
    reap_where(client, |lease| expired(lease, now)).await
}

/// Every claim of run `run_id`, reaped as [`reap_expired`] does (what a signal
/// handler and `testware janitor --run` do).
///
/// # Errors
/// As for [`reap_expired`].
pub async fn reap_run(client: &kube::Client, run_id: &str) -> Result<Vec<String>, ClusterError> {
    reap_where(client, |lease| {
        lease
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::RUN_ID))
            .is_some_and(|r| r == run_id)
    })
    .await
}

async fn reap_where(
    client: &kube::Client,
    dead: impl Fn(&Lease) -> bool,
) -> Result<Vec<String>, ClusterError> {
    let api = leases(client);
    let selector = format!(
        "{}={},{CLAIM_LABEL}=true",
        labels::MANAGED_BY,
        labels::MANAGER
    );
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error(format!("list Leases in {CLAIMS_NAMESPACE}")))?;
    let mut reaped = Vec::new();
    for lease in list.items.iter().filter(|l| dead(l)) {
        if let Err(e) = reap(client, lease).await {
            tracing::warn!(error = %crate::error_chain(&e), "janitor: a dead claim's object could not be deleted");
            continue;
        }
        if !delete_lease(&api, lease).await? {
            continue;
        }
        reaped.push(claimed(lease));
    }
    Ok(reaped)
}

/// The claims of live runs, as `(object, holder)`: what the janitor leaves.
///
/// # Errors
/// Listing the Leases fails.
pub async fn live(client: &kube::Client) -> Result<Vec<(String, String)>, ClusterError> {
    let selector = format!(
        "{}={},{CLAIM_LABEL}=true",
        labels::MANAGED_BY,
        labels::MANAGER
    );
    let list = leases(client)
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error(format!("list Leases in {CLAIMS_NAMESPACE}")))?;
    let now = time::OffsetDateTime::now_utc();
    Ok(list
        .items
        .iter()
        .filter(|l| !expired(l, now))
        .map(|l| (claimed(l), holder(l)))
        .collect())
}

/// What a Lease claims, in words: its object (`Kind/name`), or the cluster for
/// a hold ([`crate::cluster::sharing`]).
fn claimed(lease: &Lease) -> String {
    if let Some(object) = annotation(lease, OBJECT_ANNOTATION)
        .and_then(|t| serde_json::from_str::<ClusterObject>(t).ok())
    {
        return object.to_string();
    }
    match annotation(lease, crate::cluster::sharing::HOLD_ANNOTATION) {
        Some(kind) => format!("the cluster ({kind} hold)"),
        None => lease.metadata.name.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(api_version: &str, kind: &str, name: &str) -> ClusterObject {
        ClusterObject {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    #[test]
    fn one_lease_per_object_whatever_its_api_version() {
        let v1 = object("rbac.authorization.k8s.io/v1", "ClusterRole", "reader");
        let beta = object("rbac.authorization.k8s.io/v1beta1", "ClusterRole", "reader");
        let other = object("rbac.authorization.k8s.io/v1", "ClusterRole", "writer");
        let binding = object(
            "rbac.authorization.k8s.io/v1",
            "ClusterRoleBinding",
            "reader",
        );
        assert_eq!(v1.lease_name(), beta.lease_name());
        assert_ne!(v1.lease_name(), other.lease_name());
        assert_ne!(v1.lease_name(), binding.lease_name());
        assert!(v1.lease_name().len() <= 63 && v1.lease_name().starts_with("testware-claim-"));
    }

    #[test]
    fn a_claim_expires_at_its_annotation_and_without_one() {
        let claimant = Claimant {
            run_id: "r1".into(),
            job_id: Some("42".into()),
            case: "echo::a case".into(),
            namespace: "ci-42-abc".into(),
        };
        let lease = claimant.lease("l", &object("v1", "PersistentVolume", "pv"));
        let now = time::OffsetDateTime::now_utc();
        assert!(!expired(&lease, now));
        assert!(expired(&lease, now + Duration::from_secs(31)));
        assert!(expired(&Lease::default(), now));
        assert_eq!(
            holder(&lease),
            "case echo__a_case of run r1 (CI job 42, namespace ci-42-abc)"
        );
    }
}
