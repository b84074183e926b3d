//! What the run found about each tier's requirement (a cluster, a container
//! engine): probed once by the suite before the first case runs, read by each
//! case's execution, so the two exchange this value instead of naming each other.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use super::Tier;

/// A tier whose requirement is not met, with why and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmet {
    /// The tier whose cases cannot run.
    pub tier: Tier,
    /// Why, with a hint (the probe's message).
    pub reason: String,
}

/// The requirements' outcome, shared by every case of a suite and settled once.
/// A case that asks before it is settled sees every requirement met (only
/// `--list` runs no probe, and it runs no case either).
#[derive(Debug, Clone, Default)]
pub struct Requirements(Arc<OnceLock<HashMap<Tier, Unmet>>>);

impl Requirements {
    /// Records the outcome of the probes; later calls change nothing.
    pub(crate) fn settle(&self, unmet: impl IntoIterator<Item = Unmet>) {
        let _ = self.0.set(unmet.into_iter().map(|u| (u.tier, u)).collect());
    }

    /// Why `tier`'s requirement is not met, if it is not.
    pub fn unmet(&self, tier: Tier) -> Option<&Unmet> {
        self.0.get()?.get(&tier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_once_and_read_per_tier() {
        let requirements = Requirements::default();
        assert_eq!(requirements.unmet(Tier::ChartDeploy), None);
        let no_cluster = Unmet {
            tier: Tier::ChartDeploy,
            reason: "no kubeconfig".into(),
        };
        requirements.settle([no_cluster.clone()]);
        requirements.settle([]);
        assert_eq!(requirements.unmet(Tier::ChartDeploy), Some(&no_cluster));
        assert_eq!(requirements.unmet(Tier::Component), None);
    }
}
