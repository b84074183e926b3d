//! What an image is made of and how it becomes an archive: the one build step of
//! every image the harness makes — the library's on-demand helper images
//! ([`super::images`]), the embedded cluster's addons and the images a
//! workspace declares (crate `local-cluster`). Images are `FROM scratch` with
//! the files given (binaries, the libraries they need, links), built by the
//! machine's container CLI (podman or docker) and saved as archives in the
//! cache, named by a SHA-256 of their content, so only what changed is rebuilt
//! and a key does not change between toolchains.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest as _, Sha256};

use crate::config::{Tools, ENV_CONTAINER_CLI, ENV_IMAGE_IMPORT};

/// What goes wrong while making or importing an image; each names the step and
/// the command.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A helper's crate did not compile.
    #[error("building {name} with `{command}` failed: {detail} (hint: on-demand images need cargo and glibc's static libraries, Debian's libc6-dev, on a Linux machine of the nodes' architecture)")]
    Compile {
        /// The crate.
        name: String,
        /// The cargo command.
        command: String,
        /// The end of cargo's output.
        detail: String,
    },
    /// Neither docker nor podman is on `PATH`.
    #[error("no container CLI to build image {reference} (hint: install docker or podman, or name one in {ENV_CONTAINER_CLI})")]
    NoContainerCli {
        /// The image.
        reference: String,
    },
    /// A command failed (container CLI or import).
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its output, or why it did not start.
        detail: String,
    },
    /// No way to import images into this cluster is known.
    #[error("no way to import image {reference} into the cluster of kube context {context:?} (hint: set {ENV_IMAGE_IMPORT} to a command that loads an image archive into its nodes, e.g. `minikube image load`; kind-* and k3d-* contexts and the testware local cluster need none)")]
    NoImporter {
        /// The image.
        reference: String,
        /// The kube context (empty without a kubeconfig).
        context: String,
    },
    /// The nodes run another architecture than the binary is built for.
    #[error("node {node} runs {node_arch}, this machine builds {host_arch} binaries (hint: build the image on a machine of the nodes' architecture and load it yourself)")]
    Architecture {
        /// The node.
        node: String,
        /// Its architecture (Kubernetes names: amd64, arm64).
        node_arch: String,
        /// This machine's.
        host_arch: String,
    },
    /// Listing nodes or reading the cluster's identity failed.
    #[error("failed to read the cluster's nodes or its identity (the kube-system namespace)")]
    Cluster(#[source] kube::Error),
    /// The kubeconfig could not be read.
    #[error("failed to read the kubeconfig to choose an image import: {0}")]
    Kubeconfig(String),
    /// A file of the image cache could not be read, written or locked.
    #[error("failed to write {} (the image cache)", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// One file of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageFile {
    /// A file with this content.
    Bytes {
        /// Absolute path inside the image.
        path: String,
        /// Its content.
        bytes: Vec<u8>,
        /// Mode 0755 rather than 0644 (binaries and libraries).
        executable: bool,
    },
    /// A symbolic link.
    Link {
        /// Absolute path inside the image.
        path: String,
        /// What it points to.
        target: String,
    },
}

impl ImageFile {
    /// Its absolute path inside the image.
    pub fn path(&self) -> &str {
        match self {
            Self::Bytes { path, .. } | Self::Link { path, .. } => path,
        }
    }
}

/// What one image is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// `localhost/<name>:<tag>`.
    pub name: String,
    /// See [`ImageSpec::name`].
    pub tag: String,
    /// Its files, sorted by path, one entry a path (see [`sorted`]).
    pub files: Vec<ImageFile>,
    /// The entrypoint.
    pub entrypoint: String,
}

impl ImageSpec {
    /// `localhost/<name>:<tag>`.
    pub fn reference(&self) -> String {
        format!("localhost/{}:{}", self.name, self.tag)
    }

    fn containerfile(&self) -> String {
        format!(
            "FROM scratch\nCOPY rootfs/ /\nUSER 65532:65532\nENTRYPOINT [\"{}\"]\n",
            self.entrypoint
        )
    }

    /// A SHA-256 of everything the image is made of: equal keys, equal images.
    pub fn content_key(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(self.containerfile());
        for file in &self.files {
            match file {
                ImageFile::Bytes {
                    path,
                    bytes,
                    executable,
                } => {
                    hash.update([0u8, u8::from(*executable)]);
                    hash.update(path);
                    hash.update((bytes.len() as u64).to_le_bytes());
                    hash.update(bytes);
                }
                ImageFile::Link { path, target } => {
                    hash.update([1u8]);
                    hash.update(path);
                    hash.update([0u8]);
                    hash.update(target);
                }
            }
            hash.update([0xffu8]);
        }
        short_hex(&hash.finalize())
    }

    /// Its archive in `dir`: `<name>-<tag>-<content key>.tar`.
    pub fn archive_in(&self, dir: &Path) -> PathBuf {
        dir.join(format!(
            "{}-{}-{}.tar",
            self.name,
            self.tag,
            self.content_key()
        ))
    }
}

/// The first 8 bytes of a digest in hex.
pub(crate) fn short_hex(digest: &[u8]) -> String {
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// `files` sorted by path, the first of each path kept.
pub fn sorted(mut files: Vec<ImageFile>) -> Vec<ImageFile> {
    files.sort_by(|a, b| a.path().cmp(b.path()));
    files.dedup_by(|a, b| a.path() == b.path());
    files
}

/// `HARNESS_CONTAINER_CLI`, else podman (needs no daemon) or docker from `PATH`.
pub fn container_cli(tools: &Tools) -> Option<String> {
    if let Some(cli) = &tools.container_cli {
        return Some(cli.clone());
    }
    ["podman", "docker"].into_iter().find_map(|name| {
        std::env::split_paths(&tools.path)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
            .map(|found| found.display().to_string())
    })
}

/// Builds the archive of every image of `specs` that is not in `dir` yet (its
/// context under `scratch`), with the container CLI `cli`; deletes older
/// archives of released images (numeric tags) it replaces. Returns the archives
/// of all of them, in order.
///
/// # Errors
/// The container CLI fails (with its output), or a file cannot be written.
pub fn build_archives(
    cli: &str,
    specs: &[ImageSpec],
    dir: &Path,
    scratch: &Path,
) -> Result<Vec<PathBuf>, ImageError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut archives = Vec::new();
    for spec in specs {
        let archive = spec.archive_in(dir);
        if !archive.is_file() {
            build_archive(cli, spec, &scratch.join(&spec.name), &archive)?;
            remove_older(dir, &spec.name, &archive);
            eprintln!("  built {}", spec.reference());
        }
        archives.push(archive);
    }
    Ok(archives)
}

/// Builds `spec` in `context` (emptied first) with the container CLI `cli` and
/// saves it as `archive`, removing it from the CLI's store again: the archive
/// is the product, a copy in the store would be a leftover.
///
/// # Errors
/// The container CLI fails (with its output), or a file cannot be written.
pub fn build_archive(
    cli: &str,
    spec: &ImageSpec,
    context: &Path,
    archive: &Path,
) -> Result<(), ImageError> {
    if context.exists() {
        std::fs::remove_dir_all(context).map_err(io(context))?;
    }
    let rootfs = context.join("rootfs");
    for file in &spec.files {
        let target = rootfs.join(file.path().trim_start_matches('/'));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        match file {
            ImageFile::Bytes {
                bytes, executable, ..
            } => {
                std::fs::write(&target, bytes).map_err(io(&target))?;
                if *executable {
                    use std::os::unix::fs::PermissionsExt as _;
                    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
                        .map_err(io(&target))?;
                }
            }
            ImageFile::Link { target: to, .. } => {
                std::os::unix::fs::symlink(to, &target).map_err(io(&target))?;
            }
        }
    }
    let containerfile = context.join("Containerfile");
    std::fs::write(&containerfile, spec.containerfile()).map_err(io(&containerfile))?;
    let reference = spec.reference();
    let path = |p: &Path| p.display().to_string();
    let podman = Path::new(cli).file_name().is_some_and(|n| n == "podman");
    let mut build = vec!["build", "--quiet"];
    if podman {
        // The same files give the same layer, so images that share their files
        // (the addons) share one layer in the cluster's store.
        build.extend(["--timestamp", "0"]);
    }
    let (file, dir) = (path(&containerfile), path(context));
    build.extend(["--tag", &reference, "--file", &file, &dir]);
    let partial = archive.with_extension("tar.partial");
    let partial_text = path(&partial);
    let mut save = vec!["save"];
    if podman {
        save.extend(["--format", "oci-archive"]);
    }
    save.extend(["--output", &partial_text, &reference]);
    let outcome = run_cli(cli, &build).and_then(|()| run_cli(cli, &save));
    let _ = run_cli(cli, &["rmi", "--force", &reference]);
    let _ = std::fs::remove_dir_all(context);
    outcome?;
    std::fs::rename(&partial, archive).map_err(io(archive))
}

/// Runs the container CLI (podman quietly: the hard RLIMIT_NOFILE may be below
/// what it asks for otherwise).
fn run_cli(cli: &str, args: &[&str]) -> Result<(), ImageError> {
    let mut command = Command::new(cli);
    if Path::new(cli).file_name().is_some_and(|n| n == "podman") {
        command.args(["--log-level", "error"]);
    }
    run(command.args(args))
}

/// Runs `command` to its end; a failure carries its command line and output.
///
/// # Errors
/// It does not start or exits unsuccessfully.
pub fn run(command: &mut Command) -> Result<(), ImageError> {
    let shown = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ImageError::Command {
            command: shown.clone(),
            detail: format!("did not start: {e}"),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(ImageError::Command {
        command: shown,
        detail: format!("{}: {}", output.status, tail(&output.stderr, 15)),
    })
}

/// The last `lines` lines of a command's output.
pub(crate) fn tail(output: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(output);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// An error maker for I/O on `path`.
pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.to_owned();
    move |source| ImageError::Io { path, source }
}

/// Deletes archives of `name` other than `keep` whose tag is a version (starts
/// with a digit): a released image replaced by a newer build.
fn remove_older(dir: &Path, name: &str, keep: &Path) {
    let prefix = format!("{name}-");
    for entry in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let file = entry.file_name().to_string_lossy().into_owned();
        let rest = file.strip_prefix(&prefix).unwrap_or_default();
        let is_same_image = rest
            .split('-')
            .next()
            .is_some_and(|v| v.chars().next().is_some_and(|c| c.is_ascii_digit()));
        if is_same_image && entry.path() != keep {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(files: Vec<ImageFile>) -> ImageSpec {
        ImageSpec {
            name: "a".into(),
            tag: "1.0.0".into(),
            files,
            entrypoint: "/a".into(),
        }
    }

    fn file(path: &str, bytes: &[u8]) -> ImageFile {
        ImageFile::Bytes {
            path: path.into(),
            bytes: bytes.to_vec(),
            executable: true,
        }
    }

    #[test]
    fn content_keys_are_stable_and_follow_every_byte() {
        let one = spec(vec![file("/a", b"x")]);
        // A SHA-256 prefix: the same on every toolchain (DefaultHasher is not).
        assert_eq!(one.content_key(), "41658755f0c8f67e");
        assert_ne!(
            spec(vec![file("/a", b"y")]).content_key(),
            one.content_key()
        );
        assert_ne!(
            spec(vec![file("/b", b"x")]).content_key(),
            one.content_key()
        );
        let link = ImageFile::Link {
            path: "/b".into(),
            target: "a".into(),
        };
        assert_ne!(
            spec(vec![file("/a", b"x"), link]).content_key(),
            one.content_key()
        );
        let mut other_entrypoint = one.clone();
        other_entrypoint.entrypoint = "/b".into();
        assert_ne!(other_entrypoint.content_key(), one.content_key());
        assert_eq!(
            one.archive_in(Path::new("/c")),
            PathBuf::from("/c/a-1.0.0-41658755f0c8f67e.tar")
        );
    }

    #[test]
    fn files_are_sorted_and_one_per_path() {
        let files = sorted(vec![file("/b", b"1"), file("/a", b"2"), file("/b", b"3")]);
        let paths: Vec<&str> = files.iter().map(ImageFile::path).collect();
        assert_eq!(paths, ["/a", "/b"]);
    }

    #[test]
    fn a_failed_command_names_itself_and_its_output() {
        let err =
            run(Command::new("sh").args(["-c", "echo broken >&2; exit 3"])).expect_err("exit 3");
        let text = err.to_string();
        assert!(
            text.contains("`sh -c echo broken >&2; exit 3` failed"),
            "{text}"
        );
        assert!(text.contains("broken"), "{text}");
    }
}
