//! A cluster's state right after `up`, and the way back to it (`testware cluster
//! reset`): the baseline is every cluster-scoped object the API lists then —
//! namespaces included — found through API discovery, so custom resources count
//! as well. A reset deletes every namespace and cluster-scoped object made since
//! (what tests made: their namespaces with all they hold, ClusterRoles, CRDs,
//! PersistentVolumes, …), waits until they are gone, and leaves the baseline's
//! objects alone. Objects inside the baseline's namespaces (`kube-system`, the
//! addons') are not compared: tests make theirs in namespaces of their own.
//!
//! Nodes are never deleted, nor the objects the API server keeps per node
//! (CSINodes) or makes for API groups (APIServices).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::discovery::{verbs, ApiResource, Discovery, Scope};

use crate::cluster::namespace::delete_namespace;
use crate::cluster::wait::wait_until;
use crate::cluster::{api_error, ClusterError};

/// Kinds a reset never deletes, though made after `up`.
const KEPT_KINDS: [&str; 3] = ["Node", "CSINode", "APIService"];

/// One cluster-scoped object: `<apiVersion> <Kind> <name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct ObjectKey {
    /// `v1`, `rbac.authorization.k8s.io/v1`, …
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// The cluster-scoped objects of a cluster right after `up`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    /// Every object, sorted.
    pub objects: BTreeSet<ObjectKey>,
}

/// What a reset deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reset {
    /// The namespaces, with all they held.
    pub namespaces: Vec<String>,
    /// The other cluster-scoped objects.
    pub objects: Vec<ObjectKey>,
    /// How long it took, deletions awaited.
    pub took: Duration,
}

impl Baseline {
    /// Reads a baseline written by [`Baseline::save`].
    ///
    /// # Errors
    /// The file is missing or does not parse.
    pub fn load(path: &Path) -> std::io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    }

    /// Writes the baseline to `path` (whole or not at all).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let partial = path.with_extension("partial");
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, path)
    }

    /// The objects of `now` that are not in the baseline and a reset deletes:
    /// namespaces first, then the rest.
    pub fn made_since(&self, now: &Baseline) -> (Vec<String>, Vec<ObjectKey>) {
        let mut namespaces = Vec::new();
        let mut objects = Vec::new();
        for object in now.objects.difference(&self.objects) {
            if KEPT_KINDS.contains(&object.kind.as_str()) {
                continue;
            }
            if object.kind == "Namespace" && object.api_version == "v1" {
                namespaces.push(object.name.clone());
            } else {
                objects.push(object.clone());
            }
        }
        (namespaces, objects)
    }
}

/// The cluster-scoped resources that can be listed and deleted.
async fn cluster_scoped(client: &kube::Client) -> Result<Vec<ApiResource>, ClusterError> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(api_error("discover the cluster's API resources"))?;
    Ok(discovery
        .groups()
        .flat_map(|group| group.recommended_resources())
        .filter(|(_, caps)| {
            caps.scope == Scope::Cluster
                && caps.supports_operation(verbs::LIST)
                && caps.supports_operation(verbs::DELETE)
        })
        .map(|(resource, _)| resource)
        .collect())
}

/// Every cluster-scoped object of the cluster now.
///
/// # Errors
/// Discovery or a list fails.
pub async fn capture(client: &kube::Client) -> Result<Baseline, ClusterError> {
    capture_of(client, &cluster_scoped(client).await?).await
}

/// The objects of `resources` now.
async fn capture_of(
    client: &kube::Client,
    resources: &[ApiResource],
) -> Result<Baseline, ClusterError> {
    let mut objects = BTreeSet::new();
    for resource in resources {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
        let list = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(api_error(format!("list {}", resource.plural)))?;
        objects.extend(list.items.into_iter().filter_map(|o| {
            Some(ObjectKey {
                api_version: resource.api_version.clone(),
                kind: resource.kind.clone(),
                name: o.metadata.name?,
            })
        }));
    }
    Ok(Baseline { objects })
}

/// Deletes every namespace and cluster-scoped object that is not in
/// `baseline`, and waits until they are gone (at most `timeout`).
///
/// # Errors
/// A deletion is refused, or something is still there after `timeout` (named).
pub async fn reset(
    client: &kube::Client,
    baseline: &Baseline,
    timeout: Duration,
) -> Result<Reset, ClusterError> {
    let started = Instant::now();
    // One discovery for both the listing and the deletions.
    let resources = cluster_scoped(client).await?;
    let now = capture_of(client, &resources).await?;
    let (namespaces, objects) = baseline.made_since(&now);
    let deletions = namespaces
        .iter()
        .map(|name| delete_namespace(client, name, timeout));
    for result in futures::future::join_all(deletions).await {
        result?;
    }
    let api_of = |key: &ObjectKey| {
        resources
            .iter()
            .find(|r| r.api_version == key.api_version && r.kind == key.kind)
            .map(|r| Api::<DynamicObject>::all_with(client.clone(), r))
    };
    for key in &objects {
        let Some(api) = api_of(key) else { continue };
        match api.delete(&key.name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(api_error(format!("delete {key}"))(e)),
        }
    }
    let left = timeout.saturating_sub(started.elapsed());
    wait_until("the objects a reset deleted to be gone", left, || async {
        let mut still = Vec::new();
        for key in &objects {
            if let Some(api) = api_of(key) {
                if api
                    .get_metadata_opt(&key.name)
                    .await
                    .map_err(|e| format!("reading {key}: {e}"))?
                    .is_some()
                {
                    still.push(key.to_string());
                }
            }
        }
        if still.is_empty() {
            Ok(())
        } else {
            Err(format!("still there: {}", still.join(", ")))
        }
    })
    .await?;
    Ok(Reset {
        namespaces,
        objects,
        took: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(api_version: &str, kind: &str, name: &str) -> ObjectKey {
        ObjectKey {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    #[test]
    fn a_reset_deletes_what_was_made_since_and_keeps_nodes() {
        let baseline = Baseline {
            objects: [
                key("v1", "Namespace", "kube-system"),
                key("v1", "Node", "node-1"),
                key("rbac.authorization.k8s.io/v1", "ClusterRole", "admin"),
            ]
            .into(),
        };
        let mut now = baseline.clone();
        now.objects.extend([
            key("v1", "Namespace", "test-abc-1"),
            key("v1", "Node", "node-2"),
            key("rbac.authorization.k8s.io/v1", "ClusterRole", "test-made"),
            key("v1", "PersistentVolume", "pvc-1"),
            key("apiregistration.k8s.io/v1", "APIService", "v1.example.com"),
        ]);
        let (namespaces, objects) = baseline.made_since(&now);
        assert_eq!(namespaces, ["test-abc-1"]);
        let names: Vec<String> = objects.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["ClusterRole test-made", "PersistentVolume pvc-1"]);
        assert_eq!(baseline.made_since(&baseline), (vec![], vec![]));
    }

    #[test]
    fn a_baseline_is_saved_and_read_back_whole() {
        let dir =
            std::env::temp_dir().join(format!("baseline-test-{}", crate::config::random_suffix(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("baseline.json");
        let baseline = Baseline {
            objects: [key("v1", "Namespace", "default")].into(),
        };
        baseline.save(&path).unwrap();
        assert_eq!(Baseline::load(&path).unwrap(), baseline);
        assert!(Baseline::load(&dir.join("missing.json")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
