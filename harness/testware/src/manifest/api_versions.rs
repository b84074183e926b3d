//! API versions against a target Kubernetes release, as `pluto` and `kubent` check
//! them: the upstream deprecation table (the Kubernetes "Deprecated API Migration
//! Guide"), a [`KubeVersion`] to check against, and which kinds the harness types
//! (so an object of a known kind in a version it cannot read is never skipped
//! silently).

use std::fmt;

/// A Kubernetes minor release, `1.<minor>`: the target of API-version checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubeVersion {
    /// The minor version (`33` for 1.33).
    pub minor: u32,
}

impl KubeVersion {
    /// The target when none is given: the newest release the embedded cluster
    /// runs (`local_cluster::release::DEFAULT_KUBERNETES`) and the schemas cover.
    pub const DEFAULT: KubeVersion = KubeVersion { minor: 37 };

    /// Parses `1.25`, `v1.25` or `v1.25.3` (what `helm template --kube-version` takes).
    ///
    /// # Errors
    /// Anything else, with the forms accepted.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!("{text:?} is not a Kubernetes version (expected e.g. 1.25, v1.25 or v1.25.3)")
        };
        let trimmed = text.trim().trim_start_matches('v');
        let mut parts = trimmed.split('.');
        let (Some("1"), Some(minor)) = (parts.next(), parts.next()) else {
            return Err(bad());
        };
        let minor = minor.parse().map_err(|_| bad())?;
        match parts.next() {
            None => {}
            Some(patch) if patch.parse::<u32>().is_ok() && parts.next().is_none() => {}
            Some(_) => return Err(bad()),
        }
        Ok(Self { minor })
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

/// One API version of one kind that Kubernetes deprecated and later stopped serving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deprecation {
    /// `apiVersion`, e.g. `extensions/v1beta1`.
    pub api_version: &'static str,
    /// `kind`.
    pub kind: &'static str,
    /// The minor release that deprecated it (`None`: removed without a deprecation release of its own).
    pub deprecated_in: Option<u32>,
    /// The minor release that stopped serving it.
    pub removed_in: u32,
    /// The API version to use instead (`None`: no replacement, e.g. PodSecurityPolicy).
    pub replacement: Option<&'static str>,
}

/// Where `api_version` of `kind` stands in release `target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Served and not deprecated (or not in the table).
    Current,
    /// Served, but deprecated.
    Deprecated(&'static Deprecation),
    /// No longer served.
    Removed(&'static Deprecation),
}

/// The deprecation table's entry for `api_version` and `kind`.
pub fn deprecation(api_version: &str, kind: &str) -> Option<&'static Deprecation> {
    DEPRECATIONS
        .iter()
        .find(|d| d.api_version == api_version && d.kind == kind)
}

/// Where `api_version` of `kind` stands in release `target`.
pub fn standing(api_version: &str, kind: &str, target: KubeVersion) -> Standing {
    match deprecation(api_version, kind) {
        Some(d) if target.minor >= d.removed_in => Standing::Removed(d),
        Some(d) if d.deprecated_in.is_some_and(|v| target.minor >= v) => Standing::Deprecated(d),
        _ => Standing::Current,
    }
}

macro_rules! deprecations {
    ($($api:literal $kind:ident: $deprecated:expr => $removed:literal, $replacement:expr;)*) => {
        /// The upstream table (Kubernetes' deprecation guide), core kinds only.
        pub const DEPRECATIONS: &[Deprecation] = &[$(Deprecation {
            api_version: $api,
            kind: stringify!($kind),
            deprecated_in: $deprecated,
            removed_in: $removed,
            replacement: $replacement,
        }),*];
    };
}

deprecations! {
    "extensions/v1beta1" Deployment: Some(9) => 16, Some("apps/v1");
    "apps/v1beta1" Deployment: Some(9) => 16, Some("apps/v1");
    "apps/v1beta2" Deployment: Some(9) => 16, Some("apps/v1");
    "apps/v1beta1" StatefulSet: Some(9) => 16, Some("apps/v1");
    "apps/v1beta2" StatefulSet: Some(9) => 16, Some("apps/v1");
    "extensions/v1beta1" DaemonSet: Some(9) => 16, Some("apps/v1");
    "apps/v1beta2" DaemonSet: Some(9) => 16, Some("apps/v1");
    "extensions/v1beta1" ReplicaSet: None => 16, Some("apps/v1");
    "apps/v1beta1" ReplicaSet: None => 16, Some("apps/v1");
    "apps/v1beta2" ReplicaSet: None => 16, Some("apps/v1");
    "extensions/v1beta1" NetworkPolicy: Some(9) => 16, Some("networking.k8s.io/v1");
    "extensions/v1beta1" PodSecurityPolicy: Some(10) => 16, Some("policy/v1beta1");
    "extensions/v1beta1" Ingress: Some(14) => 22, Some("networking.k8s.io/v1");
    "networking.k8s.io/v1beta1" Ingress: Some(19) => 22, Some("networking.k8s.io/v1");
    "networking.k8s.io/v1beta1" IngressClass: Some(19) => 22, Some("networking.k8s.io/v1");
    "scheduling.k8s.io/v1alpha1" PriorityClass: Some(14) => 17, Some("scheduling.k8s.io/v1");
    "scheduling.k8s.io/v1beta1" PriorityClass: Some(14) => 22, Some("scheduling.k8s.io/v1");
    "apiextensions.k8s.io/v1beta1" CustomResourceDefinition: Some(16) => 22, Some("apiextensions.k8s.io/v1");
    "admissionregistration.k8s.io/v1beta1" MutatingWebhookConfiguration: Some(16) => 22, Some("admissionregistration.k8s.io/v1");
    "admissionregistration.k8s.io/v1beta1" ValidatingWebhookConfiguration: Some(16) => 22, Some("admissionregistration.k8s.io/v1");
    "rbac.authorization.k8s.io/v1alpha1" ClusterRole: Some(17) => 22, Some("rbac.authorization.k8s.io/v1");
    "rbac.authorization.k8s.io/v1alpha1" ClusterRoleBinding: Some(17) => 22, Some("rbac.authorization.k8s.io/v1");
    "rbac.authorization.k8s.io/v1alpha1" Role: Some(17) => 22, Some("rbac.authorization.k8s.io/v1");
    "rbac.authorization.k8s.io/v1alpha1" RoleBinding: Some(17) => 22, Some("rbac.authorization.k8s.io/v1");
    "rbac.authorization.k8s.io/v1beta1" ClusterRole: Some(17) => 22, Some("rbac.authorization.k8s.io/v1");
    "rbac.authorization.k8s.io/v1beta1" ClusterRoleBinding: Some(17) => 22, Some("rbac.authorization.k8s.io/v1");
    "rbac.authorization.k8s.io/v1beta1" Role: Some(17) => 22, Some("rbac.authorization.k8s.io/v1");
    "rbac.authorization.k8s.io/v1beta1" RoleBinding: Some(17) => 22, Some("rbac.authorization.k8s.io/v1");
    "storage.k8s.io/v1beta1" StorageClass: Some(6) => 22, Some("storage.k8s.io/v1");
    "storage.k8s.io/v1beta1" VolumeAttachment: Some(13) => 22, Some("storage.k8s.io/v1");
    "storage.k8s.io/v1beta1" CSINode: Some(17) => 22, Some("storage.k8s.io/v1");
    "storage.k8s.io/v1beta1" CSIDriver: Some(19) => 22, Some("storage.k8s.io/v1");
    "apiregistration.k8s.io/v1beta1" APIService: Some(10) => 22, Some("apiregistration.k8s.io/v1");
    "authentication.k8s.io/v1beta1" TokenReview: Some(6) => 22, Some("authentication.k8s.io/v1");
    "certificates.k8s.io/v1beta1" CertificateSigningRequest: Some(19) => 22, Some("certificates.k8s.io/v1");
    "coordination.k8s.io/v1beta1" Lease: Some(14) => 22, Some("coordination.k8s.io/v1");
    "batch/v1beta1" CronJob: Some(21) => 25, Some("batch/v1");
    "policy/v1beta1" PodDisruptionBudget: Some(21) => 25, Some("policy/v1");
    "policy/v1beta1" PodSecurityPolicy: Some(21) => 25, None;
    "autoscaling/v2beta1" HorizontalPodAutoscaler: Some(22) => 25, Some("autoscaling/v2");
    "discovery.k8s.io/v1beta1" EndpointSlice: Some(21) => 25, Some("discovery.k8s.io/v1");
    "events.k8s.io/v1beta1" Event: Some(19) => 25, Some("events.k8s.io/v1");
    "node.k8s.io/v1beta1" RuntimeClass: Some(22) => 25, Some("node.k8s.io/v1");
    "autoscaling/v2beta2" HorizontalPodAutoscaler: Some(23) => 26, Some("autoscaling/v2");
    "flowcontrol.apiserver.k8s.io/v1beta1" FlowSchema: Some(23) => 26, Some("flowcontrol.apiserver.k8s.io/v1");
    "flowcontrol.apiserver.k8s.io/v1beta1" PriorityLevelConfiguration: Some(23) => 26, Some("flowcontrol.apiserver.k8s.io/v1");
    "storage.k8s.io/v1beta1" CSIStorageCapacity: Some(24) => 27, Some("storage.k8s.io/v1");
    "flowcontrol.apiserver.k8s.io/v1beta2" FlowSchema: Some(26) => 29, Some("flowcontrol.apiserver.k8s.io/v1");
    "flowcontrol.apiserver.k8s.io/v1beta2" PriorityLevelConfiguration: Some(26) => 29, Some("flowcontrol.apiserver.k8s.io/v1");
    "flowcontrol.apiserver.k8s.io/v1beta3" FlowSchema: Some(29) => 32, Some("flowcontrol.apiserver.k8s.io/v1");
    "flowcontrol.apiserver.k8s.io/v1beta3" PriorityLevelConfiguration: Some(29) => 32, Some("flowcontrol.apiserver.k8s.io/v1");
}

/// Kinds whose newer API version an older one serves with the same fields
/// (`kind`, newer, older): what an install may translate for a server that
/// lacks the newer one (`policy/v1` arrived in 1.21, `autoscaling/v2` and
/// `batch/v1` CronJob in 1.23 and 1.21). Pairs whose fields differ (Ingress's
/// `networking.k8s.io/v1` and `v1beta1` name their backends differently) are not here.
pub const SAME_FIELDS: &[(&str, &str, &str)] = &[
    ("PodDisruptionBudget", "policy/v1", "policy/v1beta1"),
    (
        "HorizontalPodAutoscaler",
        "autoscaling/v2",
        "autoscaling/v2beta2",
    ),
    ("CronJob", "batch/v1", "batch/v1beta1"),
];

/// The older API version of `kind` that takes the same fields as `api_version`, if any.
pub fn older_with_same_fields(api_version: &str, kind: &str) -> Option<&'static str> {
    SAME_FIELDS
        .iter()
        .find(|(k, newer, _)| *k == kind && *newer == api_version)
        .map(|(_, _, older)| *older)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_in_helms_forms_and_refuse_others() {
        for text in ["1.25", "v1.25", "v1.25.3", " 1.25 "] {
            assert_eq!(
                KubeVersion::parse(text),
                Ok(KubeVersion { minor: 25 }),
                "{text}"
            );
        }
        for text in ["2.1", "1", "1.x", "v1.25.3.4", "", "1.25.beta"] {
            assert!(KubeVersion::parse(text).is_err(), "{text}");
        }
        assert_eq!(KubeVersion { minor: 25 }.to_string(), "1.25");
    }

    #[test]
    fn standing_follows_the_target_release() {
        let at = |minor| {
            standing(
                "autoscaling/v2beta2",
                "HorizontalPodAutoscaler",
                KubeVersion { minor },
            )
        };
        assert_eq!(at(22), Standing::Current);
        assert!(
            matches!(at(23), Standing::Deprecated(d) if d.replacement == Some("autoscaling/v2"))
        );
        assert!(matches!(at(25), Standing::Deprecated(_)));
        assert!(matches!(at(26), Standing::Removed(d) if d.removed_in == 26));
        assert_eq!(
            standing("apps/v1", "Deployment", KubeVersion::DEFAULT),
            Standing::Current
        );
    }

    #[test]
    fn the_table_is_consistent() {
        for d in DEPRECATIONS {
            assert!(d.deprecated_in.is_none_or(|v| v < d.removed_in), "{d:?}");
            assert_ne!(d.replacement, Some(d.api_version), "{d:?}");
            let twins = DEPRECATIONS
                .iter()
                .filter(|e| e.api_version == d.api_version && e.kind == d.kind)
                .count();
            assert_eq!(twins, 1, "{d:?} is listed {twins} times");
        }
    }
}
