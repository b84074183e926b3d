//! `ChartDeployment`: a Helm release installed into a case's namespace, and what a
//! test does with it — upgrade, rollback, uninstall, status and history, the
//! release's pods, services and workloads, logs, exec and port-forwards.
//!
//! Installs and upgrades apply the release with helm, then watch every workload
//! of it until rolled out (Jobs: complete) — helm's own `--wait` polls every 2 s,
//! a watch sees readiness as it happens. Charts whose post-install/upgrade hooks
//! expect ready resources get helm's wait. Timeouts come from the case's deadline;
//! a failure says why by walking the release's workloads down to container states
//! and events. Before helm runs, the chart's render is read ([`prepare`]): its
//! cluster-scoped objects are claimed cluster-wide ([`crate::cluster::claims`]; the
//! runner deletes them after the case), and API versions the server lacks are
//! translated to an older version of the same kind with the same fields.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::ListParams;

use crate::charts::helm::Helm;
use crate::charts::options::Readiness;
use crate::cluster::explain::{explain_workload, selector_string};
use crate::cluster::holds;
use crate::cluster::namespace::TestNamespace;
use crate::cluster::net::PortForward;
use crate::cluster::status::{self, FailFast, WorkloadKind};
use crate::cluster::wait::{self, Deadline};
use crate::manifest::Manifests;
use crate::runner::Ctx;

mod error;
mod prepare;
mod release;
mod request;
pub mod translate;
pub use error::DeployError;
pub use release::{ReleaseStatus, Revision, TestPod, TestRun};
use request::Apply;
pub use request::{Install, Upgrade};

/// The standard label that ties objects to their Helm release.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// How long an install or upgrade may take when the case does not say.
const DEFAULT_DEPLOY_TIMEOUT: Duration = Duration::from_secs(300);
/// Time left to the case after helm's own timeout, for explaining a failure.
const EXPLAIN_MARGIN: Duration = Duration::from_secs(10);
/// Timeout of quick helm queries (status, history, get).
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The workloads among `manifests` (hooks excluded), sorted by kind and name.
fn workloads_of(manifests: &Manifests) -> Vec<(WorkloadKind, String)> {
    let mut found: Vec<(WorkloadKind, String)> = manifests
        .objects()
        .iter()
        .filter(|o| !o.is_hook())
        .filter_map(|o| Some((WorkloadKind::parse(&o.kind)?, o.name().to_owned())))
        .collect();
    found.sort();
    found
}

/// Whether a template of the chart (subcharts included) declares a hook that runs
/// after `action` (`post-install`, `post-upgrade`): such hooks expect the
/// release's resources to be ready, which only helm's own wait guarantees.
fn hooks_expect_ready(chart: &Path, action: &str) -> bool {
    let phase = format!("post-{action}");
    let mut dirs = vec![chart.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "tpl")
                && std::fs::read_to_string(&path)
                    .is_ok_and(|text| text.contains("helm.sh/hook") && text.contains(&phase))
            {
                return true;
            }
        }
    }
    false
}

/// How long an uninstall may wait before it says what holds it.
pub const HELD_AFTER: Duration = Duration::from_secs(20);

/// A Helm release in a test namespace.
#[derive(Clone)]
pub struct ChartDeployment {
    helm: Arc<Helm>,
    client: kube::Client,
    namespace: String,
    release: String,
    /// The chart the release is at (an upgrade may change it).
    chart: Arc<std::sync::Mutex<PathBuf>>,
    kube_context: Option<String>,
    deadline: Deadline,
    fail_fast: FailFast,
    /// The case, for claiming the cluster-scoped objects the release creates.
    ctx: Ctx,
}

impl std::fmt::Debug for ChartDeployment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChartDeployment")
            .field("release", &self.release)
            .field("namespace", &self.namespace)
            .field("chart", &self.chart_dir())
            .finish()
    }
}

impl ChartDeployment {
    /// Installs `request` into `namespace` (see [`Install::run`]).
    pub(crate) async fn install(
        ctx: &Ctx,
        namespace: &TestNamespace,
        request: Install,
    ) -> Result<Self, DeployError> {
        let helm = ctx.helm().await.map_err(|helm| DeployError::Helm {
            action: "install",
            release: request.release.clone(),
            helm: Box::new(helm),
            explanation: String::new(),
        })?;
        let deployment = Self {
            helm,
            client: namespace.client().clone(),
            namespace: namespace.name().to_owned(),
            release: request.release,
            chart: Arc::new(std::sync::Mutex::new(request.chart)),
            kube_context: ctx.config.kube_context.clone(),
            deadline: ctx.deadline(),
            fail_fast: ctx.config.fail_fast,
            ctx: ctx.clone(),
        };
        deployment
            .apply("install", &request.apply, deployment.chart_dir())
            .await?;
        Ok(deployment)
    }

    /// `helm upgrade` with `request` (values are not reused: give all of them).
    ///
    /// ```no_run
    /// # async fn example(web: testware::ChartDeployment) -> Result<(), testware::DeployError> {
    /// use testware::Upgrade;
    /// web.upgrade(Upgrade::default().set("replicaCount", "2")).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As for [`Install::run`].
    pub async fn upgrade(&self, request: Upgrade) -> Result<(), DeployError> {
        let chart = request.chart.unwrap_or_else(|| self.chart_dir());
        self.apply("upgrade", &request.apply, chart.clone()).await?;
        *self.chart.lock().unwrap_or_else(|p| p.into_inner()) = chart;
        Ok(())
    }

    /// The directory of the chart the release is at.
    pub fn chart_dir(&self) -> PathBuf {
        self.chart.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn apply(
        &self,
        action: &'static str,
        request: &Apply,
        chart: PathBuf,
    ) -> Result<(), DeployError> {
        let prepared = self.prepare(request, &chart).await?;
        let started = std::time::Instant::now();
        let mut args: Vec<OsString> = vec![
            action.into(),
            self.release.clone().into(),
            chart.clone().into(),
        ];
        args.extend(request.values.args(&chart));
        let major = self.helm.version().major;
        args.extend(prepared.helm_args(major));
        let timeout = self.helm_timeout(request.timeout);
        let readiness = match request.readiness {
            Readiness::Watch if hooks_expect_ready(&chart, action) => Readiness::Helm,
            readiness => readiness,
        };
        match readiness {
            Readiness::Helm => args.extend(["--wait".into(), "--wait-for-jobs".into()]),
            // The release as JSON carries its manifest: no `helm get manifest` needed.
            Readiness::Watch => args.extend(["-o".into(), "json".into()]),
            Readiness::Applied => {}
        }
        let policy = request.fail_fast.unwrap_or(self.fail_fast);
        let helm = self.run_explained_with(action, args, prepared.helm_env(major), timeout);
        // helm's own wait cannot be told to stop early: an install's helm is
        // stopped at a stuck pod of the release (the release is left
        // pending-install, in a namespace that goes). An upgrade's is not: a
        // killed upgrade would block the rollback a case may test next.
        let out = if readiness == Readiness::Helm && action == "install" && policy.enabled {
            let pods: kube::Api<Pod> = self.api();
            let selector = format!("{INSTANCE_LABEL}={}", self.release);
            tokio::select! {
                out = helm => out,
                (pod, found) = wait::first_stuck_pod(&pods, &selector, policy) => {
                    let what = format!("release {} to be ready (helm --wait)", self.release);
                    let why = wait::stuck_error(&pods, what, started.elapsed(), pod, found).await;
                    return Err(DeployError::NotReady {
                        action,
                        release: self.release.clone(),
                        why: Box::new(why),
                    });
                }
            }
        } else {
            helm.await
        };
        if let Some(claim) = &prepared.claim {
            claim.label_objects().await;
        }
        let out = out?;
        if readiness == Readiness::Watch {
            let release: serde_json::Value = self.parse(action, &out)?;
            let manifests = Manifests::parse(release["manifest"].as_str().unwrap_or_default())
                .map_err(|e| DeployError::Output {
                    what: action,
                    release: self.release.clone(),
                    detail: e.to_string(),
                })?;
            let left = timeout.saturating_sub(started.elapsed());
            let waits = workloads_of(&manifests)
                .into_iter()
                .map(|(kind, name)| async move {
                    wait::rolled_out_failing_fast(
                        &self.client,
                        &self.namespace,
                        kind,
                        &name,
                        left,
                        policy,
                    )
                    .await
                });
            futures::future::try_join_all(waits)
                .await
                .map_err(|why| DeployError::NotReady {
                    action,
                    release: self.release.clone(),
                    why: Box::new(why),
                })?;
        }
        Ok(())
    }

    /// `helm rollback` to `revision` (`None`: the previous one), waiting for the
    /// rolled-back workloads.
    ///
    /// # Errors
    /// As for [`Install::run`].
    pub async fn rollback(&self, revision: Option<u32>) -> Result<(), DeployError> {
        let mut args: Vec<OsString> = vec!["rollback".into(), self.release.clone().into()];
        if let Some(r) = revision {
            args.push(r.to_string().into());
        }
        args.extend(["--wait".into(), "--wait-for-jobs".into()]);
        let timeout = self.helm_timeout(None);
        self.run_explained("rollback", args, timeout).await?;
        Ok(())
    }

    /// `helm uninstall --wait`, then waits until no pod of the release is left.
    /// An uninstall still waiting after [`HELD_AFTER`] says (as a warning in the
    /// case's timeline) which of the release's objects remain and which
    /// finalizers or owners hold them; so does its error. The harness leaves
    /// them be: how a release goes is what an uninstall case tests.
    ///
    /// # Errors
    /// helm fails (with what remains), or pods remain until the deadline.
    pub async fn uninstall(&self) -> Result<(), DeployError> {
        self.uninstall_within(None).await
    }

    /// [`ChartDeployment::uninstall`] with helm's timeout `timeout` (default: the
    /// deploy timeout), capped by the case's deadline.
    ///
    /// # Errors
    /// As for [`ChartDeployment::uninstall`].
    pub async fn uninstall_within(&self, timeout: Option<Duration>) -> Result<(), DeployError> {
        let timeout = self.helm_timeout(timeout);
        let objects = self.object_refs().await;
        let args = vec![
            "uninstall".into(),
            self.release.clone().into(),
            "--wait".into(),
        ];
        let helm = self.run_explained("uninstall", args, timeout);
        futures::pin_mut!(helm);
        let uninstalled = tokio::select! {
            done = &mut helm => done,
            () = tokio::time::sleep(HELD_AFTER) => {
                let held = holds::remaining_of(&self.client, &objects).await;
                if !held.is_empty() {
                    tracing::warn!(
                        release = self.release,
                        "the uninstall still waits after {} s: {}",
                        HELD_AFTER.as_secs(),
                        holds::describe(&held)
                    );
                }
                helm.await
            }
        };
        if let Err(DeployError::Helm {
            action,
            release,
            helm,
            ..
        }) = uninstalled
        {
            let held = holds::remaining_of(&self.client, &objects).await;
            return Err(DeployError::Helm {
                action,
                release,
                helm,
                explanation: if held.is_empty() {
                    String::new()
                } else {
                    holds::describe(&held)
                },
            });
        }
        uninstalled?;
        let pods: kube::Api<Pod> = self.api();
        let selector = format!("{INSTANCE_LABEL}={}", self.release);
        wait::wait_until(
            format!("the pods of release {} to be gone", self.release),
            self.deadline.cap(timeout),
            || async {
                let left = pods
                    .list_metadata(&ListParams::default().labels(&selector))
                    .await
                    .map_err(|e| e.to_string())?;
                match left.items.len() {
                    0 => Ok(()),
                    n => Err(format!("{n} pods left")),
                }
            },
        )
        .await?;
        Ok(())
    }

    /// `helm status`: the release's state and revision.
    ///
    /// # Errors
    /// helm fails (e.g. the release does not exist), or its output is unreadable.
    pub async fn status(&self) -> Result<ReleaseStatus, DeployError> {
        let out = self
            .query("status", &["status", &self.release, "-o", "json"])
            .await?;
        let json: serde_json::Value = self.parse("status", &out)?;
        Ok(ReleaseStatus {
            status: json["info"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            revision: json["version"].as_u64().unwrap_or(0) as u32,
        })
    }

    /// `helm history`, oldest revision first.
    ///
    /// # Errors
    /// helm fails, or its output is unreadable.
    pub async fn history(&self) -> Result<Vec<Revision>, DeployError> {
        let out = self
            .query("history", &["history", &self.release, "-o", "json"])
            .await?;
        self.parse("history", &out)
    }

    /// `helm get manifest`: the objects of the current revision as YAML.
    ///
    /// # Errors
    /// helm fails.
    pub async fn manifest(&self) -> Result<String, DeployError> {
        self.query("get manifest", &["get", "manifest", &self.release])
            .await
    }

    /// `helm get values --all`: the computed values of the current revision.
    ///
    /// # Errors
    /// helm fails, or its output is unreadable.
    pub async fn values(&self) -> Result<serde_json::Value, DeployError> {
        let out = self
            .query(
                "get values",
                &["get", "values", "--all", &self.release, "-o", "json"],
            )
            .await?;
        self.parse("get values", &out)
    }

    /// The workloads of the current revision (from its manifest), sorted by kind and name.
    ///
    /// # Errors
    /// helm fails, or the manifest does not parse.
    pub async fn workloads(&self) -> Result<Vec<(WorkloadKind, String)>, DeployError> {
        Ok(workloads_of(&self.manifests().await?))
    }

    /// The objects of the release's current manifest (none if it cannot be read).
    async fn object_refs(&self) -> Vec<holds::ObjectRef> {
        let Ok(manifests) = self.manifests().await else {
            return Vec::new();
        };
        manifests
            .objects()
            .iter()
            .map(|o| holds::ObjectRef {
                api_version: o.api_version.clone(),
                kind: o.kind.clone(),
                name: o.name().to_owned(),
                namespace: o
                    .metadata()
                    .namespace
                    .clone()
                    .unwrap_or_else(|| self.namespace.clone()),
            })
            .collect()
    }

    async fn manifests(&self) -> Result<Manifests, DeployError> {
        let text = self.manifest().await?;
        Manifests::parse(&text).map_err(|e| DeployError::Output {
            what: "get manifest",
            release: self.release.clone(),
            detail: e.to_string(),
        })
    }

    /// The release's pods: those with the standard instance label, or — for charts
    /// that lack it — those matching the pod labels of the release's workloads.
    ///
    /// # Errors
    /// Listing fails, or (fallback) the manifest cannot be read.
    pub async fn pods(&self) -> Result<Vec<Pod>, DeployError> {
        let pods: kube::Api<Pod> = self.api();
        let by_label = self
            .list(&pods, &format!("{INSTANCE_LABEL}={}", self.release))
            .await?;
        if !by_label.is_empty() {
            return Ok(by_label);
        }
        let manifests = self.manifests().await?;
        let mut found: Vec<Pod> = Vec::new();
        for template in manifests.pod_templates() {
            let selector = selector_string(&template.labels());
            if selector.is_empty() {
                continue;
            }
            for pod in self.list(&pods, &selector).await? {
                if !found.iter().any(|f| f.metadata.uid == pod.metadata.uid) {
                    found.push(pod);
                }
            }
        }
        Ok(found)
    }

    /// Where the release's pods run, per node and per node group (nodes grouped
    /// by `group_label`, e.g. [`crate::cluster::nodes::GROUP_LABEL`]).
    ///
    /// # Errors
    /// As for [`ChartDeployment::pods`], or the nodes cannot be listed.
    pub async fn placement(
        &self,
        group_label: &str,
    ) -> Result<crate::cluster::nodes::Placement, DeployError> {
        let pods = self.pods().await?;
        let nodes = crate::cluster::nodes::nodes(&self.client, group_label).await?;
        Ok(crate::cluster::nodes::Placement::of(&pods, &nodes))
    }

    /// The names of the release's pods that are Ready, sorted.
    ///
    /// # Errors
    /// As for [`ChartDeployment::pods`].
    pub async fn ready_pods(&self) -> Result<Vec<String>, DeployError> {
        let mut names: Vec<String> = self
            .pods()
            .await?
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none() && status::is_ready(p))
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        Ok(names)
    }

    /// The release's Services (by the instance label, else by the manifest's names).
    ///
    /// # Errors
    /// Listing fails, or (fallback) the manifest cannot be read.
    pub async fn services(&self) -> Result<Vec<Service>, DeployError> {
        let services: kube::Api<Service> = self.api();
        let by_label = self
            .list(&services, &format!("{INSTANCE_LABEL}={}", self.release))
            .await?;
        if !by_label.is_empty() {
            return Ok(by_label);
        }
        let manifests = self.manifests().await?;
        let mut found = Vec::new();
        for object in manifests.objects().iter().filter(|o| o.kind == "Service") {
            if let Some(svc) =
                services
                    .get_opt(object.name())
                    .await
                    .map_err(crate::cluster::api_error(format!(
                        "read Service {}",
                        object.name()
                    )))?
            {
                found.push(svc);
            }
        }
        Ok(found)
    }

    /// Waits until every workload of the release has rolled out (Jobs: completed).
    ///
    /// # Errors
    /// An explained timeout or a failed Job.
    pub async fn wait_rolled_out(&self, timeout: Duration) -> Result<(), DeployError> {
        let timeout = self.deadline.cap(timeout);
        let started = std::time::Instant::now();
        for (kind, name) in self.workloads().await? {
            let left = timeout.saturating_sub(started.elapsed());
            let policy = self.fail_fast;
            wait::rolled_out_failing_fast(&self.client, &self.namespace, kind, &name, left, policy)
                .await?;
        }
        Ok(())
    }

    /// `helm test`: runs the chart's test hooks (what `ct install` does after an
    /// install) and returns every test pod with its phase and log. Test pods
    /// stay in the namespace, so a failure bundle has them too.
    ///
    /// # Errors
    /// [`DeployError::TestFailed`] with each test pod's phase and log.
    pub async fn test(&self) -> Result<TestRun, DeployError> {
        let timeout = self.helm_timeout(None);
        let args = self.scoped(vec!["test".into(), self.release.clone().into()], timeout);
        let result = self.helm.run(args, timeout + Duration::from_secs(15)).await;
        let pods = self.test_pods().await?;
        match result {
            Ok(_) => Ok(pods),
            Err(helm) => Err(DeployError::TestFailed {
                release: self.release.clone(),
                helm: Box::new(helm),
                pods,
            }),
        }
    }

    /// The release's test hook pods (from `helm get hooks`), with phase and log.
    async fn test_pods(&self) -> Result<TestRun, DeployError> {
        let hooks = self
            .query("get hooks", &["get", "hooks", &self.release])
            .await?;
        let hooks = Manifests::parse(&hooks).map_err(|e| DeployError::Output {
            what: "get hooks",
            release: self.release.clone(),
            detail: e.to_string(),
        })?;
        let api = self.api::<Pod>();
        let mut run = TestRun::default();
        for hook in hooks.objects().iter().filter(|o| o.kind == "Pod") {
            let is_test = hook
                .metadata()
                .annotations
                .as_ref()
                .and_then(|a| a.get("helm.sh/hook"))
                .is_some_and(|h| h.split(',').any(|p| p.trim().starts_with("test")));
            if !is_test {
                continue;
            }
            let name = hook.name().to_owned();
            let pod = api.get_opt(&name).await.ok().flatten();
            let phase = pod
                .as_ref()
                .and_then(|p| p.status.as_ref())
                .and_then(|s| s.phase.clone())
                .unwrap_or_else(|| "unknown".into());
            let containers: Vec<String> = pod
                .as_ref()
                .and_then(|p| p.spec.as_ref())
                .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default();
            let mut log = String::new();
            for container in &containers {
                let text = self
                    .logs(&name, Some(container), false)
                    .await
                    .unwrap_or_else(|e| format!("(log unreadable: {})", crate::error_chain(&e)));
                for line in text.lines() {
                    if containers.len() > 1 {
                        log.push_str(&format!("{container}: "));
                    }
                    log.push_str(line);
                    log.push('\n');
                }
            }
            run.pods.push(TestPod { name, phase, log });
        }
        run.pods.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(run)
    }

    /// The log of `container` (`None`: the pod's only container) of `pod`, or of
    /// the container instance before its last restart when `previous` is set.
    ///
    /// # Errors
    /// The API server refuses (no such pod or container, no previous instance).
    pub async fn logs(
        &self,
        pod: &str,
        container: Option<&str>,
        previous: bool,
    ) -> Result<String, DeployError> {
        let params = kube::api::LogParams {
            container: container.map(str::to_owned),
            previous,
            ..Default::default()
        };
        Ok(self
            .api::<Pod>()
            .logs(pod, &params)
            .await
            .map_err(crate::cluster::api_error(format!(
                "read the log of pod {pod}"
            )))?)
    }

    /// Runs `command` in `pod`; returns its stdout.
    ///
    /// # Errors
    /// The exec fails or the command exits non-zero (with its stderr).
    pub async fn exec(&self, pod: &str, command: &[&str]) -> Result<String, DeployError> {
        Ok(crate::cluster::net::exec(&self.api(), pod, command).await?)
    }

    /// Forwards a free local port to `port` of `target` (`pod/<name>` or `svc/<name>`).
    ///
    /// # Errors
    /// An unknown target form, or the target cannot be forwarded.
    pub async fn port_forward(&self, target: &str, port: u16) -> Result<PortForward, DeployError> {
        let forward = match target.split_once('/') {
            Some(("pod", name)) => {
                PortForward::to_pod(&self.client, &self.namespace, name, port).await?
            }
            Some(("svc" | "service", name)) => {
                PortForward::to_service(&self.client, &self.namespace, name, port).await?
            }
            _ => {
                return Err(DeployError::Cluster(crate::cluster::ClusterError::Exec {
                    command: format!("port-forward {target} {port}"),
                    pod: target.to_owned(),
                    detail: "the target must be pod/<name> or svc/<name>".into(),
                }))
            }
        };
        Ok(forward)
    }

    /// The release name.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// The namespace it is installed in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The client it uses.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// A namespaced API in the release's namespace.
    pub fn api<K>(&self) -> kube::Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        kube::Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// helm's `--timeout`: the requested one (default 5 min), capped so the case
    /// still has [`EXPLAIN_MARGIN`] before its deadline.
    fn helm_timeout(&self, requested: Option<Duration>) -> Duration {
        let left = self.deadline.remaining().saturating_sub(EXPLAIN_MARGIN);
        requested
            .unwrap_or(DEFAULT_DEPLOY_TIMEOUT)
            .min(left)
            .max(Duration::from_secs(1))
    }

    /// `args` with the release's namespace, helm's `--timeout` and the context.
    fn scoped(&self, mut args: Vec<OsString>, timeout: Duration) -> Vec<OsString> {
        args.extend([
            "--namespace".into(),
            self.namespace.clone().into(),
            "--timeout".into(),
            format!("{}s", timeout.as_secs().max(1)).into(),
        ]);
        if let Some(context) = &self.kube_context {
            args.extend(["--kube-context".into(), context.into()]);
        }
        args
    }

    async fn run_explained(
        &self,
        action: &'static str,
        args: Vec<OsString>,
        timeout: Duration,
    ) -> Result<String, DeployError> {
        self.run_explained_with(action, args, Vec::new(), timeout)
            .await
    }

    /// [`Self::run_explained`] with `env` added to helm's environment.
    async fn run_explained_with(
        &self,
        action: &'static str,
        args: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
        timeout: Duration,
    ) -> Result<String, DeployError> {
        let args = self.scoped(args, timeout);
        // helm gets a few seconds beyond its own timeout to report it.
        let helm = self
            .helm
            .run_with_env(args, env, timeout + Duration::from_secs(15));
        match helm.await {
            Ok(out) => Ok(out),
            Err(helm) => Err(DeployError::Helm {
                action,
                release: self.release.clone(),
                helm: Box::new(helm),
                explanation: self.explain().await,
            }),
        }
    }

    /// Why the release is not ready: each workload that has not rolled out, explained.
    pub async fn explain(&self) -> String {
        let Ok(workloads) = self.workloads().await else {
            return String::new();
        };
        let mut parts = Vec::new();
        for (kind, name) in workloads {
            let ready = wait::workload_state(&self.client, &self.namespace, kind, &name).await
                == status::State::Done;
            if !ready {
                let why = explain_workload(&self.client, &self.namespace, kind, &name).await;
                parts.push(format!("{} {name}: {why}", kind.as_str()));
            }
        }
        parts.join("\n     ")
    }

    async fn query(&self, what: &'static str, args: &[&str]) -> Result<String, DeployError> {
        let mut argv: Vec<OsString> = args.iter().map(Into::into).collect();
        argv.extend(["--namespace".into(), self.namespace.clone().into()]);
        if let Some(context) = &self.kube_context {
            argv.extend(["--kube-context".into(), context.into()]);
        }
        self.helm
            .run(argv, QUERY_TIMEOUT)
            .await
            .map_err(|helm| DeployError::Helm {
                action: what,
                release: self.release.clone(),
                helm: Box::new(helm),
                explanation: String::new(),
            })
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        text: &str,
    ) -> Result<T, DeployError> {
        serde_json::from_str(text).map_err(|e| DeployError::Output {
            what,
            release: self.release.clone(),
            detail: e.to_string(),
        })
    }

    async fn list<K>(&self, api: &kube::Api<K>, selector: &str) -> Result<Vec<K>, DeployError>
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        Ok(api
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(crate::cluster::api_error(format!(
                "list objects with {selector}"
            )))?
            .items)
    }
}

impl crate::charts::chart::ChartSet {
    /// A request to install chart `name` of this set (see [`Install`]); the
    /// release is named after the chart unless [`Install::release`] says otherwise.
    pub fn install(&self, name: &str) -> Install {
        Install::chart(self.dir(name))
    }
}
