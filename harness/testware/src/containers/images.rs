//! Images the library builds on demand for the helpers it ships (the echo
//! server), so a repository that only depends on the library needs no image
//! pipeline of its own: the helper's crate source, compiled by cargo into a
//! static Linux binary, put in a `FROM scratch` image by the machine's container
//! CLI (docker or podman) through the one image pipeline ([`super::image`]),
//! and imported into the cluster under test — kind, k3d, the testware local
//! cluster, or any other through
//! [`ENV_IMAGE_IMPORT`](crate::config::ENV_IMAGE_IMPORT).
//!
//! Binaries and image archives are cached by content under the cache directory
//! (built once per version); an import is remembered per cluster, so parallel
//! cases and later runs against the same cluster import nothing.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use k8s_openapi::api::core::v1::{Namespace, Node};

pub use super::image::ImageError;
use super::image::{self, ImageFile, ImageSpec};
use crate::config::RunConfig;

/// The kubeconfig cluster extension naming the import command of a cluster
/// (`extension: {command: [...]}`); the testware local cluster writes one.
pub const IMPORT_EXTENSION: &str = "testware.dev/image-import";

/// The source of a crate with one binary, written out and compiled on demand.
#[derive(Debug, Clone, Copy)]
pub struct CrateSource {
    /// The crate's name (and of its binary and image).
    pub name: &'static str,
    /// `(path in the crate, content)`: at least `Cargo.toml`, `Cargo.lock`, `src/main.rs`.
    pub files: &'static [(&'static str, &'static str)],
}

impl CrateSource {
    /// A key of the content (the image tag): it changes whenever a file does.
    /// Never all digits, so `--set image.tag=<key>` stays a string.
    fn content_key(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let mut hash = Sha256::new();
        for (path, content) in self.files {
            hash.update((path.len() as u64).to_le_bytes());
            hash.update(path);
            hash.update((content.len() as u64).to_le_bytes());
            hash.update(content);
        }
        format!("src-{}", image::short_hex(&hash.finalize()))
    }

    /// The image made of this crate's binary: `localhost/<name>:<content key>`.
    pub fn reference(&self) -> String {
        format!("localhost/{}:{}", self.name, self.content_key())
    }
}

/// How an image came to be on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provision {
    /// Every node already listed it, or this machine imported it into this cluster before.
    AlreadyThere,
    /// Imported now; `built` when the archive had to be built first.
    Imported {
        /// The binary and archive were built (not found in the cache).
        built: bool,
    },
}

/// Makes sure every node of the cluster has the image of `source`: builds and
/// imports it unless it is there already. Parallel callers (threads or
/// processes) wait for one another; returns the image reference and what was done.
///
/// # Errors
/// See [`ImageError`]: each step's error names its command and output.
pub async fn provide(
    config: &RunConfig,
    client: &kube::Client,
    source: CrateSource,
) -> Result<(String, Provision), ImageError> {
    let reference = source.reference();
    let dir = config.tools.cache_dir.join("images");
    std::fs::create_dir_all(&dir).map_err(image::io(&dir))?;
    let cluster = cluster_identity(client).await?;
    let marker = dir.join(format!("{}-{}.imported", source.name, source.content_key()));
    let imported_here = |marker: &Path| {
        std::fs::read_to_string(marker).is_ok_and(|t| t.lines().any(|l| l == cluster))
    };
    // The nodes' image lists lag behind removals by up to a minute (the
    // kubelet's cache): after a reset removed images (the identity then carries
    // a generation) only this machine's own record counts.
    let images_removed = cluster.contains('/');
    if imported_here(&marker) || (!images_removed && on_every_node(client, &reference).await?) {
        return Ok((reference, Provision::AlreadyThere));
    }
    // One builder and importer at a time on this machine.
    let lock_path = dir.join(format!("{}.lock", source.name));
    let lock = std::fs::File::create(&lock_path).map_err(image::io(&lock_path))?;
    let lock = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
        .await
        .map_err(|e| ImageError::Io {
            path: lock_path.clone(),
            source: std::io::Error::other(e),
        })?
        .map_err(image::io(&lock_path))?;
    if imported_here(&marker) {
        return Ok((reference, Provision::AlreadyThere));
    }
    let binary = compile(&dir, source).await?;
    let spec = ImageSpec {
        name: source.name.to_owned(),
        tag: source.content_key(),
        files: vec![ImageFile::Bytes {
            path: "/server".into(),
            bytes: std::fs::read(&binary).map_err(image::io(&binary))?,
            executable: true,
        }],
        entrypoint: "/server".into(),
    };
    let archive = spec.archive_in(&dir);
    // How to import is known before anything is built.
    let import = import_command_for(config, &reference, &archive)?;
    let built = !archive.is_file();
    let cli = image::container_cli(&config.tools);
    tokio::task::spawn_blocking(move || {
        if built {
            let cli = cli.ok_or_else(|| ImageError::NoContainerCli {
                reference: spec.reference(),
            })?;
            let context = dir.join(format!("{}.context", spec.name));
            image::build_archive(&cli, &spec, &context, &archive)?;
        }
        let (program, args) = import.split_first().expect("import commands are not empty");
        image::run(std::process::Command::new(program).args(args))
    })
    .await
    .map_err(|e| ImageError::Command {
        command: format!("building and importing {reference}"),
        detail: e.to_string(),
    })??;
    let mut text = std::fs::read_to_string(&marker).unwrap_or_default();
    text.push_str(&cluster);
    text.push('\n');
    std::fs::write(&marker, text).map_err(image::io(&marker))?;
    drop(lock);
    Ok((reference, Provision::Imported { built }))
}

/// Tells every machine that remembers importing images into this cluster that
/// those imports no longer count (images were removed from its nodes): bumps
/// the images generation annotated on `kube-system`, part of the identity
/// [`provide`] remembers imports by.
///
/// # Errors
/// The API server refuses the patch.
pub async fn forget_imports(client: &kube::Client) -> Result<(), ImageError> {
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let generation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        .to_string();
    let patch = serde_json::json!({"metadata": {"annotations": {
        crate::cluster::labels::IMAGES_GENERATION: generation
    }}});
    namespaces
        .patch(
            "kube-system",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(ImageError::Cluster)?;
    Ok(())
}

/// The cluster's identity as far as its images go: its API server's
/// `kube-system` namespace UID (a new cluster at the same address has another)
/// and the images generation annotated there (a reset that removed images
/// changes it).
async fn cluster_identity(client: &kube::Client) -> Result<String, ImageError> {
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let system = namespaces
        .get("kube-system")
        .await
        .map_err(ImageError::Cluster)?;
    let generation = system
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(crate::cluster::labels::IMAGES_GENERATION))
        .map(|g| format!("/{g}"))
        .unwrap_or_default();
    Ok(format!(
        "{}{generation}",
        system.metadata.uid.unwrap_or_default()
    ))
}

/// Whether every node lists `reference` among its images (the kubelet reports
/// them with a delay of up to a minute), after checking the nodes' architecture.
async fn on_every_node(client: &kube::Client, reference: &str) -> Result<bool, ImageError> {
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let nodes = nodes
        .list(&Default::default())
        .await
        .map_err(ImageError::Cluster)?;
    let host_arch = kubernetes_arch(std::env::consts::ARCH);
    let mut everywhere = !nodes.items.is_empty();
    for node in &nodes.items {
        let status = node.status.clone().unwrap_or_default();
        let node_arch = status
            .node_info
            .map(|info| info.architecture)
            .unwrap_or_default();
        if !node_arch.is_empty() && node_arch != host_arch {
            return Err(ImageError::Architecture {
                node: node.metadata.name.clone().unwrap_or_default(),
                node_arch,
                host_arch: host_arch.to_owned(),
            });
        }
        let listed = status
            .images
            .unwrap_or_default()
            .iter()
            .any(|image| image.names.iter().flatten().any(|name| name == reference));
        everywhere &= listed;
    }
    Ok(everywhere)
}

/// Kubernetes' name of a Rust target architecture.
fn kubernetes_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Compiles `source` into a static binary under `dir`; returns its path.
async fn compile(dir: &Path, source: CrateSource) -> Result<PathBuf, ImageError> {
    let key = source.content_key();
    let binary = dir.join(format!("{}-{key}.bin", source.name));
    if binary.is_file() {
        return Ok(binary);
    }
    let crate_dir = dir.join(format!("{}-{key}-src", source.name));
    crate::charts::helm::write_embedded(&crate_dir, source.files).map_err(|e| ImageError::Io {
        path: crate_dir.clone(),
        source: e,
    })?;
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = tokio::process::Command::new(&cargo);
    command
        .args(["build", "--release", "--locked", "--target", &target])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(crate_dir.join("target"))
        // Static glibc: the binary runs in an image with nothing else in it. The
        // encoded form wins over every other RUSTFLAGS a caller's cargo may set.
        .env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static")
        .env_remove("RUSTFLAGS");
    let shown = format!(
        "{} build --release --locked --target {target} --manifest-path {}",
        Path::new(&cargo).display(),
        crate_dir.join("Cargo.toml").display()
    );
    let failed = |detail: String| ImageError::Compile {
        name: source.name.to_owned(),
        command: shown.clone(),
        detail,
    };
    let output = command
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| failed(format!("cargo did not start: {e}")))?;
    if !output.status.success() {
        return Err(failed(image::tail(&output.stderr, 15)));
    }
    let built = crate_dir
        .join("target")
        .join(&target)
        .join("release")
        .join(source.name);
    let partial = binary.with_extension("bin.partial");
    std::fs::copy(&built, &partial)
        .and_then(|_| std::fs::rename(&partial, &binary))
        .map_err(|e| ImageError::Io {
            path: binary.clone(),
            source: e,
        })?;
    // The compiled dependencies are ~100 MB; the binary is all that is kept.
    let _ = std::fs::remove_dir_all(&crate_dir);
    Ok(binary)
}

/// The command that imports `archive` into this run's cluster ([`import_command`]).
fn import_command_for(
    config: &RunConfig,
    reference: &str,
    archive: &Path,
) -> Result<Vec<String>, ImageError> {
    let (context, extension) = kube_context(config)?;
    import_command(
        config.tools.image_import.as_deref(),
        &context,
        extension.as_deref(),
        archive,
    )
    .ok_or_else(|| ImageError::NoImporter {
        reference: reference.to_owned(),
        context,
    })
}

/// The command that imports `archive`: `HARNESS_IMAGE_IMPORT` if set, else the
/// cluster's [`IMPORT_EXTENSION`], else what a `kind-<name>` or `k3d-<name>`
/// context implies; `None` when nothing applies.
pub fn import_command(
    env: Option<&str>,
    context: &str,
    extension: Option<&[String]>,
    archive: &Path,
) -> Option<Vec<String>> {
    let archive = archive.display().to_string();
    let with_archive = |words: Vec<String>| {
        let mut placed = false;
        let mut words: Vec<String> = words
            .into_iter()
            .map(|w| {
                if w.contains("{archive}") {
                    placed = true;
                    w.replace("{archive}", &archive)
                } else {
                    w
                }
            })
            .collect();
        if !placed {
            words.push(archive.clone());
        }
        words
    };
    let words = |text: &str| {
        text.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    if let Some(env) = env.filter(|e| !e.trim().is_empty()) {
        return Some(with_archive(words(env)));
    }
    if let Some(command) = extension.filter(|c| !c.is_empty()) {
        return Some(with_archive(command.to_vec()));
    }
    if let Some(name) = context.strip_prefix("kind-") {
        return Some(words(&format!(
            "kind load image-archive {archive} --name {name}"
        )));
    }
    if let Some(name) = context.strip_prefix("k3d-") {
        return Some(words(&format!(
            "k3d image import {archive} --cluster {name}"
        )));
    }
    None
}

/// The run's kube context name and its cluster's [`IMPORT_EXTENSION`] command.
fn kube_context(config: &RunConfig) -> Result<(String, Option<Vec<String>>), ImageError> {
    let (context, extension) = cluster_extension(config, IMPORT_EXTENSION);
    let command = extension
        .map(|value| {
            serde_json::from_value::<ImportExtension>(value)
                .map(|x| x.command)
                .map_err(|err| {
                    ImageError::Kubeconfig(format!(
                        "extension {IMPORT_EXTENSION} of context {context:?} is not {{command: [..]}}: {err}"
                    ))
                })
        })
        .transpose()?;
    Ok((context, command))
}

/// The run's kube context name and the extension `name` of its cluster in the
/// kubeconfig, if any (none without a kubeconfig, e.g. in a pod).
pub(crate) fn cluster_extension(
    config: &RunConfig,
    name: &str,
) -> (String, Option<serde_json::Value>) {
    let kubeconfig = match &config.kubeconfig {
        Some((path, _)) => kube::config::Kubeconfig::read_from(path),
        None => kube::config::Kubeconfig::read(),
    };
    let Ok(kubeconfig) = kubeconfig else {
        return (String::new(), None);
    };
    let context = config
        .kube_context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .unwrap_or_default();
    let cluster_name = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone());
    let extension = kubeconfig
        .clusters
        .iter()
        .find(|c| Some(&c.name) == cluster_name.as_ref())
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.extensions.as_ref())
        .and_then(|extensions| extensions.iter().find(|e| e.name == name))
        .map(|e| e.extension.clone());
    (context, extension)
}

/// The content of the [`IMPORT_EXTENSION`] extension.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
pub struct ImportExtension {
    /// The import command; the archive replaces `{archive}` or is appended.
    pub command: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(env: Option<&str>, context: &str, extension: Option<&[String]>) -> Option<String> {
        import_command(env, context, extension, Path::new("/c/x.tar")).map(|c| c.join(" "))
    }

    #[test]
    fn import_command_follows_env_then_extension_then_context() {
        let ctr = ["ctr".to_owned(), "images".to_owned(), "import".to_owned()];
        assert_eq!(
            command(Some("minikube image load"), "kind-a", Some(&ctr)).as_deref(),
            Some("minikube image load /c/x.tar")
        );
        assert_eq!(
            command(Some("load {archive} --now"), "", None).as_deref(),
            Some("load /c/x.tar --now")
        );
        assert_eq!(
            command(None, "kind-a", Some(&ctr)).as_deref(),
            Some("ctr images import /c/x.tar")
        );
        assert_eq!(
            command(Some("  "), "kind-a", None).as_deref(),
            Some("kind load image-archive /c/x.tar --name a")
        );
        assert_eq!(
            command(None, "k3d-dev", None).as_deref(),
            Some("k3d image import /c/x.tar --cluster dev")
        );
        assert_eq!(command(None, "minikube", None), None);
    }

    #[test]
    fn reference_changes_with_the_content() {
        const A: CrateSource = CrateSource {
            name: "x",
            files: &[("src/main.rs", "fn main() {}")],
        };
        const B: CrateSource = CrateSource {
            name: "x",
            files: &[("src/main.rs", "fn main() { }")],
        };
        assert!(A.reference().starts_with("localhost/x:src-"));
        assert_eq!(A.reference(), A.reference());
        assert_ne!(A.reference(), B.reference());
    }

    #[test]
    fn architectures_use_kubernetes_names() {
        assert_eq!(kubernetes_arch("x86_64"), "amd64");
        assert_eq!(kubernetes_arch("aarch64"), "arm64");
        assert_eq!(kubernetes_arch("s390x"), "s390x");
    }
}
