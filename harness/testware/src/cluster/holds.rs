//! What holds up a deletion: the objects still there a short while after a
//! namespace or a release was deleted, and the finalizers and owners keeping
//! each. [`Held::of`] and [`describe`] are pure (unit-tested on objects);
//! [`remaining_in`] reads a namespace's objects, [`remaining_of`] a release's,
//! [`release`] removes the
//! finalizers of objects the harness may clean (its own test namespaces).

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams};

/// One object left behind, and what keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its kind (`ConfigMap`, `Widget`, …).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The finalizers it waits for (each a controller's promise to clean up).
    pub finalizers: Vec<String>,
    /// Its owners, as `Kind/name` (with "blocking" when the owner waits for it).
    pub owners: Vec<String>,
    /// Whether its deletion was asked for already.
    pub deleting: bool,
}

impl Held {
    /// What keeps the object `kind` with `meta`.
    pub fn of(kind: &str, meta: &ObjectMeta) -> Self {
        Self {
            kind: kind.to_owned(),
            name: meta.name.clone().unwrap_or_default(),
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            owners: meta
                .owner_references
                .iter()
                .flatten()
                .map(|o| {
                    let blocking = if o.block_owner_deletion == Some(true) {
                        " (blocking)"
                    } else {
                        ""
                    };
                    format!("{}/{}{blocking}", o.kind, o.name)
                })
                .collect(),
            deleting: meta.deletion_timestamp.is_some(),
        }
    }
}

impl fmt::Display for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)?;
        let mut why = Vec::new();
        if !self.finalizers.is_empty() {
            why.push(format!("finalizers {}", self.finalizers.join(", ")));
        }
        if !self.owners.is_empty() {
            why.push(format!("owned by {}", self.owners.join(", ")));
        }
        if !self.deleting {
            why.push("not deleted yet".to_owned());
        }
        if !why.is_empty() {
            write!(f, " ({})", why.join("; "))?;
        }
        Ok(())
    }
}

/// The objects left, in words: "2 objects remain: ConfigMap a (finalizers x), …".
pub fn describe(held: &[Held]) -> String {
    match held {
        [] => "no object remains".to_owned(),
        [one] => format!("1 object remains: {one}"),
        many => format!(
            "{} objects remain: {}",
            many.len(),
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The objects of `types` left in `namespace`, with their types (for
/// [`release`]). Types that cannot be listed are skipped.
pub async fn remaining_in(
    client: &kube::Client,
    namespace: &str,
    types: &[ApiResource],
) -> Vec<(ApiResource, Held)> {
    let lists = types.iter().map(|t| async move {
        let api = kube::Api::<DynamicObject>::namespaced_with(client.clone(), namespace, t);
        let items = api
            .list_metadata(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        items
            .into_iter()
            .map(|o| (t.clone(), Held::of(&t.kind, &o.metadata)))
            .collect::<Vec<_>>()
    });
    futures::future::join_all(lists)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// An object a release made: `apiVersion`, `kind`, name, and namespace (for
/// namespaced kinds; the release's when the manifest names none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its namespace (ignored for cluster-scoped kinds).
    pub namespace: String,
}

/// Which of `objects` still exist, with what keeps each. Kinds the cluster
/// does not serve and objects that cannot be read are skipped.
pub async fn remaining_of(client: &kube::Client, objects: &[ObjectRef]) -> Vec<Held> {
    use kube::discovery::{pinned_kind, Scope};
    let mut held = Vec::new();
    for object in objects {
        let (group, version) = match object.api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", object.api_version.as_str()),
        };
        let kind = kube::api::GroupVersionKind::gvk(group, version, &object.kind);
        let Ok((resource, capabilities)) = pinned_kind(client, &kind).await else {
            continue;
        };
        let api = match capabilities.scope {
            Scope::Namespaced => kube::Api::<DynamicObject>::namespaced_with(
                client.clone(),
                &object.namespace,
                &resource,
            ),
            Scope::Cluster => kube::Api::<DynamicObject>::all_with(client.clone(), &resource),
        };
        if let Ok(Some(found)) = api.get_metadata_opt(&object.name).await {
            held.push(Held::of(&object.kind, &found.metadata));
        }
    }
    held
}

/// Removes the finalizers of `held` objects in `namespace` whose deletion was
/// asked for, so they go: for the harness's own test namespaces only, whose
/// content nothing outlives (the controller that set a finalizer is often a
/// pod of the same namespace, deleted first). Returns what it released, in
/// words, and what it could not.
pub async fn release(
    client: &kube::Client,
    namespace: &str,
    held: &[(ApiResource, Held)],
) -> (Vec<String>, Vec<String>) {
    let no_finalizers = serde_json::json!({"metadata": {"finalizers": null}});
    let (mut released, mut failed) = (Vec::new(), Vec::new());
    for (resource, object) in held {
        if object.finalizers.is_empty() || !object.deleting {
            continue;
        }
        let api = kube::Api::<DynamicObject>::namespaced_with(client.clone(), namespace, resource);
        match api
            .patch(
                &object.name,
                &PatchParams::default(),
                &Patch::Merge(&no_finalizers),
            )
            .await
        {
            Ok(_) => released.push(object.to_string()),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => failed.push(format!("{object}: {e}")),
        }
    }
    (released, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(value: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn an_object_is_described_by_what_keeps_it() {
        let held = Held::of(
            "Widget",
            &meta(serde_json::json!({
                "name": "w",
                "finalizers": ["example.com/cleanup"],
                "deletionTimestamp": "2026-12-03T20:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                    "name": "operator", "uid": "u", "blockOwnerDeletion": true}]
            })),
        );
        assert_eq!(
            held.to_string(),
            "Widget w (finalizers example.com/cleanup; owned by Deployment/operator (blocking))"
        );
        let plain = Held::of("ConfigMap", &meta(serde_json::json!({"name": "c"})));
        assert_eq!(plain.to_string(), "ConfigMap c (not deleted yet)");
        assert_eq!(
            describe(&[held.clone(), plain]),
            "2 objects remain: Widget w (finalizers example.com/cleanup; owned by Deployment/operator (blocking)), ConfigMap c (not deleted yet)"
        );
        assert_eq!(describe(&[]), "no object remains");
    }
}
