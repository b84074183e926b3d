//! What helm says about a release: its status, its history and a `helm test` run.

/// `helm status` of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStatus {
    /// deployed, failed, superseded, pending-install, …
    pub status: String,
    /// The release revision.
    pub revision: u32,
}

/// One line of `helm history`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Revision {
    /// The revision number.
    pub revision: u32,
    /// deployed, superseded, failed, …
    pub status: String,
    /// `name-version` of the chart.
    pub chart: String,
    /// What happened (Install complete, Upgrade complete, Rollback to 1, …).
    pub description: String,
}

/// What `helm test` ran: every test hook pod of the release.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestRun {
    /// The test pods, by name.
    pub pods: Vec<TestPod>,
}

/// One test hook pod after `helm test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPod {
    /// The pod's name.
    pub name: String,
    /// Succeeded, Failed, … (`unknown` when the pod is gone).
    pub phase: String,
    /// Its log (every container's, each line prefixed with the container's name
    /// when it has more than one), or why it could not be read.
    pub log: String,
}

impl std::fmt::Display for TestRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pods.is_empty() {
            return write!(f, "no test pods");
        }
        for pod in &self.pods {
            writeln!(f, "test pod {} ({}):", pod.name, pod.phase)?;
            for line in pod.log.lines() {
                writeln!(f, "  | {line}")?;
            }
        }
        Ok(())
    }
}
