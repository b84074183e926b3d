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
    /// The chart uses API versions the server does not serve, with no older
    /// version of the same kind that takes the same fields.
    #[error("install of release {release} cannot work: the server ({server}) does not serve {}, and no older version of the same kind takes the same fields (hint: choose the version from .Capabilities.APIVersions in the chart, or test on a newer Kubernetes)", objects.join(", "))]
    Unserved {
        /// The release.
        release: String,
        /// The server's version.
        server: String,
        /// `Kind/name apiVersion` of each object.
        objects: Vec<String>,
    },
    /// The post-renderer that translates API versions could not be written.
    #[error("cannot write the API-version post-renderer for release {release}: {source}")]
    PostRenderer {
        /// The release.
        release: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// `explanation` as the tail of a message (nothing when empty).
fn explain_suffix(explanation: &str) -> String {
    if explanation.is_empty() {
        String::new()
    } else {
        format!("\nwhy: {explanation}")
    }
}
