//! The image pipeline: static Rust binaries in `FROM scratch` images built with
//! podman, saved as OCI archives in the project cache (keyed by content, so only
//! what changed is rebuilt), and loaded into a cluster (local: containerd import;
//! kind: `kind load image-archive`; k3d: `k3d image import`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};

use crate::layout::Layout;

/// The Rust target the images' binaries are built for (static, glibc).
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// One image built from a binary of this workspace.
#[derive(Debug, Clone, Copy)]
pub struct RustImage {
    /// Image name (`localhost/<name>:<version>`).
    pub name: &'static str,
    /// Cargo package.
    pub package: &'static str,
    /// Binary in it.
    pub bin: &'static str,
}

/// The images of the cluster's addons and the charts under test.
pub const IMAGES: [RustImage; 5] = [
    RustImage {
        name: "testware-pause",
        package: "local-cluster",
        bin: "testware-pause",
    },
    RustImage {
        name: "cluster-dns",
        package: "local-cluster",
        bin: "cluster-dns",
    },
    RustImage {
        name: "local-path-provisioner",
        package: "local-cluster",
        bin: "local-path-provisioner",
    },
    RustImage {
        name: "echo-server",
        package: "echo-server",
        bin: "echo-server",
    },
    RustImage {
        name: "testware-toolbox",
        package: "local-cluster",
        bin: "testware-toolbox",
    },
];

/// Image tag: the workspace version.
pub fn tag() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Where built image archives are kept.
pub fn archive_dir(cache: &Path) -> PathBuf {
    cache.join("images")
}

/// Builds every image whose content changed; returns the archives of all images.
///
/// # Errors
/// cargo or podman fail (with their output), or a file cannot be written.
pub fn build(repo: &Path, cache: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let target_dir = repo.join("target/images");
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(repo)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            TARGET,
            "--target-dir",
        ])
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    let mut packages: Vec<&str> = IMAGES.iter().map(|i| i.package).collect();
    packages.dedup();
    for p in packages {
        cargo.args(["-p", p]);
    }
    for image in IMAGES {
        cargo.args(["--bin", image.bin]);
    }
    let status = cargo.status().context("failed to run cargo")?;
    if !status.success() {
        bail!("building the image binaries failed ({status})");
    }

    let dir = archive_dir(cache);
    std::fs::create_dir_all(&dir)?;
    let mut archives = Vec::new();
    for image in IMAGES {
        let binary = target_dir.join(TARGET).join("release").join(image.bin);
        let context = target_dir.join("context").join(image.name);
        std::fs::create_dir_all(&context)?;
        let containerfile = format!(
            "FROM scratch\nCOPY {bin} /{bin}\nUSER 65532:65532\nENTRYPOINT [\"/{bin}\"]\n",
            bin = image.bin
        );
        let bytes =
            std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
        let mut hasher = DefaultHasher::new();
        containerfile.hash(&mut hasher);
        bytes.hash(&mut hasher);
        let archive = dir.join(format!(
            "{}-{}-{:016x}.tar",
            image.name,
            tag(),
            hasher.finish()
        ));
        if !archive.is_file() {
            std::fs::write(context.join("Containerfile"), &containerfile)?;
            std::fs::write(context.join(image.bin), &bytes)?;
            set_executable(&context.join(image.bin))?;
            let reference = format!("localhost/{}:{}", image.name, tag());
            run_podman(
                &["build", "--quiet", "--tag", &reference, "--file"],
                &[&context.join("Containerfile"), &context],
            )?;
            let partial = archive.with_extension("tar.partial");
            run_podman_save(&reference, &partial)?;
            std::fs::rename(&partial, &archive)?;
            remove_older(&dir, image.name, &archive);
            eprintln!("  built {reference}");
        }
        archives.push(archive);
    }
    Ok(archives)
}

fn run_podman(args: &[&str], paths: &[&Path]) -> anyhow::Result<()> {
    let out = Command::new("podman")
        // The hard RLIMIT_NOFILE here is 20000; podman must not ask for more.
        .args(["--log-level", "error"])
        .args(args)
        .args(paths)
        .output()
        .context("failed to run podman (hint: ci/install-packages)")?;
    if !out.status.success() {
        bail!(
            "podman {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn run_podman_save(reference: &str, output: &Path) -> anyhow::Result<()> {
    let out = Command::new("podman")
        .args(["save", "--format", "oci-archive", "--output"])
        .arg(output)
        .arg(reference)
        .output()
        .context("failed to run podman")?;
    if !out.status.success() {
        bail!(
            "podman save {reference} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn set_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

/// Deletes archives of `name` other than `keep`.
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

/// Imports an OCI archive into the local cluster's containerd (namespace `k8s.io`).
///
/// # Errors
/// `ctr` fails.
pub fn import(layout: &Layout, archive: &Path) -> anyhow::Result<()> {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(layout.containerd_socket())
        .args(["-n", "k8s.io", "images", "import", "--no-unpack=false"])
        .arg(archive)
        .output()
        .context("failed to run ctr")?;
    if !out.status.success() {
        bail!(
            "importing {} failed: {}",
            archive.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Loads archives into a kind or k3d cluster.
///
/// # Errors
/// The tool is missing or fails.
pub fn load_into(provider: &str, cluster: &str, archives: &[PathBuf]) -> anyhow::Result<()> {
    for archive in archives {
        let mut cmd = match provider {
            "kind" => {
                let mut c = Command::new("kind");
                c.args(["load", "image-archive"])
                    .arg(archive)
                    .args(["--name", cluster]);
                c
            }
            "k3d" => {
                let mut c = Command::new("k3d");
                c.args(["image", "import"])
                    .arg(archive)
                    .args(["--cluster", cluster]);
                c
            }
            other => bail!("unknown provider {other:?} (expected local, kind or k3d)"),
        };
        let out = cmd
            .output()
            .with_context(|| format!("failed to run {provider} (hint: is it installed?)"))?;
        if !out.status.success() {
            bail!(
                "{provider} failed to load {}: {}",
                archive.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}
