//! Install and upgrade requests: what to apply, built up first and run once, so
//! the call site names the release and the chart, and carries only options that
//! an install or upgrade understands.

use std::path::PathBuf;
use std::time::Duration;

use super::{ChartDeployment, DeployError};
use crate::charts::options::{Readiness, Values};
use crate::cluster::namespace::TestNamespace;
use crate::cluster::status::FailFast;
use crate::runner::Ctx;

/// What an install and an upgrade both apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Apply {
    pub(super) values: Values,
    pub(super) timeout: Option<Duration>,
    pub(super) readiness: Readiness,
    pub(super) fail_fast: Option<FailFast>,
}

/// The setters an install and an upgrade share, for a type with an `apply` field.
macro_rules! apply_setters {
    ($request:ty, $action:literal) => {
        impl $request {
            /// Adds a values file; a relative path is taken from the chart directory.
            pub fn values(mut self, file: impl Into<PathBuf>) -> Self {
                self.apply.values = self.apply.values.file(file);
                self
            }

            /// Adds a `--set key=value`.
            pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
                self.apply.values = self.apply.values.set(key, value);
                self
            }

            #[doc = concat!("Gives the ", $action, " `values` (replacing any given before).")]
            pub fn with_values(mut self, values: Values) -> Self {
                self.apply.values = values;
                self
            }

            #[doc = concat!("Caps the time the release may take to be up after the ", $action, " (always capped by the case's deadline).")]
            pub fn timeout(mut self, timeout: Duration) -> Self {
                self.apply.timeout = Some(timeout);
                self
            }

            #[doc = concat!("Chooses how the ", $action, " decides the release is up.")]
            pub fn readiness(mut self, readiness: Readiness) -> Self {
                self.apply.readiness = readiness;
                self
            }

            #[doc = concat!("When the wait after the ", $action, " gives up on a stuck pod (default: the run's, `HARNESS_CRASH_LOOP_RESTARTS` and `HARNESS_STUCK_SETTLE`).")]
            pub fn fail_fast(mut self, policy: FailFast) -> Self {
                self.apply.fail_fast = Some(policy);
                self
            }

            /// Returns as soon as helm has applied the objects (no wait at all).
            pub fn no_wait(self) -> Self {
                self.readiness(Readiness::Applied)
            }
        }
    };
}

/// A request to install a chart as a release into a test namespace.
///
/// ```no_run
/// # async fn example(ctx: testware::Ctx, ns: testware::TestNamespace) -> Result<(), testware::DeployError> {
/// use testware::Install;
/// let web = Install::chart("charts/hello")
///     .release("web")
///     .values("ci/two-replicas.yaml")
///     .run(&ctx, &ns)
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "an install request does nothing until `run`"]
pub struct Install {
    pub(super) chart: PathBuf,
    pub(super) release: String,
    pub(super) apply: Apply,
}

impl Install {
    /// Installs the chart in directory `dir`, as a release named after that
    /// directory unless [`Install::release`] names it.
    pub fn chart(dir: impl Into<PathBuf>) -> Self {
        let chart = dir.into();
        let release = chart
            .file_name()
            .map_or_else(|| "release".into(), |n| n.to_string_lossy().into_owned());
        Self {
            chart,
            release,
            apply: Apply::default(),
        }
    }

    /// Names the release.
    pub fn release(mut self, name: impl Into<String>) -> Self {
        self.release = name.into();
        self
    }

    /// The release's name.
    pub fn release_name(&self) -> &str {
        &self.release
    }

    /// `helm install <release> <chart> --namespace <ns>` with the values, then
    /// waits as [`Readiness`] says, the timeout capped by the case's deadline.
    ///
    /// # Errors
    /// helm is missing or fails; a failed wait is explained (see [`DeployError`]).
    pub async fn run(
        self,
        ctx: &Ctx,
        namespace: &TestNamespace,
    ) -> Result<ChartDeployment, DeployError> {
        ChartDeployment::install(ctx, namespace, self).await
    }
}

/// A request to upgrade a release: all its values (nothing is reused from the
/// install), and how long and how to wait.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use = "an upgrade request does nothing until passed to `ChartDeployment::upgrade`"]
pub struct Upgrade {
    pub(super) apply: Apply,
    pub(super) chart: Option<PathBuf>,
}

impl Upgrade {
    /// Upgrades to the chart in directory `dir` instead of the release's
    /// current one — from a chart as it was at a git ref
    /// ([`crate::charts::changes::chart_at`]) to the working tree's; later
    /// upgrades use it too, and relative values files are taken from it.
    pub fn chart(mut self, dir: impl Into<PathBuf>) -> Self {
        self.chart = Some(dir.into());
        self
    }
}

apply_setters!(Install, "install");
apply_setters!(Upgrade, "upgrade");
