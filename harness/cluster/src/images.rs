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

/// The images of the cluster's addons: what `up` builds and imports, all a
/// cluster needs (the sandbox, DNS, volumes) plus the toolbox tests exec into.
pub const ADDON_IMAGES: [RustImage; 4] = [
    RustImage {
        name: "testware-pause",
        package: "cluster-addons",
        bin: "testware-pause",
    },
    RustImage {
        name: "cluster-dns",
        package: "cluster-addons",
        bin: "cluster-dns",
    },
    RustImage {
        name: "local-path-provisioner",
        package: "cluster-addons",
        bin: "local-path-provisioner",
    },
    RustImage {
        name: "testware-toolbox",
        package: "cluster-addons",
        bin: "testware-toolbox",
    },
];

/// The images of this repository's charts under test: built and loaded by
/// `images build|load` (ci/images, ci/test), never by `up`.
pub const CHART_IMAGES: [RustImage; 6] = [
    RustImage {
        name: "echo-server",
        package: "echo-server",
        bin: "echo-server",
    },
    RustImage {
        name: "embargo-enqueue",
        package: "embargo-components",
        bin: "embargo-enqueue",
    },
    RustImage {
        name: "embargo-ingest",
        package: "embargo-components",
        bin: "embargo-ingest",
    },
    RustImage {
        name: "embargo-idle",
        package: "embargo-components",
        bin: "embargo-idle",
    },
    RustImage {
        name: "efd-connector",
        package: "efd-components",
        bin: "efd-connector",
    },
    RustImage {
        name: "logging-retention",
        package: "logging-components",
        bin: "logging-retention",
    },
];

/// Which images [`build`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSet {
    /// The addons only: what a cluster needs.
    Cluster,
    /// The addons, the charts' images and the images of Debian's and cached
    /// binaries (tansu, Redis, InfluxDB, the log stores and shipper).
    Repository,
}

/// Image tag: the workspace version.
pub fn tag() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Where built image archives are kept.
pub fn archive_dir(cache: &Path) -> PathBuf {
    cache.join("images")
}

/// An image made of files of this machine (Debian's binaries), with the shared
/// libraries `ldd` lists for them, plus optional binaries of this workspace.
#[derive(Debug, Clone, Copy)]
pub struct HostImage {
    /// Image name.
    pub name: &'static str,
    /// Tag: the upstream version the charts pin.
    pub tag: &'static str,
    /// Debian package whose version must start with `tag`.
    pub package: &'static str,
    /// Binaries of the machine, copied with their libraries to the same paths.
    pub binaries: &'static [&'static str],
    /// Binaries in the project cache `(path under the cache, path in the image)`, with their libraries.
    pub cached: &'static [(&'static str, &'static str)],
    /// Workspace binaries `(package, bin)` copied to `/<bin>`.
    pub workspace_bins: &'static [(&'static str, &'static str)],
    /// The entrypoint.
    pub entrypoint: &'static str,
}

/// Images built from Debian's binaries.
pub const HOST_IMAGES: [HostImage; 6] = [
    HostImage {
        name: "tansu",
        tag: "0.6.0",
        package: "",
        binaries: &[],
        cached: &[("tansu/0.6.0-libsql/bin/tansu", "/usr/bin/tansu")],
        workspace_bins: &[],
        entrypoint: "/usr/bin/tansu",
    },
    HostImage {
        name: "redis",
        tag: "7.0.15",
        package: "redis-server",
        binaries: &["/usr/bin/redis-server"],
        cached: &[],
        workspace_bins: &[],
        entrypoint: "/usr/bin/redis-server",
    },
    HostImage {
        name: "influxdb",
        tag: "1.6.7",
        package: "influxdb",
        binaries: &["/usr/bin/influxd"],
        cached: &[],
        workspace_bins: &[("efd-components", "influxdb-entrypoint")],
        entrypoint: "/influxdb-entrypoint",
    },
    // The logging chart: two Elasticsearch-API stores and the log shipper.
    HostImage {
        name: "noida-db",
        tag: "0.2.3",
        package: "",
        binaries: &[],
        cached: &[(
            "noida-db/0.2.3-elasticsearch/bin/noida-db",
            "/usr/bin/noida-db",
        )],
        workspace_bins: &[],
        entrypoint: "/usr/bin/noida-db",
    },
    HostImage {
        name: "osmem-server",
        tag: "0.1.6",
        package: "",
        binaries: &[],
        cached: &[("osmem-server/0.1.6/osmem-server", "/usr/bin/osmem-server")],
        workspace_bins: &[],
        entrypoint: "/usr/bin/osmem-server",
    },
    HostImage {
        name: "rsyslog",
        tag: "8.2302.0",
        package: "rsyslog",
        // rsyslogd and the modules the shipper loads (dlopen'ed, so listed here).
        binaries: &[
            "/usr/sbin/rsyslogd",
            "/usr/lib/x86_64-linux-gnu/rsyslog/imfile.so",
            "/usr/lib/x86_64-linux-gnu/rsyslog/omelasticsearch.so",
            "/usr/lib/x86_64-linux-gnu/rsyslog/lmregexp.so",
            "/usr/lib/x86_64-linux-gnu/rsyslog/lmnet.so",
        ],
        cached: &[],
        workspace_bins: &[],
        entrypoint: "/usr/sbin/rsyslogd",
    },
];

/// The files of one image: path inside the image, content, executable.
type Files = Vec<(String, Vec<u8>, bool)>;

/// Builds every image of `set` whose content changed; returns the archives of
/// all images of `set`.
///
/// # Errors
/// cargo or podman fail (with their output), a Debian package is missing or of
/// another version than the charts pin, or a file cannot be written.
pub fn build(repo: &Path, cache: &Path, set: ImageSet) -> anyhow::Result<Vec<PathBuf>> {
    let target_dir = repo.join("target/images");
    let (rust_images, host_images): (Vec<RustImage>, &[HostImage]) = match set {
        ImageSet::Cluster => (ADDON_IMAGES.to_vec(), &[]),
        ImageSet::Repository => (
            ADDON_IMAGES.iter().chain(&CHART_IMAGES).copied().collect(),
            &HOST_IMAGES,
        ),
    };
    let mut bins: Vec<(&str, &str)> = rust_images.iter().map(|i| (i.package, i.bin)).collect();
    bins.extend(
        host_images
            .iter()
            .flat_map(|h| h.workspace_bins.iter().copied()),
    );
    cargo_build_static(repo, &target_dir, &bins)?;
    let release = target_dir.join(TARGET).join("release");

    let mut specs: Vec<(String, String, Files, String)> = Vec::new();
    for image in rust_images {
        let bytes = read(&release.join(image.bin))?;
        specs.push((
            image.name.into(),
            tag().into(),
            vec![(format!("/{}", image.bin), bytes, true)],
            format!("/{}", image.bin),
        ));
    }
    for image in host_images {
        check_package_version(image)?;
        let mut files: Files = Vec::new();
        for binary in image.binaries {
            files.push(((*binary).to_owned(), read(Path::new(binary))?, true));
            for lib in shared_libraries(binary)? {
                let bytes = read(&lib)?;
                files.push((lib.display().to_string(), bytes, true));
            }
        }
        for (in_cache, in_image) in image.cached {
            let path = cache.join(in_cache);
            if !path.is_file() {
                bail!(
                    "{} is missing (hint: ci/install-tansu and ci/install-logging put the cached binaries there)",
                    path.display()
                );
            }
            files.push(((*in_image).to_owned(), read(&path)?, true));
            for lib in shared_libraries(&path.display().to_string())? {
                let bytes = read(&lib)?;
                files.push((lib.display().to_string(), bytes, true));
            }
        }
        for (_, bin) in image.workspace_bins {
            files.push((format!("/{bin}"), read(&release.join(bin))?, true));
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        files.dedup_by(|a, b| a.0 == b.0);
        specs.push((
            image.name.into(),
            image.tag.into(),
            files,
            image.entrypoint.into(),
        ));
    }

    let dir = archive_dir(cache);
    std::fs::create_dir_all(&dir)?;
    let mut archives = Vec::new();
    for (name, image_tag, files, entrypoint) in specs {
        let containerfile = format!(
            "FROM scratch\nCOPY rootfs/ /\nUSER 65532:65532\nENTRYPOINT [\"{entrypoint}\"]\n"
        );
        let mut hasher = DefaultHasher::new();
        containerfile.hash(&mut hasher);
        files.hash(&mut hasher);
        let archive = dir.join(format!("{name}-{image_tag}-{:016x}.tar", hasher.finish()));
        if !archive.is_file() {
            let context = target_dir.join("context").join(&name);
            if context.exists() {
                std::fs::remove_dir_all(&context)?;
            }
            for (path, bytes, executable) in &files {
                let target = context.join("rootfs").join(path.trim_start_matches('/'));
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&target, bytes)?;
                if *executable {
                    set_executable(&target)?;
                }
            }
            std::fs::write(context.join("Containerfile"), &containerfile)?;
            let reference = format!("localhost/{name}:{image_tag}");
            run_podman(
                &["build", "--quiet", "--tag", &reference, "--file"],
                &[&context.join("Containerfile"), &context],
            )?;
            let partial = archive.with_extension("tar.partial");
            let saved = run_podman_save(&reference, &partial);
            // The archive is the product: the copy in podman's store would turn into
            // an untagged leftover at the next rebuild.
            let _ = run_podman(&["rmi", "--force"], &[Path::new(&reference)]);
            saved?;
            std::fs::rename(&partial, &archive)?;
            remove_older(&dir, &name, &archive);
            eprintln!("  built {reference}");
        }
        archives.push(archive);
    }
    Ok(archives)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Builds `bins` as static binaries for [`TARGET`] into `target_dir`.
fn cargo_build_static(repo: &Path, target_dir: &Path, bins: &[(&str, &str)]) -> anyhow::Result<()> {
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
        .arg(target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    let mut packages: Vec<&str> = bins.iter().map(|(p, _)| *p).collect();
    packages.sort_unstable();
    packages.dedup();
    for p in packages {
        cargo.args(["-p", p]);
    }
    for (_, bin) in bins {
        cargo.args(["--bin", bin]);
    }
    let status = cargo.status().context("failed to run cargo")?;
    if !status.success() {
        bail!("building the image binaries failed ({status})");
    }
    Ok(())
}

/// The shared libraries (and loader) `ldd` lists for `binary`.
fn shared_libraries(binary: &str) -> anyhow::Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("failed to run ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("not a dynamic executable") || !out.status.success() {
        return Ok(Vec::new());
    }
    let mut libs = Vec::new();
    for line in text.lines() {
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libs.push(PathBuf::from(path));
        }
    }
    Ok(libs)
}

/// Fails unless the installed Debian package has the version the charts pin.
fn check_package_version(image: &HostImage) -> anyhow::Result<()> {
    if image.package.is_empty() {
        return Ok(());
    }
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", image.package])
        .output()
        .context("failed to run dpkg-query")?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || version.is_empty() {
        bail!(
            "Debian package {} is not installed (hint: ci/install-packages)",
            image.package
        );
    }
    let upstream = version.split_once(':').map(|(_, v)| v).unwrap_or(&version);
    if !upstream.starts_with(image.tag) {
        bail!(
            "Debian ships {} {version}, but the charts pin image localhost/{}:{}: update the tag here and in the charts' values",
            image.package,
            image.name,
            image.tag
        );
    }
    Ok(())
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

/// Loads archives into podman's image store (for the component tier's
/// containers); returns the references loaded.
///
/// # Errors
/// podman is missing or refuses an archive.
pub fn load_into_podman(archives: &[PathBuf]) -> anyhow::Result<Vec<String>> {
    let mut references = Vec::new();
    for archive in archives {
        let out = Command::new("podman")
            .args(["--log-level", "error", "load", "--input"])
            .arg(archive)
            .output()
            .context("failed to run podman (hint: ci/install-packages)")?;
        if !out.status.success() {
            bail!(
                "podman failed to load {}: {}",
                archive.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        references.extend(loaded_references(&text));
    }
    Ok(references)
}

/// The references in `podman load`'s "Loaded image: a" / "Loaded image(s): a,b" lines.
fn loaded_references(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with("Loaded image"))
        .filter_map(|l| l.split_once(": ").map(|(_, refs)| refs))
        .flat_map(|refs| refs.split(','))
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect()
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

#[cfg(test)]
mod tests {
    use super::loaded_references;

    #[test]
    fn podman_loads_name_what_they_loaded() {
        let out = "Getting image source signatures\nLoaded image: localhost/tansu:0.6.0\nLoaded image(s): localhost/a:1, localhost/b:2\n";
        assert_eq!(
            loaded_references(out),
            vec!["localhost/tansu:0.6.0", "localhost/a:1", "localhost/b:2"]
        );
    }
}
