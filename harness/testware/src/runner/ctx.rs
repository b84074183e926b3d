//! `Ctx`: what a running case knows about its run, and what the runner cleans up
//! after it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Tier;
use crate::charts::chart::ChartSet;
use crate::cluster::namespace::TestNamespace;
use crate::cluster::wait::Deadline;
use crate::cluster::{self, ClusterUnavailable};
use crate::config::{file_safe, RunConfig};

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
    pub(crate) deadline: Deadline,
    pub(crate) charts: Option<Arc<ChartSet>>,
    pub(crate) scope: Arc<CaseScope>,
}

/// What the runner cleans up after a case.
#[derive(Default)]
pub(crate) struct CaseScope {
    client: tokio::sync::OnceCell<kube::Client>,
    helm: tokio::sync::OnceCell<Arc<crate::charts::helm::Helm>>,
    pub(crate) namespaces: Mutex<Vec<Arc<TestNamespace>>>,
    /// Cluster-scoped objects the case's releases claimed ([`crate::cluster::claims`]).
    pub(crate) claims: Mutex<Vec<Arc<crate::cluster::claims::Claim>>>,
    /// The case's hold on the cluster ([`crate::cluster::sharing`]), taken by
    /// the runner before the body and given up after the cleanup.
    pub(crate) hold: Mutex<Option<Arc<crate::cluster::sharing::ClusterHold>>>,
    /// Whether the case is marked to hold the cluster alone (it may change nodes).
    pub(crate) exclusive: std::sync::atomic::AtomicBool,
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
            charts: None,
            scope: Arc::default(),
        }
    }

    /// The same context with `charts` as its chart set (for detached contexts).
    pub fn with_charts(mut self, charts: Arc<ChartSet>) -> Self {
        self.charts = Some(charts);
        self
    }

    /// The suite's chart set (see [`super::Suite::charts`]).
    ///
    /// # Errors
    /// The suite was not given one.
    pub fn charts(&self) -> anyhow::Result<Arc<ChartSet>> {
        self.charts.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "suite {} has no chart set (hint: give it one with `Suite::new(..).charts(\"<charts directory>\")`)",
                self.suite
            )
        })
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
    pub async fn helm(
        &self,
    ) -> Result<Arc<crate::charts::helm::Helm>, crate::charts::helm::HelmError> {
        self.scope
            .helm
            .get_or_try_init(|| async {
                crate::charts::helm::Helm::locate(&self.config.tools)
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// The ways to change nodes (lose, cut off, cordon, drain), for a case that
    /// holds the cluster alone: one marked
    /// [`EXCLUSIVE_MARK`](crate::cluster::faults::EXCLUSIVE_MARK).
    ///
    /// # Errors
    /// The case is not marked so (the message says how), or no cluster.
    pub async fn node_faults(&self) -> anyhow::Result<crate::cluster::faults::NodeFaults> {
        if !self
            .scope
            .exclusive
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(crate::cluster::faults::FaultError::NotExclusive {
                case: format!("case {}", self.case),
            }
            .into());
        }
        // None only when holds are off (`HARNESS_CLUSTER_HOLDS=0`).
        let hold = self
            .scope
            .hold
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let client = self.client().await?;
        Ok(crate::cluster::faults::NodeFaults::new(
            hold,
            client,
            self.config.clone(),
        ))
    }

    /// A fresh [`TestNamespace`] for this case. The runner deletes it (and awaits
    /// the deletion) when the case ends — passed, failed, panicked or timed out —
    /// after writing a failure bundle if the case failed, and keeps it instead when
    /// `--keep-namespace` asks for that.
    ///
    /// # Errors
    /// No cluster, or the namespace cannot be created.
    pub async fn create_namespace(&self) -> anyhow::Result<Arc<TestNamespace>> {
        self.create_namespace_with(self.config.pod_security).await
    }

    /// [`Ctx::create_namespace`] enforcing Pod Security level `level` instead of
    /// the run's (`HARNESS_POD_SECURITY`): `Privileged` for a chart that needs
    /// host access (a log shipper reading the node's files), `Restricted` to
    /// show a chart runs hardened.
    ///
    /// # Errors
    /// As [`Ctx::create_namespace`].
    pub async fn create_namespace_with(
        &self,
        level: crate::cluster::pod_security::PodSecurity,
    ) -> anyhow::Result<Arc<TestNamespace>> {
        let client = self.client().await?;
        let ns =
            Arc::new(TestNamespace::create_with(&client, &self.config, &self.case, level).await?);
        self.scope
            .namespaces
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(ns.clone());
        Ok(ns)
    }
}
