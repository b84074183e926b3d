//! What the local cluster needs on the machine before it can start, installed
//! on first use: Debian's packages for the runtime and the network, and the
//! Kubernetes binaries built from Debian's source package into the project
//! cache, keyed by version. Nothing else: the images a repository's charts run
//! are that repository's to build (`testware images`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::components::{Binaries, KUBE_BUILD};

/// Debian packages the cluster runs on (etcd, containerd, runc, CNI plugins,
/// iptables) and builds with (Go and the reflect2 fix for the Kubernetes build,
/// podman for the addons' images).
pub const PACKAGES: [&str; 13] = [
    "etcd-server",
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "conntrack",
    "iproute2",
    "podman",
    "golang-go",
    "rsync",
    "dpkg-dev",
    "make",
    "golang-github-modern-go-reflect2-dev",
];

/// Services Debian starts on install that the cluster runs instances of its own of.
const SERVICES_TO_STOP: [&str; 2] = ["containerd", "etcd"];

/// The build script, shipped inside this package.
const BUILD_SCRIPT: &str = include_str!("../assets/build-kubernetes.sh");

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

/// The directory of the cached Kubernetes binaries under `cache`, built first
/// when they are missing (about 6 minutes of 2 cores, once per version; a
/// progress line every minute).
///
/// # Errors
/// The build fails: the last lines of its log are in the error.
pub fn ensure_kubernetes(cache: &Path) -> anyhow::Result<PathBuf> {
    let binaries = Binaries::cached(cache);
    if binaries.complete() {
        return Ok(binaries.kube);
    }
    eprintln!("building Kubernetes {KUBE_BUILD} from Debian's source package into the cache (about 6 min on 2 cores, once)");
    let script = cache.join("kubernetes").join("build-kubernetes.sh");
    std::fs::create_dir_all(cache.join("kubernetes"))?;
    std::fs::write(&script, BUILD_SCRIPT)
        .with_context(|| format!("writing {}", script.display()))?;
    let mut child = Command::new("bash")
        .arg(&script)
        .env("HARNESS_CACHE_DIR", cache)
        .stdout(Stdio::null())
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
                "  still building Kubernetes: {} min so far",
                elapsed.as_secs() / 60
            );
        }
    };
    if !status.success() {
        bail!("building Kubernetes {KUBE_BUILD} failed ({status}; its output is above)");
    }
    let binaries = Binaries::cached(cache);
    if !binaries.complete() {
        bail!(
            "the Kubernetes build left no complete set of binaries in {}",
            binaries.kube.display()
        );
    }
    eprintln!(
        "Kubernetes built in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(binaries.kube)
}
