//! What the local cluster needs on the machine before it can start, installed
//! on first use: Debian's packages for the runtime and the network, and
//! Kubernetes and etcd built from the Go module proxy into the project cache,
//! keyed by version. Nothing else: the images a repository's charts run are
//! that repository's to build (`testware images`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::binaries::Binaries;
use crate::release::{Kubernetes, ETCD_VERSION};

/// Debian packages the cluster runs on (containerd, runc, CNI plugins,
/// iptables) and builds the addons' images with (podman).
pub const PACKAGES: [&str; 8] = [
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "conntrack",
    "iproute2",
    "podman",
    "ca-certificates",
];

/// Services Debian starts on install that the cluster runs instances of its own of.
const SERVICES_TO_STOP: [&str; 1] = ["containerd"];

/// The build script, shipped inside this package.
pub const BUILD_SCRIPT: &str = include_str!("../assets/build-go-release.sh");

/// Installs the missing [`PACKAGES`] with apt-get (one line says which).
///
/// # Errors
/// Not root while packages are missing, or apt-get fails (its output included).
pub fn ensure_packages() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|p| !is_installed(p))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !nix::unistd::Uid::effective().is_root() {
        bail!(
            "missing Debian packages: {} (hint: run as root, or apt-get install them)",
            missing.join(" ")
        );
    }
    eprintln!(
        "installing Debian packages the cluster needs: {}",
        missing.join(" ")
    );
    apt_get(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt_get(&install)?;
    for service in SERVICES_TO_STOP {
        let _ = Command::new("systemctl")
            .args(["stop", service])
            .stderr(Stdio::null())
            .status();
    }
    Ok(())
}

fn is_installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn apt_get(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .context("failed to run apt-get (hint: the local cluster needs a Debian machine)")?;
    if !out.status.success() {
        bail!(
            "apt-get {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The binaries of Kubernetes `release` and of the pinned etcd under `cache`,
/// each built first when missing (Kubernetes about 12 minutes of 2 cores, etcd
/// about 1, once per version; a progress line every minute).
///
/// # Errors
/// A build fails: the last lines of its log are in the error output.
pub fn ensure_binaries(cache: &Path, release: Kubernetes) -> anyhow::Result<Binaries> {
    ensure_release(cache, "etcd", ETCD_VERSION)?;
    ensure_release(cache, "kubernetes", &release.to_string())?;
    let binaries = Binaries::cached(cache, release);
    if !binaries.complete() {
        bail!(
            "the builds left no complete set of binaries in {} and {}",
            binaries.kube.display(),
            binaries.etcd.display()
        );
    }
    Ok(binaries)
}

/// The directory of the commands of `project` (`kubernetes`, `etcd`, `helm`)
/// at `version` in `cache`, built from the Go module proxy first when they are
/// missing (`assets/build-go-release.sh`; its own lines say what it does).
///
/// # Errors
/// The build fails (its output above says why).
pub fn ensure_release(cache: &Path, project: &str, version: &str) -> anyhow::Result<PathBuf> {
    let script = cache.join("scripts").join("build-go-release.sh");
    std::fs::create_dir_all(cache.join("scripts"))?;
    std::fs::write(&script, BUILD_SCRIPT)
        .with_context(|| format!("writing {}", script.display()))?;
    let mut child = Command::new("bash")
        .arg(&script)
        .args([project, version])
        .env("HARNESS_CACHE_DIR", cache)
        .stdout(Stdio::piped())
        .spawn()
        .context("failed to run bash")?;
    let started = Instant::now();
    let mut said = Duration::ZERO;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(500));
        let elapsed = started.elapsed();
        if elapsed >= said + Duration::from_secs(60) {
            said = elapsed;
            eprintln!(
                "  still building {project} {version}: {} min so far",
                elapsed.as_secs() / 60
            );
        }
    };
    let mut dir = String::new();
    if let Some(mut out) = child.stdout.take() {
        use std::io::Read as _;
        out.read_to_string(&mut dir)?;
    }
    if !status.success() {
        bail!("building {project} {version} from the Go module proxy failed ({status}; its output is above)");
    }
    Ok(PathBuf::from(dir.trim()))
}
