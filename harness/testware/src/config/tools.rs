//! [`Tools`]: where the harness finds the programs and files it uses (helm, the
//! cache, the Kubernetes schemas, the container CLI and engine, the image import
//! command). Each comes from an environment variable, read here and nowhere
//! else; the modules that use them are handed these values.

use std::ffi::OsString;
use std::path::PathBuf;

/// The helm binary to use.
pub const ENV_HELM: &str = "HELM";
/// Which helm the cache's build is when `HELM` is unset: `3` (the default),
/// `4`, or an exact version (`4.3.2`); see [`crate::charts::helm::pinned`].
pub const ENV_HELM_VERSION: &str = "HARNESS_HELM_VERSION";
/// The project's cache for pinned downloads and builds.
pub const ENV_CACHE_DIR: &str = "HARNESS_CACHE_DIR";
/// Where the Kubernetes JSON schemas are (overrides the cache's copy).
pub const ENV_SCHEMA_DIR: &str = "HARNESS_SCHEMA_DIR";
/// The container CLI that builds images (`podman` or `docker`; default: podman
/// if it is on `PATH`, it needs no daemon, else docker).
pub const ENV_CONTAINER_CLI: &str = "HARNESS_CONTAINER_CLI";
/// A command that imports an image archive into the cluster's nodes (the archive
/// replaces `{archive}`, or is appended), e.g. `minikube image load`. It wins
/// over what the harness infers from the kube context.
pub const ENV_IMAGE_IMPORT: &str = "HARNESS_IMAGE_IMPORT";
/// `0` turns off the render cache (`helm template` output kept across runs).
pub const ENV_RENDER_CACHE: &str = "HARNESS_RENDER_CACHE";
/// The container engine's Docker-API address (as testcontainers reads it).
pub const ENV_DOCKER_HOST: &str = "DOCKER_HOST";

/// Where the harness finds its tools; see the `ENV_*` constants of this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// `HELM`: this helm binary, else `helm` on [`Tools::path`], else the cache's.
    pub helm: Option<PathBuf>,
    /// `HARNESS_HELM_VERSION`: the cache's helm of this line or version, which
    /// then also wins over a helm on `PATH`.
    pub helm_version: Option<String>,
    /// `PATH`: where helm and container CLIs are looked for.
    pub path: OsString,
    /// `HARNESS_CACHE_DIR`, else `$XDG_CACHE_HOME/testware`, else `~/.cache/testware`.
    pub cache_dir: PathBuf,
    /// `HARNESS_SCHEMA_DIR`: the schemas' directory, instead of the cache's copy.
    pub schema_dir: Option<PathBuf>,
    /// `HARNESS_CONTAINER_CLI`: the CLI that builds images, instead of the first
    /// of docker and podman on `PATH`.
    pub container_cli: Option<String>,
    /// `HARNESS_IMAGE_IMPORT`: the command that loads an image archive into the
    /// cluster, for clusters the harness does not know.
    pub image_import: Option<String>,
    /// `DOCKER_HOST`: the container engine's address, else Docker's default socket.
    pub docker_host: Option<String>,
    /// Renders are kept across runs in `<cache>/renders` unless
    /// `HARNESS_RENDER_CACHE=0` (see [`crate::charts::render_cache`]).
    pub render_cache: bool,
}

impl Tools {
    /// Reads the variables from `env` (empty values count as unset).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        let get = |key: &str| env(key).filter(|v| !v.is_empty());
        let cache_dir = get(ENV_CACHE_DIR).map(PathBuf::from).unwrap_or_else(|| {
            get("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from("/tmp"))
                .join("testware")
        });
        Self {
            helm: get(ENV_HELM).map(PathBuf::from),
            helm_version: get(ENV_HELM_VERSION),
            path: get("PATH").map(OsString::from).unwrap_or_default(),
            cache_dir,
            schema_dir: get(ENV_SCHEMA_DIR).map(PathBuf::from),
            container_cli: get(ENV_CONTAINER_CLI),
            image_import: get(ENV_IMAGE_IMPORT),
            docker_host: get(ENV_DOCKER_HOST),
            render_cache: !get(ENV_RENDER_CACHE)
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")),
        }
    }

    /// Reads the variables from this process's environment.
    pub fn from_process() -> Self {
        Self::from_env(|key| std::env::var(key).ok())
    }

    /// The render cache these tools name, if it is on.
    pub fn render_cache(&self) -> Option<crate::charts::render_cache::RenderCache> {
        self.render_cache
            .then(|| crate::charts::render_cache::RenderCache::new(self.cache_dir.join("renders")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_follows_the_variable_then_xdg_then_home() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                vars.iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let tools = Tools::from_env(env(&[("HARNESS_CACHE_DIR", "/c"), ("HOME", "/h")]));
        assert_eq!(tools.cache_dir, PathBuf::from("/c"));
        let tools = Tools::from_env(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]));
        assert_eq!(tools.cache_dir, PathBuf::from("/x/testware"));
        let tools = Tools::from_env(env(&[("HOME", "/h"), ("HARNESS_SCHEMA_DIR", "/s")]));
        assert_eq!(tools.cache_dir, PathBuf::from("/h/.cache/testware"));
        assert_eq!(tools.schema_dir, Some(PathBuf::from("/s")));
        let tools = Tools::from_env(env(&[("HELM", ""), ("DOCKER_HOST", "unix:///d")]));
        assert_eq!(tools.helm, None, "an empty variable counts as unset");
        assert_eq!(tools.docker_host.as_deref(), Some("unix:///d"));
        assert!(tools.render_cache);
        let tools = Tools::from_env(env(&[("HARNESS_RENDER_CACHE", "0")]));
        assert!(!tools.render_cache);
    }
}
