//! How cases share the cluster: every case holds it *shared*, and a case that
//! changes nodes (drain, cordon, lose, cut off, restart, taint, label) holds it
//! *exclusively* — alone, in one process or across processes, shards and CI jobs.
//!
//! A drain evicts every pod of the node whatever its namespace, a lost or cut-off
//! node takes every case's pods with it, and one case's PodDisruptionBudget
//! refuses another case's evictions: such a case disturbs, and is disturbed by,
//! whatever else runs. So the cluster has a reader–writer lock made of Leases in
//! [`CLAIMS_NAMESPACE`], renewed while their case runs, so a killed holder's
//! hold expires and the next claimant reaps it:
//!
//! - the exclusive claimant takes the one Lease `testware-exclusive` (from then
//!   on no case starts), then waits until the shared Leases of running cases are
//!   gone (they finish);
//! - a shared claimant waits while that Lease is held, creates a Lease of its
//!   own, and looks again: if an exclusive claimant came in between, it
//!   withdraws and waits.
//!
//! Both write before they read, so of two claimants racing one always sees the
//! other. The Leases carry the claims' labels, so the janitor and a signal
//! handler reap them as they reap claims ([`crate::cluster::claims`]).

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use kube::api::{ListParams, PostParams};

use crate::cluster::claims::{
    annotation, delete_lease, expired, holder, lease_holder, lease_labels, renew_lease,
    CLAIMS_NAMESPACE, CLAIM_LEASE, POLL,
};
use crate::cluster::namespace::expiry_from_now;
use crate::cluster::wait::{Deadline, WaitError};
use crate::cluster::{api_error, labels, ClusterError};
use crate::config::RunConfig;

/// Annotation (and label) of a hold's Lease: `shared` or `exclusive`.
pub const HOLD_ANNOTATION: &str = "testware.io/hold";
/// The one Lease of the exclusive hold.
const EXCLUSIVE_LEASE: &str = "testware-exclusive";

/// How a case holds the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldKind {
    /// Beside other shared holders; never beside an exclusive one.
    Shared,
    /// Alone: the case changes nodes.
    Exclusive,
}

impl HoldKind {
    /// `shared` or `exclusive`, as in the Lease and the JUnit properties.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::Exclusive => "exclusive",
        }
    }
}

/// Who holds: a case of a run; unique per claim, so two processes running the
/// same case never take each other's hold for their own.
#[derive(Debug, Clone)]
pub struct Holder {
    run_id: String,
    job_id: Option<String>,
    case: String,
    nonce: u64,
}

impl Holder {
    /// The holder for `case` of `config`'s run.
    pub fn of(config: &RunConfig, case: &str) -> Self {
        Self::named(&config.run_id, config.ci_job_id.as_deref(), case)
    }

    /// A holder outside a run's cases (a benchmark, a tool).
    pub fn named(run_id: &str, job_id: Option<&str>, case: &str) -> Self {
        Self {
            run_id: run_id.to_owned(),
            job_id: job_id.map(str::to_owned),
            case: case.to_owned(),
            nonce: rand::random(),
        }
    }

    fn identity(&self) -> String {
        format!("{}/{}/{:016x}", self.run_id, self.case, self.nonce)
    }

    fn lease(&self, name: &str, kind: HoldKind) -> Lease {
        let mut label_values = lease_labels(&self.run_id, self.job_id.as_deref(), &self.case);
        label_values.insert(HOLD_ANNOTATION.to_owned(), kind.as_str().to_owned());
        Lease {
            metadata: kube::api::ObjectMeta {
                name: Some(name.to_owned()),
                labels: Some(label_values),
                annotations: Some(
                    [
                        (HOLD_ANNOTATION.to_owned(), kind.as_str().to_owned()),
                        (labels::EXPIRES_AT.to_owned(), expiry_from_now(CLAIM_LEASE)),
                    ]
                    .into(),
                ),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity()),
                lease_duration_seconds: Some(CLAIM_LEASE.as_secs() as i32),
                ..Default::default()
            }),
        }
    }

    /// The name of this holder's shared Lease.
    fn shared_lease_name(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.identity().as_bytes());
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("testware-shared-{hex}")
    }
}

/// A hold on the cluster, renewed until [`ClusterHold::release`] (or, if its
/// process dies, until it expires).
pub struct ClusterHold {
    api: kube::Api<Lease>,
    kind: HoldKind,
    name: String,
    identity: String,
    waited: Duration,
    waited_for: Option<String>,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for ClusterHold {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

impl std::fmt::Debug for ClusterHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHold")
            .field("kind", &self.kind)
            .field("lease", &self.name)
            .field("waited", &self.waited)
            .finish()
    }
}

impl ClusterHold {
    /// Holds the cluster beside other cases, waiting while a case that changes
    /// nodes holds it, at most until `deadline`.
    ///
    /// # Errors
    /// The cluster is still held exclusively at the deadline (the holder named),
    /// or the API server refuses the Lease (see [`is_forbidden`]).
    pub async fn shared(
        client: &kube::Client,
        holder: &Holder,
        deadline: Deadline,
    ) -> Result<Self, ClusterError> {
        Self::shared_in(client, CLAIMS_NAMESPACE, holder, deadline).await
    }

    /// [`ClusterHold::shared`] with the Leases in `namespace` instead of
    /// [`CLAIMS_NAMESPACE`]: a lock of its own, beside the cluster's (for tests
    /// of the lock itself).
    ///
    /// # Errors
    /// As [`ClusterHold::shared`].
    pub async fn shared_in(
        client: &kube::Client,
        namespace: &str,
        holder: &Holder,
        deadline: Deadline,
    ) -> Result<Self, ClusterError> {
        let api = kube::Api::<Lease>::namespaced(client.clone(), namespace);
        let started = Instant::now();
        let identity = holder.identity();
        let name = holder.shared_lease_name();
        let mut waited_for = None;
        loop {
            if let Some(who) = wait_while_exclusive(&api, &identity, deadline, started).await? {
                waited_for = Some(who);
            }
            create_lease(&api, &holder.lease(&name, HoldKind::Shared)).await?;
            let Some(exclusive) = exclusive_of_another(&api, &identity).await? else {
                break;
            };
            // An exclusive claimant came in between: it goes first.
            tracing::debug!(holder = %holder_of(&exclusive), "withdrawing a shared hold");
            if let Some(own) = api.get_opt(&name).await.map_err(api_error(format!(
                "read Lease {}/{name}",
                api.namespace().unwrap_or_default()
            )))? {
                delete_lease(&api, &own).await?;
            }
        }
        Ok(Self::holding(
            api,
            HoldKind::Shared,
            name,
            identity,
            started,
            waited_for,
        ))
    }

    /// Holds the cluster alone: takes the exclusive Lease (no case starts after
    /// that), then waits until the running cases end, at most until `deadline`.
    ///
    /// # Errors
    /// Another exclusive holder, or running cases, still hold the cluster at the
    /// deadline (named), or the API server refuses the Lease.
    pub async fn exclusive(
        client: &kube::Client,
        holder: &Holder,
        deadline: Deadline,
    ) -> Result<Self, ClusterError> {
        Self::exclusive_in(client, CLAIMS_NAMESPACE, holder, deadline).await
    }

    /// [`ClusterHold::exclusive`] with the Leases in `namespace` (see
    /// [`ClusterHold::shared_in`]).
    ///
    /// # Errors
    /// As [`ClusterHold::exclusive`].
    pub async fn exclusive_in(
        client: &kube::Client,
        namespace: &str,
        holder: &Holder,
        deadline: Deadline,
    ) -> Result<Self, ClusterError> {
        let api = kube::Api::<Lease>::namespaced(client.clone(), namespace);
        let started = Instant::now();
        let identity = holder.identity();
        let mut waited_for = None;
        loop {
            if let Some(who) = wait_while_exclusive(&api, &identity, deadline, started).await? {
                waited_for = Some(who);
            }
            match api
                .create(
                    &PostParams::default(),
                    &holder.lease(EXCLUSIVE_LEASE, HoldKind::Exclusive),
                )
                .await
            {
                Ok(_) => break,
                // Another claimant was faster: wait for it.
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => {
                    return Err(api_error(format!(
                        "create Lease {namespace}/{EXCLUSIVE_LEASE}"
                    ))(e))
                }
            }
        }
        // Renewed from now on: the running cases may take a while.
        let mut hold = Self::holding(
            api.clone(),
            HoldKind::Exclusive,
            EXCLUSIVE_LEASE.to_owned(),
            identity,
            started,
            None,
        );
        let mut announced = false;
        loop {
            let running = shared_holds(&api).await?;
            if running.is_empty() {
                break;
            }
            let names: Vec<String> = running.iter().map(holder_of).collect();
            if deadline.remaining() < POLL {
                let _ = hold.release().await;
                return Err(ClusterError::Wait(WaitError::Timeout {
                    what: "the running cases to finish before a case that changes nodes".into(),
                    waited: started.elapsed(),
                    last: format!(
                        "still running: {}; hint: give such a case more time (HARNESS_CLUSTER_WAIT, seconds), or run it in a stage of its own",
                        names.join("; ")
                    ),
                    cause: None,
                }));
            }
            if !announced {
                tracing::info!(running = names.len(), first = %names[0], "waiting for the running cases to finish");
                announced = true;
            }
            waited_for = Some(names[0].clone());
            tokio::time::sleep(POLL).await;
        }
        hold.waited = started.elapsed();
        hold.waited_for = waited_for;
        Ok(hold)
    }

    fn holding(
        api: kube::Api<Lease>,
        kind: HoldKind,
        name: String,
        identity: String,
        started: Instant,
        waited_for: Option<String>,
    ) -> Self {
        let (renew_api, renew_name, renew_identity) = (api.clone(), name.clone(), identity.clone());
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(CLAIM_LEASE / 3).await;
                let _ = renew_lease(&renew_api, &renew_name, &renew_identity, CLAIM_LEASE).await;
            }
        });
        Self {
            api,
            kind,
            name,
            identity,
            waited: started.elapsed(),
            waited_for,
            renewal,
        }
    }

    /// Shared or exclusive.
    pub fn kind(&self) -> HoldKind {
        self.kind
    }

    /// How long taking it waited.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// Whom it waited for last (a holder in words), if it waited.
    pub fn waited_for(&self) -> Option<&str> {
        self.waited_for.as_deref()
    }

    /// Gives the hold up (if it is still this holder's).
    ///
    /// # Errors
    /// The Lease cannot be read or deleted.
    pub async fn release(&self) -> Result<(), ClusterError> {
        self.renewal.abort();
        let api = &self.api;
        let current = api.get_opt(&self.name).await.map_err(api_error(format!(
            "read Lease {}/{}",
            api.namespace().unwrap_or_default(),
            self.name
        )))?;
        if let Some(lease) = current.filter(|l| lease_holder(l).as_deref() == Some(&self.identity))
        {
            delete_lease(api, &lease).await?;
        }
        Ok(())
    }
}

/// Whether `error` is the API server refusing the hold's Lease (a cluster where
/// the harness may not write Leases in [`CLAIMS_NAMESPACE`]).
pub fn is_forbidden(error: &ClusterError) -> bool {
    matches!(error, ClusterError::Api { source: kube::Error::Api(e), .. } if e.code == 403)
}

/// Creates `lease`, or takes its place if a withdrawn one of the same holder is
/// still there.
async fn create_lease(api: &kube::Api<Lease>, lease: &Lease) -> Result<(), ClusterError> {
    let name = lease.metadata.name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), lease).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(api_error(format!(
            "create Lease {}/{name}",
            api.namespace().unwrap_or_default()
        ))(e)),
    }
}

/// The exclusive Lease if another holder has it (an expired one is reaped).
async fn exclusive_of_another(
    api: &kube::Api<Lease>,
    identity: &str,
) -> Result<Option<Lease>, ClusterError> {
    let Some(lease) = api
        .get_opt(EXCLUSIVE_LEASE)
        .await
        .map_err(api_error(format!(
            "read Lease {}/{EXCLUSIVE_LEASE}",
            api.namespace().unwrap_or_default()
        )))?
    else {
        return Ok(None);
    };
    if lease_holder(&lease).as_deref() == Some(identity) {
        return Ok(None);
    }
    if expired(&lease, time::OffsetDateTime::now_utc()) {
        tracing::info!(holder = %holder_of(&lease), "reaping the exclusive hold of a run that stopped renewing it");
        delete_lease(api, &lease).await?;
        return Ok(None);
    }
    Ok(Some(lease))
}

/// Waits while another holder holds the cluster exclusively; returns whom it
/// waited for, if anyone.
async fn wait_while_exclusive(
    api: &kube::Api<Lease>,
    identity: &str,
    deadline: Deadline,
    started: Instant,
) -> Result<Option<String>, ClusterError> {
    let mut waited_for = None;
    while let Some(lease) = exclusive_of_another(api, identity).await? {
        let who = holder_of(&lease);
        if deadline.remaining() < POLL {
            return Err(ClusterError::Wait(WaitError::Timeout {
                what: "the cluster, held by a case that changes nodes".into(),
                waited: started.elapsed(),
                last: format!(
                    "held exclusively by {who} (Lease {}/{EXCLUSIVE_LEASE}); hint: cases that drain, lose or cut off nodes run alone, so give the others time (HARNESS_CLUSTER_WAIT, seconds), or run them in a stage of their own",
                    api.namespace().unwrap_or_default()
                ),
                cause: None,
            }));
        }
        if waited_for.as_deref() != Some(who.as_str()) {
            tracing::info!(holder = %who, "waiting for the cluster: held exclusively");
            waited_for = Some(who);
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(waited_for)
}

/// The live shared holds (expired ones, of killed runs, are reaped).
async fn shared_holds(api: &kube::Api<Lease>) -> Result<Vec<Lease>, ClusterError> {
    let selector = format!(
        "{}={},{HOLD_ANNOTATION}={}",
        labels::MANAGED_BY,
        labels::MANAGER,
        HoldKind::Shared.as_str()
    );
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(api_error(format!(
            "list Leases in {}",
            api.namespace().unwrap_or_default()
        )))?;
    let now = time::OffsetDateTime::now_utc();
    let mut live = Vec::new();
    for lease in list.items {
        if expired(&lease, now) {
            tracing::info!(holder = %holder_of(&lease), "reaping the shared hold of a run that stopped renewing it");
            delete_lease(api, &lease).await?;
        } else {
            live.push(lease);
        }
    }
    Ok(live)
}

fn holder_of(lease: &Lease) -> String {
    let kind = annotation(lease, HOLD_ANNOTATION).unwrap_or("?");
    format!("{} ({kind})", holder(lease))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_claim_has_its_own_identity_and_shared_lease() {
        let (a, b) = (
            Holder::named("r1", None, "x"),
            Holder::named("r1", None, "x"),
        );
        assert_ne!(a.identity(), b.identity());
        assert_ne!(a.shared_lease_name(), b.shared_lease_name());
        assert!(a.shared_lease_name().len() <= 63);
        let lease = a.lease(&a.shared_lease_name(), HoldKind::Shared);
        assert_eq!(annotation(&lease, HOLD_ANNOTATION), Some("shared"));
        assert_eq!(lease_holder(&lease), Some(a.identity()));
        assert!(!expired(&lease, time::OffsetDateTime::now_utc()));
        assert_eq!(holder_of(&lease), "case x of run r1 (CI job -) (shared)");
    }
}
