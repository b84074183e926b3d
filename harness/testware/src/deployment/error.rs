//! What can go wrong with a deployment, each error carrying the explanation a
//! failed wait or helm call produced.

use crate::charts::helm::HelmError;
use crate::cluster::wait::WaitError;

use super::TestRun;

/// Errors of deployments.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// helm failed or timed out; `explanation` walks the release's workloads.
    #[error("{action} of release {release} failed: {helm}{}", explain_suffix(.explanation))]
    Helm {
        /// install, upgrade, rollback, uninstall, …
        action: &'static str,
        /// The release.
        release: String,
        /// helm's error (command, status, stderr), shown in the message (not
        /// repeated as a source).
        helm: Box<HelmError>,
        /// Why the release's workloads are not ready, if any are not.
        explanation: String,
    },
    /// helm applied the release, but its workloads did not become ready (or a Job
    /// failed); the wait's error explains why.
    #[error("{action} of release {release} failed: {why}")]
    NotReady {
        /// install or upgrade.
        action: &'static str,
        /// The release.
        release: String,
        /// The wait that ended badly, explained (in the message, not repeated
        /// as a source).
        why: Box<WaitError>,
    },
    /// `helm test` failed: a test pod did not succeed (or could not run).
    #[error("helm test of release {release} failed: {helm}\n{pods}")]
    TestFailed {
        /// The release.
        release: String,
        /// helm's error (command, status, stderr), shown in the message.
        helm: Box<HelmError>,
        /// Each test pod with its phase and log, as [`TestRun`] shows them.
        pods: TestRun,
    },
    /// helm printed something the harness could not read.
    #[error("cannot read the output of helm {what} for release {release}: {detail}")]
    Output {
        /// Which query.
        what: &'static str,
        /// The release.
        release: String,
        /// The parse error.
        detail: String,
    },
    /// A cluster request failed.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// A wait did not end well.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// `explanation` as the tail of a message (nothing when empty).
fn explain_suffix(explanation: &str) -> String {
    if explanation.is_empty() {
        String::new()
    } else {
        format!("\nwhy: {explanation}")
    }
}
