//! What `testware check` needs and fetches on first use when it is missing:
//! the pinned helm (built from the Go module proxy with the machine's Go) and
//! the Kubernetes JSON schemas (PyPI package
//! `kubernetes-validate`), both into the project cache. The install scripts
//! ship inside this package; each says in one line what it fetches.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};
use testware::config::Tools;

const INSTALL_HELM: &str = include_str!("../assets/install-helm.sh");
const INSTALL_SCHEMAS: &str = include_str!("../assets/install-schemas.sh");

/// Fetches helm unless `HELM` is set or a helm is on `PATH` or in the cache.
///
/// # Errors
/// The fetch fails (its own message says why, with a hint).
pub fn ensure_helm(tools: &Tools) -> anyhow::Result<()> {
    if tools.helm.is_some() {
        return Ok(());
    }
    // A chosen version is the cache's build of it, whatever is on PATH.
    let wanted = match &tools.helm_version {
        Some(choice) => testware::charts::helm::pinned(Some(choice))?,
        None if std::env::split_paths(&tools.path).any(|d| d.join("helm").is_file()) => {
            return Ok(())
        }
        None => testware::charts::helm::pinned(None)?,
    };
    if testware::charts::helm::cached_helm(&tools.cache_dir, wanted).is_file() {
        return Ok(());
    }
    // The install script builds helm with the build script the cluster uses.
    let scripts = tools.cache_dir.join("scripts");
    std::fs::create_dir_all(&scripts)?;
    std::fs::write(
        scripts.join("build-go-release.sh"),
        local_cluster::provision::BUILD_SCRIPT,
    )?;
    run_script("install-helm.sh", INSTALL_HELM, &tools.cache_dir)
}

/// Fetches the schemas unless `HARNESS_SCHEMA_DIR` names a directory of them or
/// the cache has them.
///
/// # Errors
/// The fetch fails (its own message says why, with a hint).
pub fn ensure_schemas(tools: &Tools) -> anyhow::Result<()> {
    if tools.schema_dir.is_some()
        || testware::manifest::schema::root(tools)
            .join(".complete")
            .is_file()
    {
        return Ok(());
    }
    run_script("install-schemas.sh", INSTALL_SCHEMAS, &tools.cache_dir)
}

fn run_script(name: &str, text: &str, cache: &Path) -> anyhow::Result<()> {
    let dir = cache.join("scripts");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let script = dir.join(name);
    std::fs::write(&script, text).with_context(|| format!("writing {}", script.display()))?;
    let status = Command::new("bash")
        .arg(&script)
        .env("HARNESS_CACHE_DIR", cache)
        .stdout(Stdio::null())
        .status()
        .context("failed to run bash")?;
    if !status.success() {
        bail!("{name} failed ({status}; its message is above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use testware::charts::helm::{PINNED_V4, PINNED_VERSION};

    /// The script builds what the library looks for (`helm::pinned`).
    #[test]
    fn the_install_script_pins_the_librarys_versions() {
        for line in [
            format!("3) HELM_VERSION=v{PINNED_VERSION} ;;"),
            format!("4) HELM_VERSION=v{PINNED_V4} ;;"),
        ] {
            assert!(super::INSTALL_HELM.contains(&line), "{line}");
        }
    }
}
