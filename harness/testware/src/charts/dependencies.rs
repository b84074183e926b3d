//! A chart's remote dependencies that are not on disk: vendored charts pull
//! them from repositories (`https://`, `oci://`, a named repository), which an
//! offline check cannot reach. Instead of refusing the whole chart, the check
//! renders a copy without them — the parent's own templates and every
//! dependency that is on disk — and says which were left out and how to make
//! them checkable.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::chart::ChartError;

/// A dependency of `Chart.yaml` that comes from a repository.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Dependency {
    /// The chart's name.
    pub name: String,
    /// The version (or range) asked for.
    #[serde(default)]
    pub version: String,
    /// Where it comes from.
    #[serde(default)]
    pub repository: String,
}

impl Dependency {
    /// `true` when helm needs the network (or a repository cache) for it.
    pub fn is_remote(&self) -> bool {
        !self.repository.is_empty() && !self.repository.starts_with("file://")
    }
}

#[derive(Debug, Deserialize)]
struct ChartFile {
    #[serde(default)]
    dependencies: Vec<Dependency>,
}

/// The remote dependencies of the chart in `dir` that its `charts/` directory
/// does not hold (neither unpacked nor as a `.tgz`).
///
/// # Errors
/// `Chart.yaml` cannot be read or parsed.
pub fn missing_remote(dir: &Path) -> Result<Vec<Dependency>, ChartError> {
    let file = dir.join("Chart.yaml");
    let metadata = |source: Box<dyn std::error::Error + Send + Sync>| ChartError::Metadata {
        path: file.clone(),
        source,
    };
    let text = std::fs::read_to_string(&file).map_err(|e| metadata(Box::new(e)))?;
    let chart: ChartFile = serde_yaml_ng::from_str(&text).map_err(|e| metadata(Box::new(e)))?;
    let vendored: Vec<String> = std::fs::read_dir(dir.join("charts"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    Ok(chart
        .dependencies
        .into_iter()
        .filter(|d| d.is_remote())
        .filter(|d| {
            !vendored.iter().any(|v| {
                *v == d.name
                    || v.strip_prefix(&format!("{}-", d.name)).is_some_and(|rest| {
                        rest.ends_with(".tgz") && rest.starts_with(|c: char| c.is_ascii_digit())
                    })
            })
        })
        .collect())
}

/// The archive of `dependency` in one of `dirs` (`<name>-<version>.tgz`, as
/// `helm pull` and `helm dependency build` name them): its exact version, or
/// the newest that meets its version range.
pub fn find_archive(dependency: &Dependency, dirs: &[PathBuf]) -> Option<PathBuf> {
    let range = version_range(&dependency.version);
    let prefix = format!("{}-", dependency.name);
    dirs.iter()
        .flat_map(|dir| std::fs::read_dir(dir).into_iter().flatten().flatten())
        .filter_map(|entry| {
            let file = entry.file_name().to_str()?.to_owned();
            let version = file.strip_prefix(&prefix)?.strip_suffix(".tgz")?.to_owned();
            let exact = version == dependency.version.trim_start_matches('v');
            let parsed = semver::Version::parse(&version).ok();
            let meets = match (&range, &parsed) {
                (Some(range), Some(v)) => range.matches(v),
                _ => false,
            };
            (exact || meets).then(|| (parsed, entry.path()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, path)| path)
}

/// Where helm keeps the charts it downloaded (`helm env HELM_REPOSITORY_CACHE`:
/// that variable, else `$XDG_CACHE_HOME/helm/repository`, else
/// `~/.cache/helm/repository`): archives a user already pulled count as on disk.
pub fn helm_repository_cache() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HELM_REPOSITORY_CACHE") {
        return Some(PathBuf::from(dir));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(cache.join("helm").join("repository"))
}

/// Helm's version constraint (`1.2.3`, `~1.2`, `^2`, `>=1.0 <2.0`, `1.2.x`, `*`)
/// as a semver requirement: comparators separated by spaces become commas, a
/// bare version means exactly it. `None`
/// when it is not one (an `||` of ranges, say): then only the exact version fits.
fn version_range(constraint: &str) -> Option<semver::VersionReq> {
    if constraint.contains("||") {
        return None;
    }
    let mut joined = String::new();
    for word in constraint.split_whitespace() {
        // An operator and its version may be apart (`>= 1.0`).
        let ends_in_operator = joined.ends_with(['<', '>', '=', '~', '^']);
        if !joined.is_empty() && !joined.ends_with(',') && !ends_in_operator {
            joined.push(',');
        }
        // A bare version is that version in helm (`=`), not a caret range as in Cargo.
        let bare = word.starts_with(|c: char| c.is_ascii_digit() || c == 'v') && !ends_in_operator;
        if bare {
            joined.push('=');
        }
        joined.push_str(word.trim_start_matches('v').trim_end_matches(','));
    }
    semver::VersionReq::parse(&joined).ok()
}

/// Copies the chart in `dir` to `into/<its directory name>`, its `Chart.yaml`
/// without the dependencies named in `left_out` and without `Chart.lock` (which
/// would no longer match); returns the copy's directory.
///
/// # Errors
/// The chart cannot be read or the copy written.
pub fn copy_without(dir: &Path, left_out: &[Dependency], into: &Path) -> std::io::Result<PathBuf> {
    let name = dir.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a chart directory has a name",
        )
    })?;
    let copy = into.join(name);
    if copy.exists() {
        std::fs::remove_dir_all(&copy)?;
    }
    copy_tree(dir, &copy)?;
    let _ = std::fs::remove_file(copy.join("Chart.lock"));
    let file = copy.join("Chart.yaml");
    let invalid = |e: serde_yaml_ng::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let mut chart: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&file)?).map_err(invalid)?;
    if let Some(list) = chart
        .get_mut("dependencies")
        .and_then(serde_yaml_ng::Value::as_sequence_mut)
    {
        list.retain(|d| {
            let name = d.get("name").and_then(serde_yaml_ng::Value::as_str);
            !left_out.iter().any(|l| Some(l.name.as_str()) == name)
        });
        // file:// paths are relative to the chart: the copy points at the originals.
        for d in list.iter_mut() {
            let local = d
                .get("repository")
                .and_then(serde_yaml_ng::Value::as_str)
                .and_then(|r| r.strip_prefix("file://"))
                .map(|r| dir.join(r));
            if let (Some(path), Some(map)) = (local, d.as_mapping_mut()) {
                let absolute = std::path::absolute(path)?;
                map.insert(
                    "repository".into(),
                    format!("file://{}", absolute.display()).into(),
                );
            }
        }
    }
    std::fs::write(&file, serde_yaml_ng::to_string(&chart).map_err(invalid)?)?;
    Ok(copy)
}

/// Copies directory `from` to `to`, following symbolic links.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// What the check says about the dependencies it left out: each with its
/// repository, and how to make them checkable.
pub fn not_checked(chart: &str, left_out: &[Dependency]) -> String {
    let names: Vec<String> = left_out
        .iter()
        .map(|d| format!("{} {} from {}", d.name, d.version, d.repository))
        .collect();
    format!(
        "chart {chart}: {} remote dependenc{} not checked (not in its charts/ directory nor a --dependency-dir, and an offline check cannot fetch {}): {}; its own templates and the dependencies on disk were checked. To check them too: `helm dependency build {chart}` with network access (or `helm pull` them into charts/ or a directory given with --dependency-dir), then check again",
        left_out.len(),
        if left_out.len() == 1 { "y" } else { "ies" },
        if left_out.len() == 1 { "it" } else { "them" },
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_dependencies_not_on_disk_are_found_and_left_out_of_a_copy() {
        let root = std::env::temp_dir().join(format!("testware-deps-{}", std::process::id()));
        let chart = root.join("umbrella");
        std::fs::create_dir_all(chart.join("charts/local")).unwrap();
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: umbrella\nversion: 1.0.0\ndependencies:\n- name: kafka\n  version: 1.2.3\n  repository: https://charts.example.org\n- name: redis\n  version: 2.0.0\n  repository: oci://registry.example.org/charts\n- name: local\n  version: 0.1.0\n  repository: https://charts.example.org\n- name: lib\n  version: 0.1.0\n  repository: file://../lib\n",
        )
        .unwrap();
        std::fs::write(chart.join("charts/redis-2.0.0.tgz"), "").unwrap();
        std::fs::write(chart.join("Chart.lock"), "dependencies: []\n").unwrap();
        let missing = missing_remote(&chart).unwrap();
        let names: Vec<&str> = missing.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["kafka"]);
        let copy = copy_without(&chart, &missing, &root.join("copies")).unwrap();
        let text = std::fs::read_to_string(copy.join("Chart.yaml")).unwrap();
        assert!(!text.contains("kafka") && text.contains("redis"), "{text}");
        let lib = std::path::absolute(chart.join("../lib")).unwrap();
        assert!(
            text.contains(&format!("file://{}", lib.display())),
            "{text}"
        );
        assert!(!copy.join("Chart.lock").exists() && copy.join("charts/redis-2.0.0.tgz").exists());
        assert!(not_checked("umbrella", &missing).contains("1 remote dependency not checked"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn archives_on_disk_meet_exact_versions_and_ranges() {
        let dir = std::env::temp_dir().join(format!("testware-archives-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in [
            "kafka-26.4.2.tgz",
            "kafka-26.5.0.tgz",
            "kafka-27.0.0.tgz",
            "kafka-ui-1.0.0.tgz",
        ] {
            std::fs::write(dir.join(file), "").unwrap();
        }
        let found = |version: &str| {
            let dependency = Dependency {
                name: "kafka".into(),
                version: version.into(),
                repository: "oci://registry.example.org/charts".into(),
            };
            find_archive(&dependency, std::slice::from_ref(&dir))
                .and_then(|p| p.file_name()?.to_str().map(str::to_owned))
        };
        assert_eq!(found("26.4.2").as_deref(), Some("kafka-26.4.2.tgz"));
        assert_eq!(found("~26.4.0").as_deref(), Some("kafka-26.4.2.tgz"));
        assert_eq!(found("^26.0.0").as_deref(), Some("kafka-26.5.0.tgz"));
        assert_eq!(
            found(">= 26.0.0 < 27.0.0").as_deref(),
            Some("kafka-26.5.0.tgz")
        );
        assert_eq!(found("26.x").as_deref(), Some("kafka-26.5.0.tgz"));
        assert_eq!(found("28.0.0"), None);
        assert_eq!(
            found("26.4.2 || 27.0.0"),
            None,
            "ranges joined by || are not read"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
