//! Code that reads the same under every Kubernetes API version an application
//! may pick (k8s-openapi's `v1_33` … `v1_37` features): where a field changed
//! shape between versions, the library reads it through here.
//!
//! From `v1_37` on, `Deployment::spec`, `StatefulSet::spec`, `DaemonSet::spec`,
//! `ReplicaSet::spec` and `CronJob::spec` are required fields; before, they are
//! `Option`s. [`spec`] gives `Option<&Spec>` either way.

use k8s_openapi::api::apps::v1::{DaemonSetSpec, DeploymentSpec, ReplicaSetSpec, StatefulSetSpec};
use k8s_openapi::api::batch::v1::CronJobSpec;

/// A spec field that is an `Option<T>` under some API versions and a `T` under others.
pub trait SpecField<T> {
    /// The spec, if there is one.
    fn present(&self) -> Option<&T>;
}

impl<T> SpecField<T> for Option<T> {
    fn present(&self) -> Option<&T> {
        self.as_ref()
    }
}

/// Required under the newer API versions: always present.
macro_rules! required_under_newer_versions {
    ($($spec:ty),* $(,)?) => {$(
        impl SpecField<$spec> for $spec {
            fn present(&self) -> Option<&$spec> {
                Some(self)
            }
        }
    )*};
}
required_under_newer_versions!(
    DeploymentSpec,
    StatefulSetSpec,
    DaemonSetSpec,
    ReplicaSetSpec,
    CronJobSpec
);

/// `object.spec` as an `Option`, whichever API version the application picked:
/// `spec(&deployment.spec).and_then(|s| s.replicas)`.
pub fn spec<T>(field: &impl SpecField<T>) -> Option<&T> {
    field.present()
}

#[cfg(test)]
mod tests {
    use super::spec;
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};

    #[test]
    fn a_spec_reads_the_same_under_every_api_version() {
        let deployment: Deployment = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {}, "template": {}}
        }))
        .expect("a valid Deployment");
        assert_eq!(spec(&deployment.spec).and_then(|s| s.replicas), Some(3));
        let none: Option<DeploymentSpec> = None;
        assert!(spec(&none).is_none());
    }
}
