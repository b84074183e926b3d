//! Local-path provisioner addon: gives claims of its StorageClass a hostPath
//! volume under a base directory once the scheduler has picked the node
//! (`WaitForFirstConsumer`), and removes the directory and the volume when a
//! released volume's reclaim policy is Delete. Follows claims and volumes by
//! watching the API.
//!
//! Usage: `local-path-provisioner --base-dir DIR [--provisioner NAME] [--health ADDR]`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{
    HostPathVolumeSource, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, ObjectReference,
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeSpec, VolumeNodeAffinity,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::{Api, Client, ResourceExt as _};

const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
const STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
const DIR_ANNOTATION: &str = "testware.io/local-path-dir";

struct Provisioner {
    client: Client,
    name: String,
    base: PathBuf,
}

impl Provisioner {
    /// Creates the directory and the volume for `claim` if it is ours and ready to be provisioned.
    async fn provision(&self, claim: &PersistentVolumeClaim) -> anyhow::Result<()> {
        let annotations = claim.annotations();
        let spec = claim.spec.clone().unwrap_or_default();
        let pending = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending");
        if !pending
            || spec.volume_name.is_some()
            || annotations.get(STORAGE_PROVISIONER) != Some(&self.name)
        {
            return Ok(());
        }
        let Some(node) = annotations.get(SELECTED_NODE) else {
            return Ok(());
        };
        let (namespace, name, uid) = (
            claim.namespace().unwrap_or_default(),
            claim.name_any(),
            claim.uid().unwrap_or_default(),
        );
        let class_name = spec.storage_class_name.clone().unwrap_or_default();
        let class = Api::<StorageClass>::all(self.client.clone())
            .get_opt(&class_name)
            .await?;
        let reclaim = class
            .and_then(|c| c.reclaim_policy)
            .unwrap_or_else(|| "Delete".into());
        let volume_name = format!("pvc-{uid}");
        let dir = self.base.join(format!("{volume_name}_{namespace}_{name}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // Pods run as any user; hostPath volumes are not chowned by the kubelet.
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))?;
        let request = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .and_then(|r| r.get("storage").cloned());
        let volume = PersistentVolume {
            metadata: ObjectMeta {
                name: Some(volume_name.clone()),
                annotations: Some(BTreeMap::from([
                    (PROVISIONED_BY.to_owned(), self.name.clone()),
                    (DIR_ANNOTATION.to_owned(), dir.display().to_string()),
                ])),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: request.map(|q| BTreeMap::from([("storage".to_owned(), q)])),
                access_modes: spec.access_modes.clone(),
                persistent_volume_reclaim_policy: Some(reclaim),
                storage_class_name: Some(class_name),
                volume_mode: spec.volume_mode.clone(),
                host_path: Some(HostPathVolumeSource {
                    path: dir.display().to_string(),
                    type_: Some("DirectoryOrCreate".into()),
                }),
                claim_ref: Some(ObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("PersistentVolumeClaim".into()),
                    namespace: Some(namespace.clone()),
                    name: Some(name.clone()),
                    uid: Some(uid),
                    ..Default::default()
                }),
                node_affinity: Some(VolumeNodeAffinity {
                    required: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_expressions: Some(vec![NodeSelectorRequirement {
                                key: "kubernetes.io/hostname".into(),
                                operator: "In".into(),
                                values: Some(vec![node.clone()]),
                            }]),
                            ..Default::default()
                        }],
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        match Api::<PersistentVolume>::all(self.client.clone())
            .create(&PostParams::default(), &volume)
            .await
        {
            Ok(_) => eprintln!(
                "provisioned {volume_name} for {namespace}/{name} at {}",
                dir.display()
            ),
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e).context(format!("creating {volume_name}")),
        }
        Ok(())
    }

    /// Removes the directory and the volume of a released volume of ours with reclaim policy Delete.
    async fn reclaim(&self, volume: &PersistentVolume) -> anyhow::Result<()> {
        let released = volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released");
        let policy = volume
            .spec
            .as_ref()
            .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
        let ours = volume.annotations().get(PROVISIONED_BY) == Some(&self.name);
        if !released || !ours || policy != Some("Delete") {
            return Ok(());
        }
        if let Some(dir) = volume.annotations().get(DIR_ANNOTATION).map(PathBuf::from) {
            if !is_inside(&self.base, &dir) {
                anyhow::bail!(
                    "refusing to remove {}: not under {}",
                    dir.display(),
                    self.base.display()
                );
            }
            remove_tree(&dir).await?;
        }
        let name = volume.name_any();
        match Api::<PersistentVolume>::all(self.client.clone())
            .delete(&name, &DeleteParams::default())
            .await
        {
            Ok(_) => eprintln!("deleted {name} and its directory"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e).context(format!("deleting {name}")),
        }
        Ok(())
    }
}

/// Removes `dir` and its content. A container killed a moment ago may still
/// be writing into it (removal then fails "directory not empty"): retried for
/// up to 15 s, as no later event brings a released volume back.
async fn remove_tree(dir: &Path) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e)
                if e.kind() == std::io::ErrorKind::DirectoryNotEmpty
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("removing {}", dir.display())),
        }
    }
}

fn is_inside(base: &Path, dir: &Path) -> bool {
    dir.starts_with(base)
        && dir != base
        && !dir
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
}

/// The provisioner's options.
#[derive(Parser)]
#[command(
    name = "local-path-provisioner",
    about = "hostPath volumes for claims of its StorageClass"
)]
struct Options {
    /// Host directory under which volumes are created.
    #[arg(long)]
    base_dir: PathBuf,
    /// The provisioner name its StorageClass names.
    #[arg(long, default_value = "testware.io/local-path")]
    provisioner: String,
    /// Address of the `/healthz` endpoint.
    #[arg(long, default_value = "0.0.0.0:8080")]
    health: String,
}

async fn run(options: Options) -> anyhow::Result<()> {
    let Options {
        base_dir: base,
        provisioner: name,
        health,
    } = options;
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    let client = Client::try_default()
        .await
        .context("connecting to the API server")?;
    let provisioner = Arc::new(Provisioner {
        client: client.clone(),
        name,
        base,
    });

    let ready = Arc::new(AtomicBool::new(true));
    let health_server = crate::health::serve(health, ready.clone());
    tokio::spawn(async move {
        if let Err(e) = health_server.await {
            eprintln!("error: health endpoint failed: {e}");
        }
    });

    let p = provisioner.clone();
    let claims = watcher(
        Api::<PersistentVolumeClaim>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects()
    .for_each(move |claim| {
        let p = p.clone();
        async move {
            match claim {
                Ok(claim) => {
                    if let Err(e) = p.provision(&claim).await {
                        eprintln!(
                            "error: provisioning {}/{}: {e:#}",
                            claim.namespace().unwrap_or_default(),
                            claim.name_any()
                        );
                    }
                }
                Err(e) => eprintln!("error: watching claims: {e}"),
            }
        }
    });
    let p = provisioner.clone();
    let volumes = watcher(
        Api::<PersistentVolume>::all(client),
        watcher::Config::default(),
    )
    .default_backoff()
    .applied_objects()
    .for_each(move |volume| {
        let p = p.clone();
        async move {
            match volume {
                Ok(volume) => {
                    if let Err(e) = p.reclaim(&volume).await {
                        eprintln!("error: reclaiming {}: {e:#}", volume.name_any());
                    }
                }
                Err(e) => eprintln!("error: watching volumes: {e}"),
            }
        }
    });
    eprintln!(
        "local-path-provisioner {} serving {}",
        provisioner.name,
        provisioner.base.display()
    );
    ready.store(true, Ordering::Relaxed);
    futures::future::join(claims, volumes).await;
    Ok(())
}

/// Runs the provisioner with `args` (the program name first).
pub fn main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    match Options::try_parse_from(args) {
        Ok(options) => crate::run_current_thread(run(options)),
        Err(e) => crate::usage_error(e),
    }
}
