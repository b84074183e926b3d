//! Renders kept across runs: `helm template`'s output on disk, keyed by a
//! SHA-256 of everything a render depends on — every file of the chart
//! directory (subcharts included), the values files' contents, the `--set`
//! pairs, release, namespace, Kubernetes and API versions, the flags and
//! helm's version. A run over unchanged charts starts no helm process; a
//! changed byte of any input renders again. Bounded: beyond [`MAX_ENTRIES`]
//! renders the oldest are dropped. `testware cache clear` empties it;
//! `HARNESS_RENDER_CACHE=0` turns it off.
//!
//! Renders that build dependencies first (`RenderOptions::dependency_build`)
//! are not kept: the build changes the chart directory the key is made of.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::charts::helm::Version;
use crate::charts::options::RenderOptions;

/// How many renders are kept; writing one more drops the oldest down to
/// [`KEEP_AFTER_PRUNE`].
pub const MAX_ENTRIES: usize = 2000;
/// How many renders a prune keeps.
pub const KEEP_AFTER_PRUNE: usize = 1500;

/// The renders directory.
#[derive(Debug, Clone)]
pub struct RenderCache {
    dir: PathBuf,
}

impl RenderCache {
    /// The cache in `dir` (created on the first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of rendering the chart in `chart_dir` with `options` by helm
    /// `version`; `None` when the render is not to be kept (dependencies built
    /// first) or an input cannot be read (helm then says why).
    pub fn key(
        &self,
        version: Version,
        chart_dir: &Path,
        options: &RenderOptions,
    ) -> Option<String> {
        if options.dependency_build {
            return None;
        }
        let mut hash = Sha256::new();
        let mut field = |name: &str, bytes: &[u8]| {
            hash.update(name.as_bytes());
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        field(
            "helm",
            format!("{}.{}.{}", version.major, version.minor, version.patch).as_bytes(),
        );
        for (relative, content) in files_under(chart_dir)? {
            field("chart-file", relative.as_bytes());
            field("content", &content);
        }
        for values in options.values.paths(chart_dir) {
            field("values", &std::fs::read(&values).ok()?);
        }
        for (key, value) in &options.values.set {
            field("set", format!("{key}={value}").as_bytes());
        }
        field("release", options.release.as_bytes());
        field("namespace", options.namespace.as_bytes());
        let kube = options
            .kube_version
            .map(|v| v.to_string())
            .unwrap_or_default();
        field("kube-version", kube.as_bytes());
        for api in &options.api_versions {
            field("api-version", api.as_bytes());
        }
        field("skip-tests", &[u8::from(options.skip_tests)]);
        field("debug", &[u8::from(options.debug)]);
        Some(crate::containers::image::short_hex(&hash.finalize()))
    }

    /// The render kept under `key`, if any.
    pub fn load(&self, key: &str) -> Option<String> {
        std::fs::read_to_string(self.path(key)).ok()
    }

    /// Keeps `text` under `key` (written whole or not at all), then drops the
    /// oldest renders beyond [`MAX_ENTRIES`]. A cache that cannot be written
    /// only costs the next run a helm process, so failures are ignored.
    pub fn store(&self, key: &str, text: &str) {
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let partial = self
            .dir
            .join(format!("{key}.{}.partial", crate::config::random_suffix(6)));
        if std::fs::write(&partial, text).is_ok() {
            let _ = std::fs::rename(&partial, self.path(key));
        }
        let _ = std::fs::remove_file(&partial);
        self.prune(MAX_ENTRIES, KEEP_AFTER_PRUNE);
    }

    /// Deletes every render kept.
    ///
    /// # Errors
    /// The directory exists but cannot be removed.
    pub fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// How many renders are kept.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.yaml"))
    }

    fn entries(&self) -> Vec<(std::time::SystemTime, PathBuf)> {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect()
    }

    /// Beyond `max` renders, drops the oldest down to `keep`.
    fn prune(&self, max: usize, keep: usize) {
        let mut entries = self.entries();
        if entries.len() <= max {
            return;
        }
        entries.sort();
        for (_, path) in &entries[..entries.len() - keep] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Every file under `dir` as (path relative to it, content), sorted by path;
/// `None` when one cannot be read.
fn files_under(dir: &Path) -> Option<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(current) = dirs.pop() {
        for entry in std::fs::read_dir(&current).ok()? {
            let path = entry.ok()?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let relative = path.strip_prefix(dir).ok()?.to_string_lossy().into_owned();
                files.push((relative, std::fs::read(&path).ok()?));
            }
        }
    }
    files.sort();
    Some(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELM: Version = Version {
        major: 3,
        minor: 10,
        patch: 1,
    };

    fn scratch() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "render-cache-test-{}",
            crate::config::random_suffix(6)
        ));
        std::fs::create_dir_all(dir.join("chart/templates")).unwrap();
        std::fs::write(dir.join("chart/Chart.yaml"), "name: c\nversion: 1.0.0\n").unwrap();
        std::fs::write(dir.join("chart/templates/a.yaml"), "a: 1\n").unwrap();
        std::fs::write(dir.join("values.yaml"), "x: 1\n").unwrap();
        dir
    }

    #[test]
    fn every_input_is_part_of_the_key() {
        let dir = scratch();
        let cache = RenderCache::new(dir.join("renders"));
        let chart = dir.join("chart");
        let options = RenderOptions::default().values(dir.join("values.yaml"));
        let key = |options: &RenderOptions| cache.key(HELM, &chart, options).unwrap();
        let first = key(&options);
        assert_eq!(key(&options), first, "the same inputs, the same key");
        std::fs::write(chart.join("templates/a.yaml"), "a: 2\n").unwrap();
        let template_changed = key(&options);
        assert_ne!(template_changed, first, "a template's byte");
        std::fs::write(chart.join("templates/b.yaml"), "").unwrap();
        assert_ne!(key(&options), template_changed, "a new file");
        let before = key(&options);
        std::fs::write(dir.join("values.yaml"), "x: 2\n").unwrap();
        assert_ne!(key(&options), before, "a values file's content");
        let base = key(&options);
        for changed in [
            options.clone().set("y", "1"),
            options.clone().release("other"),
            options.clone().namespace("other"),
            options.clone().api_version("x/v1"),
            options
                .clone()
                .kube_version(crate::manifest::api_versions::KubeVersion { minor: 25 }),
            RenderOptions {
                skip_tests: true,
                ..options.clone()
            },
        ] {
            assert_ne!(key(&changed), base, "{changed:?}");
        }
        let newer = Version { patch: 2, ..HELM };
        assert_ne!(
            cache.key(newer, &chart, &options).unwrap(),
            base,
            "helm's version"
        );
        assert_eq!(
            cache.key(HELM, &chart, &options.clone().dependency_build()),
            None,
            "dependency builds change the chart: not kept"
        );
        let missing = RenderOptions::default().values("no-such.yaml");
        assert_eq!(cache.key(HELM, &chart, &missing), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stored_renders_load_prune_and_clear() {
        let dir = scratch();
        let cache = RenderCache::new(dir.join("renders"));
        assert_eq!(cache.load("k1"), None);
        cache.store("k1", "kind: A\n");
        assert_eq!(cache.load("k1").as_deref(), Some("kind: A\n"));
        for i in 2..=5 {
            cache.store(&format!("k{i}"), "kind: B\n");
        }
        assert_eq!(cache.len(), 5);
        cache.prune(4, 2);
        assert_eq!(cache.len(), 2, "pruned to what it keeps");
        cache.prune(4, 2);
        assert_eq!(cache.len(), 2, "nothing to prune below the bound");
        cache.clear().unwrap();
        assert!(cache.is_empty());
        cache.clear().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
