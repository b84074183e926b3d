//! The Kubernetes and etcd releases the embedded cluster runs: which ones, and
//! where their binaries are cached once built from the Go module proxy
//! (`assets/build-go-release.sh`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The patch release of each Kubernetes minor the cluster offers, oldest first:
/// the newest the Go module proxy served when it was pinned.
pub const KUBERNETES_RELEASES: [Kubernetes; 4] = [
    Kubernetes::new(34, 4),
    Kubernetes::new(35, 4),
    Kubernetes::new(36, 3),
    Kubernetes::new(37, 2),
];

/// The release `testware cluster up` runs unless told otherwise: the newest.
pub const DEFAULT_KUBERNETES: Kubernetes = KUBERNETES_RELEASES[KUBERNETES_RELEASES.len() - 1];

/// The etcd every offered Kubernetes runs on (the 3.6 line upstream ships with
/// 1.34 and later; Kubernetes needs >= 3.5.13 for consistent reads from its cache).
pub const ETCD_VERSION: &str = "v3.6.16";

/// A Kubernetes release, `v1.<minor>.<patch>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kubernetes {
    /// The minor version (flags and configuration differ between minors).
    pub minor: u32,
    /// The patch version.
    pub patch: u32,
}

impl Kubernetes {
    /// `v1.<minor>.<patch>`.
    pub const fn new(minor: u32, patch: u32) -> Self {
        Self { minor, patch }
    }

    /// The directory of its binaries in the project cache `cache`.
    pub fn bin_dir(&self, cache: &Path) -> PathBuf {
        cache.join("kubernetes").join(self.to_string()).join("bin")
    }
}

impl fmt::Display for Kubernetes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v1.{}.{}", self.minor, self.patch)
    }
}

/// Why a `--kubernetes` value was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Not `1.N` or `1.N.P` (with or without a leading `v`).
    #[error("'{0}' is not a Kubernetes version (hint: 1.37, or a patch release such as 1.34.4)")]
    Malformed(String),
    /// A minor the cluster does not offer.
    #[error("Kubernetes 1.{minor} is not offered (hint: one of {offered})")]
    NotOffered {
        /// The minor asked for.
        minor: u32,
        /// The offered minors.
        offered: String,
    },
}

impl FromStr for Kubernetes {
    type Err = ReleaseError;

    /// `1.37` (the pinned patch of that minor), or `1.34.2` / `v1.34.2` (that
    /// exact release, which the build fetches from the module proxy).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = || ReleaseError::Malformed(text.to_owned());
        let parts: Vec<&str> = text.trim_start_matches('v').split('.').collect();
        let number = |s: &str| s.parse::<u32>().map_err(|_| malformed());
        let (minor, patch) = match parts.as_slice() {
            ["1", minor] => (number(minor)?, None),
            ["1", minor, patch] => (number(minor)?, Some(number(patch)?)),
            _ => return Err(malformed()),
        };
        let pinned = KUBERNETES_RELEASES
            .iter()
            .find(|r| r.minor == minor)
            .ok_or_else(|| ReleaseError::NotOffered {
                minor,
                offered: KUBERNETES_RELEASES
                    .iter()
                    .map(|r| format!("1.{}", r.minor))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        Ok(Self::new(minor, patch.unwrap_or(pinned.patch)))
    }
}

/// The environment variable naming the release (as `--kubernetes` takes it).
pub const ENV_KUBERNETES: &str = "HARNESS_KUBERNETES";

/// The release [`ENV_KUBERNETES`] names, else [`DEFAULT_KUBERNETES`].
///
/// # Errors
/// The variable names no offered release.
pub fn from_env() -> Result<Kubernetes, ReleaseError> {
    match std::env::var(ENV_KUBERNETES) {
        Ok(text) if !text.is_empty() => text.parse(),
        _ => Ok(DEFAULT_KUBERNETES),
    }
}

/// The etcd binary in the project cache `cache`.
pub fn etcd_binary(cache: &Path) -> PathBuf {
    cache
        .join("etcd")
        .join(ETCD_VERSION)
        .join("bin")
        .join("etcd")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minor_means_its_pinned_patch_and_a_patch_is_taken_as_given() -> anyhow::Result<()> {
        assert_eq!("1.37".parse::<Kubernetes>()?, Kubernetes::new(37, 2));
        assert_eq!("v1.34.2".parse::<Kubernetes>()?, Kubernetes::new(34, 2));
        assert_eq!(DEFAULT_KUBERNETES.to_string(), "v1.37.2");
        assert_eq!(
            Kubernetes::new(34, 4).bin_dir(Path::new("/c")),
            PathBuf::from("/c/kubernetes/v1.34.4/bin")
        );
        Ok(())
    }

    #[test]
    fn checks_target_the_default_release() {
        // `testware check` renders and checks for the release `up` runs.
        assert_eq!(
            testware::manifest::api_versions::KubeVersion::DEFAULT.minor,
            DEFAULT_KUBERNETES.minor
        );
    }

    #[test]
    fn versions_not_offered_or_malformed_are_refused_with_a_hint() {
        let err = "1.20".parse::<Kubernetes>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Kubernetes 1.20 is not offered (hint: one of 1.34, 1.35, 1.36, 1.37)")
        );
        for bad in ["", "1", "2.30", "1.x", "1.37.2.1", "latest"] {
            assert!(
                matches!(bad.parse::<Kubernetes>(), Err(ReleaseError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
