//! The cluster's images: what the addons and a workspace's declared images are
//! made of (a binary and the shared libraries it needs), built into archives by
//! the library's one image pipeline ([`testware::containers::image`]: `FROM
//! scratch`, keyed by a SHA-256 of their content, so only what changed is
//! rebuilt), and loaded into a cluster (local: containerd import; kind and k3d:
//! the import the library infers for their contexts; podman's store for the
//! component tier).
//!
//! Two sources of images:
//! - **the addons** ([`addon_images`]): made from the running `testware`
//!   executable itself, a multi-call binary (see `cluster_addons`), so `cluster
//!   up` needs no source tree and builds nothing;
//! - **a workspace's own images** ([`declared_images`]): every package of the
//!   Cargo workspace may declare images in its manifest, where they are built:
//!
//! ```toml
//! [[package.metadata.testware.images]]
//! name = "embargo-enqueue"        # localhost/<name>:<tag>
//! bins = ["embargo-enqueue"]      # this package's binaries, built static, copied to /<bin>
//! # tag = "1.2.3"                 # default: the package's version
//! # host-files = ["/usr/bin/redis-server"]  # this machine's files, with their libraries
//! # cached-files = [{ from = "kafka/4.4.0/libs", to = "/opt/kafka/libs" }]  # under the cache
//! #   (a directory is copied whole: its files, links and each program's libraries)
//! # debian-package = "redis-server"        # its version must start with the tag
//! # entrypoint = "/embargo-enqueue"        # default: the first bin
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _};
use serde::Deserialize;

use testware::containers::image::{self, sorted, ImageFile, ImageSpec};

use crate::layout::Layout;

/// The Rust target the workspace images' binaries are built for (static, glibc).
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Where the multi-call binary lies in the addons' images; each addon is a link to it.
const ADDON_BINARY: &str = "/testware";

/// Image tag of the addons: the version of this crate (the `testware` command's).
pub fn tag() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Where built image archives are kept.
pub fn archive_dir(cache: &Path) -> PathBuf {
    cache.join("images")
}

/// Builds the archive of every image whose content changed (contexts under
/// `scratch`) with the machine's container CLI, through the library's image
/// pipeline ([`testware::containers::image`]); returns the archives of all of
/// them, in order.
///
/// # Errors
/// No container CLI, it fails (with its output), or a file cannot be written.
pub fn build(specs: &[ImageSpec], cache: &Path, scratch: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let tools = testware::config::Tools::from_process();
    let cli = image::container_cli(&tools).context(
        "no container CLI to build the images (hint: install podman, ci/install-packages)",
    )?;
    Ok(image::build_archives(
        &cli,
        specs,
        &archive_dir(cache),
        scratch,
    )?)
}

/// The addons' images, made from `executable` (the multi-call `testware`
/// binary) and the shared libraries it needs: one file for all four images,
/// each addon a link to it named as `cluster_addons` expects.
///
/// # Errors
/// The executable or a library cannot be read, or `ldd` cannot be run.
pub fn addon_images(executable: &Path) -> anyhow::Result<Vec<ImageSpec>> {
    let mut files = with_libraries(ADDON_BINARY, executable)?;
    // Debug information is most of a debug build (160 MB of 30): the pods need none.
    if let Some(ImageFile::Bytes { bytes, .. }) = files.first_mut() {
        if let Some(stripped) = without_debug_info(executable) {
            *bytes = stripped;
        }
    }
    for addon in cluster_addons::ADDONS {
        files.push(ImageFile::Link {
            path: format!("/{addon}"),
            target: ADDON_BINARY.trim_start_matches('/').to_owned(),
        });
    }
    let files = sorted(files);
    Ok(cluster_addons::ADDONS
        .iter()
        .map(|addon| ImageSpec {
            name: (*addon).to_owned(),
            tag: tag().to_owned(),
            files: files.clone(),
            entrypoint: format!("/{addon}"),
        })
        .collect())
}

/// `executable` without its debug information (`strip --strip-debug`), or
/// `None` when binutils' strip is missing or fails (the image keeps it whole).
fn without_debug_info(executable: &Path) -> Option<Vec<u8>> {
    let out = std::env::temp_dir().join(format!("testware-stripped-{}", std::process::id()));
    let status = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(executable)
        .status()
        .ok()?;
    let bytes = status.success().then(|| std::fs::read(&out).ok()).flatten();
    let _ = std::fs::remove_file(&out);
    bytes
}

/// One `[[package.metadata.testware.images]]` entry (see the module docs).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ImageDeclaration {
    /// Image name.
    pub name: String,
    /// Tag; default the package's version.
    pub tag: Option<String>,
    /// The package's binaries, built static and copied to `/<bin>`.
    #[serde(default)]
    pub bins: Vec<String>,
    /// Files of this machine, copied to the same paths with their libraries.
    #[serde(default)]
    pub host_files: Vec<String>,
    /// Files under the project cache.
    #[serde(default)]
    pub cached_files: Vec<CachedFile>,
    /// A Debian package whose installed version must start with the tag.
    pub debian_package: Option<String>,
    /// The entrypoint; default `/<first bin>`.
    pub entrypoint: Option<String>,
}

/// A file (or a directory, copied whole) under the project cache and where it
/// goes in the image.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CachedFile {
    /// Path under the cache.
    pub from: String,
    /// Absolute path in the image.
    pub to: String,
}

/// The `[package.metadata.testware]` table.
#[derive(Debug, Default, Deserialize)]
struct PackageMetadata {
    #[serde(default)]
    images: Vec<ImageDeclaration>,
}

/// Images declared by the packages of the workspace at `workspace`, with the
/// package that declares each and its version.
///
/// # Errors
/// `cargo metadata` fails, or a declaration is malformed (named with its package).
pub fn declarations(workspace: &Path) -> anyhow::Result<Vec<(String, String, ImageDeclaration)>> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .current_dir(workspace)
        .no_deps()
        .exec()
        .with_context(|| {
            format!(
                "reading the Cargo workspace at {} (hint: run in a Cargo workspace, or pass --workspace)",
                workspace.display()
            )
        })?;
    let mut found = Vec::new();
    for package in metadata.workspace_packages() {
        let Some(table) = package.metadata.get("testware") else {
            continue;
        };
        let parsed: PackageMetadata = serde_json::from_value(table.clone()).with_context(|| {
            format!(
                "package {} declares images under [package.metadata.testware] that do not parse",
                package.name
            )
        })?;
        for image in parsed.images {
            if image.bins.is_empty() && image.entrypoint.is_none() {
                bail!(
                    "image {} of package {} has no bins and no entrypoint",
                    image.name,
                    package.name
                );
            }
            found.push((package.name.to_string(), package.version.to_string(), image));
        }
    }
    Ok(found)
}

/// The images the workspace at `workspace` declares, their binaries built.
///
/// # Errors
/// cargo fails (with its output), a Debian package is missing or of another
/// version than the image's tag, or a file cannot be read.
pub fn declared_images(workspace: &Path, cache: &Path) -> anyhow::Result<Vec<ImageSpec>> {
    let declarations = declarations(workspace)?;
    let bins: Vec<(&str, &str)> = declarations
        .iter()
        .flat_map(|(package, _, image)| {
            image
                .bins
                .iter()
                .map(move |b| (package.as_str(), b.as_str()))
        })
        .collect();
    // Static release builds apart from the workspace's own (other flags).
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from)
        .join("images");
    if !bins.is_empty() {
        cargo_build_static(workspace, &target_dir, &bins)?;
    }
    let release = target_dir.join(TARGET).join("release");
    let mut specs = Vec::new();
    for (_, version, image) in &declarations {
        let tag = image.tag.clone().unwrap_or_else(|| version.clone());
        if let Some(package) = &image.debian_package {
            check_package_version(package, &image.name, &tag)?;
        }
        let mut files = Vec::new();
        for bin in &image.bins {
            files.push(ImageFile::Bytes {
                path: format!("/{bin}"),
                bytes: read(&release.join(bin))?,
                executable: true,
            });
        }
        for file in &image.host_files {
            files.extend(with_libraries(file, Path::new(file))?);
        }
        for cached in &image.cached_files {
            let path = cache.join(&cached.from);
            if path.is_dir() {
                files.extend(tree(&cached.to, &path)?);
                continue;
            }
            if !path.is_file() {
                bail!(
                    "{} is missing for image {} (hint: install what puts it there first, e.g. ci/install-kafka)",
                    path.display(),
                    image.name
                );
            }
            files.extend(with_libraries(&cached.to, &path)?);
        }
        let entrypoint = match (&image.entrypoint, image.bins.first()) {
            (Some(entrypoint), _) => entrypoint.clone(),
            (None, Some(bin)) => format!("/{bin}"),
            (None, None) => unreachable!("checked in declarations()"),
        };
        specs.push(ImageSpec {
            name: image.name.clone(),
            tag,
            files: sorted(files),
            entrypoint,
        });
    }
    Ok(specs)
}

/// `source` copied to `path` in the image, and the shared libraries `ldd`
/// lists for it at their own paths.
fn with_libraries(path: &str, source: &Path) -> anyhow::Result<Vec<ImageFile>> {
    let mut files = vec![ImageFile::Bytes {
        path: path.to_owned(),
        bytes: read(source)?,
        executable: true,
    }];
    for lib in shared_libraries(&source.display().to_string())? {
        files.push(ImageFile::Bytes {
            path: lib.display().to_string(),
            bytes: read(&lib)?,
            executable: true,
        });
    }
    Ok(files)
}

/// The directory `source` copied to `path` in the image: its files (mode kept:
/// executable or not), its symbolic links as links, and the shared libraries
/// of each program or library in it that lie outside it (those inside come
/// with the tree, found through their `$ORIGIN` paths).
fn tree(path: &str, source: &Path) -> anyhow::Result<Vec<ImageFile>> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut files = Vec::new();
    let mut pending = vec![source.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let from = entry.path();
            let relative = from.strip_prefix(source).unwrap_or(&from);
            let to = format!("{}/{}", path.trim_end_matches('/'), relative.display());
            let kind = entry
                .file_type()
                .with_context(|| format!("reading {}", from.display()))?;
            if kind.is_dir() {
                pending.push(from);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(&from)
                    .with_context(|| format!("reading {}", from.display()))?;
                files.push(ImageFile::Link {
                    path: to,
                    target: target.display().to_string(),
                });
            } else {
                let bytes = read(&from)?;
                let mode = entry
                    .metadata()
                    .map(|m| m.permissions().mode())
                    .unwrap_or(0);
                if bytes.starts_with(b"\x7fELF") {
                    for lib in shared_libraries(&from.display().to_string())? {
                        if !lib.starts_with(source) {
                            files.push(ImageFile::Bytes {
                                path: lib.display().to_string(),
                                bytes: read(&lib)?,
                                executable: true,
                            });
                        }
                    }
                }
                files.push(ImageFile::Bytes {
                    path: to,
                    bytes,
                    executable: mode & 0o111 != 0,
                });
            }
        }
    }
    Ok(files)
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Builds `bins` as static binaries for [`TARGET`] into `target_dir`.
fn cargo_build_static(
    workspace: &Path,
    target_dir: &Path,
    bins: &[(&str, &str)],
) -> anyhow::Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
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
        command.args(["-p", p]);
    }
    for (_, bin) in bins {
        command.args(["--bin", bin]);
    }
    let status = command.status().context("failed to run cargo")?;
    if !status.success() {
        bail!("building the image binaries failed ({status})");
    }
    Ok(())
}

/// Fails unless the installed Debian `package` has a version starting with `tag`.
fn check_package_version(package: &str, image: &str, tag: &str) -> anyhow::Result<()> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", package])
        .output()
        .context("failed to run dpkg-query")?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || version.is_empty() {
        bail!("Debian package {package} is not installed (hint: apt-get install {package})");
    }
    let upstream = version.split_once(':').map(|(_, v)| v).unwrap_or(&version);
    if !upstream.starts_with(tag) {
        bail!(
            "Debian ships {package} {version}, but image localhost/{image}:{tag} pins {tag}: update the tag where the image is declared and in the charts' values"
        );
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

/// `ctr images` on the local cluster's (first node's) containerd, in the kubelet's namespace (`k8s.io`).
fn ctr_images(layout: &Layout) -> Command {
    ctr_images_at(&layout.containerd_socket())
}

/// `ctr images` on the containerd at `socket`.
fn ctr_images_at(socket: &Path) -> Command {
    let mut command = Command::new("ctr");
    command
        .arg("--address")
        .arg(socket)
        .args(["-n", "k8s.io", "images"]);
    command
}

/// The containerd socket of every node of the local cluster, the first first.
pub fn node_sockets(layout: &Layout) -> Vec<PathBuf> {
    let shape = crate::shape::Shape::load(layout);
    std::iter::once(layout.containerd_socket())
        .chain(
            shape
                .extra()
                .iter()
                .map(|n| layout.node_dir(&n.name).join("run/containerd.sock")),
        )
        .collect()
}

/// Imports an OCI archive into every node's containerd (namespace `k8s.io`).
///
/// # Errors
/// `ctr` fails.
pub fn import(layout: &Layout, archive: &Path) -> anyhow::Result<()> {
    node_sockets(layout)
        .iter()
        .try_for_each(|socket| import_at(socket, archive))
}

/// Imports an OCI archive into the containerd at `socket` (namespace `k8s.io`).
///
/// # Errors
/// `ctr` fails.
pub fn import_at(socket: &Path, archive: &Path) -> anyhow::Result<()> {
    let out = ctr_images_at(socket)
        .args(["import", "--no-unpack=false"])
        .arg(archive)
        .output()
        .context("failed to run ctr")?;
    if !out.status.success() {
        bail!(
            "importing {} into the local cluster ({}) failed: {} (hint: is it up? `testware cluster up`)",
            archive.display(),
            socket.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The image references in the local cluster's containerd (namespace `k8s.io`):
/// names, and the `sha256:` IDs the kubelet's runtime adds for each image.
///
/// # Errors
/// `ctr` fails (the cluster is not running).
fn imported(layout: &Layout) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let out = ctr_images(layout)
        .args(["ls", "-q"])
        .output()
        .context("failed to run ctr")?;
    if !out.status.success() {
        bail!(
            "listing the local cluster's images failed: {} (hint: is it up? `testware cluster up`)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Removes `references` from the local cluster's containerd.
///
/// # Errors
/// `ctr` fails (with its message).
fn remove(layout: &Layout, references: &[String]) -> anyhow::Result<()> {
    if references.is_empty() {
        return Ok(());
    }
    for socket in node_sockets(layout) {
        let out = ctr_images_at(&socket)
            .args(["rm", "--sync"])
            .args(references)
            .output()
            .context("failed to run ctr")?;
        if !out.status.success() {
            bail!(
                "removing images from the local cluster ({}) failed: {}",
                socket.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

/// Where `up` records the images in the cluster right after it started.
const BASELINE: &str = "baseline-images.json";

/// Whether [`record_baseline`] ran for the running cluster.
pub fn baseline_recorded(layout: &Layout) -> bool {
    layout.path(BASELINE).is_file()
}

/// Records the images in the cluster now (right after `up`): what
/// [`remove_since_baseline`] keeps.
///
/// # Errors
/// `ctr` fails, or the file cannot be written.
pub fn record_baseline(layout: &Layout) -> anyhow::Result<()> {
    let path = layout.path(BASELINE);
    std::fs::write(&path, serde_json::to_string_pretty(&imported(layout)?)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Removes the images imported since [`record_baseline`]; returns them.
///
/// # Errors
/// No baseline is recorded, or `ctr` fails.
pub fn remove_since_baseline(layout: &Layout) -> anyhow::Result<Vec<String>> {
    let path = layout.path(BASELINE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (hint: `testware cluster up` records it)",
            path.display()
        )
    })?;
    let baseline: std::collections::BTreeSet<String> = serde_json::from_str(&text)
        .with_context(|| format!("{} does not parse", path.display()))?;
    let since: Vec<String> = imported(layout)?.difference(&baseline).cloned().collect();
    remove(layout, &since)?;
    Ok(since)
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
    if !matches!(provider, "kind" | "k3d") {
        bail!("unknown provider {provider:?} (expected local, kind or k3d)");
    }
    // The import the library infers for such a cluster's kube context.
    let context = format!("{provider}-{cluster}");
    for archive in archives {
        let command = testware::images::import_command(None, &context, None, archive)
            .context("no import command for the provider")?;
        let (program, args) = command.split_first().context("empty import command")?;
        image::run(Command::new(program).args(args)).with_context(|| {
            format!(
                "{provider} failed to load {} (hint: is {provider} installed?)",
                archive.display()
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_directory_is_copied_whole_with_modes_and_links() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("testware-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("legal/a")).unwrap();
        std::fs::write(dir.join("bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(dir.join("bin/run"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        std::fs::write(dir.join("legal/LICENSE"), "text").unwrap();
        std::os::unix::fs::symlink("../LICENSE", dir.join("legal/a/LICENSE")).unwrap();
        let files = sorted(tree("/opt/x/", &dir).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            files,
            vec![
                ImageFile::Bytes {
                    path: "/opt/x/bin/run".into(),
                    bytes: b"#!/bin/sh\n".to_vec(),
                    executable: true
                },
                ImageFile::Bytes {
                    path: "/opt/x/legal/LICENSE".into(),
                    bytes: b"text".to_vec(),
                    executable: false
                },
                ImageFile::Link {
                    path: "/opt/x/legal/a/LICENSE".into(),
                    target: "../LICENSE".into()
                },
            ]
        );
    }

    #[test]
    fn declarations_read_kebab_case_and_refuse_unknown_keys() {
        let table = serde_json::json!({"images": [{
            "name": "redis", "tag": "7.0.15", "debian-package": "redis-server",
            "host-files": ["/usr/bin/redis-server"], "entrypoint": "/usr/bin/redis-server",
            "cached-files": [{"from": "x/bin/x", "to": "/usr/bin/x"}]
        }]});
        let parsed: PackageMetadata = serde_json::from_value(table).expect("parses");
        assert_eq!(
            parsed.images[0].debian_package.as_deref(),
            Some("redis-server")
        );
        assert_eq!(parsed.images[0].cached_files[0].to, "/usr/bin/x");
        let typo = serde_json::json!({"images": [{"name": "a", "binz": ["a"]}]});
        assert!(serde_json::from_value::<PackageMetadata>(typo).is_err());
    }

    #[test]
    fn addon_images_share_one_binary_and_differ_by_entrypoint() {
        let exe = std::env::current_exe().expect("test binary");
        let images = addon_images(&exe).expect("addon images");
        assert_eq!(images.len(), cluster_addons::ADDONS.len());
        for (image, addon) in images.iter().zip(cluster_addons::ADDONS) {
            assert_eq!(image.entrypoint, format!("/{addon}"));
            assert!(image.files.iter().any(|f| matches!(f,
                ImageFile::Link { path, target } if path == &format!("/{addon}") && target == "testware")));
            assert_eq!(image.files, images[0].files);
        }
    }

    #[test]
    fn podman_loads_name_what_they_loaded() {
        let out = "Getting image source signatures\nLoaded image: localhost/kafka:4.4.0\nLoaded image(s): localhost/a:1, localhost/b:2\n";
        assert_eq!(
            loaded_references(out),
            vec!["localhost/kafka:4.4.0", "localhost/a:1", "localhost/b:2"]
        );
    }
}
