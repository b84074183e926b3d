//! Charts changed since a git ref, as chart-testing's `ct list-changed` finds
//! them: a team checks on each commit only the charts it touched, and a
//! changed chart must carry a higher `version` than it had at the ref (else
//! the chart repository would serve two different charts under one version).
//!
//! The comparison is against the merge base of the ref and `HEAD` (what a
//! merge request adds), working-tree and untracked files included, so a
//! change is seen before it is committed. A chart whose `file://` dependency
//! changed has changed too: its package holds the dependency. [`chart_at`]
//! reads a chart as it was at a ref, for upgrades from the last release.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

/// Why the changes since a ref cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    /// git did not run, or refused.
    #[error("git {args} failed in {}: {message} (hint: {hint})", dir.display())]
    Git {
        /// The arguments given.
        args: String,
        /// Where it ran.
        dir: PathBuf,
        /// What git said.
        message: String,
        /// What to do.
        hint: &'static str,
    },
    /// A `Chart.yaml` (on disk or at the ref) cannot be read.
    #[error("{what} cannot be read: {message}")]
    Metadata {
        /// The file, and where from.
        what: String,
        /// Why.
        message: String,
    },
}

/// How a chart stands against the ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// No file of the chart, or of its `file://` dependencies, changed.
    Unchanged,
    /// Files of the chart changed (paths relative to the repository, a few).
    Files(Vec<String>),
    /// A `file://` dependency changed (its directory, relative to the repository).
    Dependency(String),
}

/// A chart and how it changed since the ref.
#[derive(Debug, Clone)]
pub struct ChartChange {
    /// The chart's directory.
    pub dir: PathBuf,
    /// The chart's name (its directory's).
    pub name: String,
    /// What changed.
    pub change: Change,
    /// `version` in `Chart.yaml` now.
    pub version: String,
    /// `version` at the merge base; `None` for a chart new since then.
    pub version_before: Option<String>,
}

impl ChartChange {
    /// `true` when the chart changed.
    pub fn changed(&self) -> bool {
        self.change != Change::Unchanged
    }

    /// What is wrong with the chart's version, if anything: a changed chart
    /// must have a higher version than at the ref (a new one may have any).
    pub fn version_problem(&self, reference: &str) -> Option<String> {
        let before = self.version_before.as_deref().filter(|_| self.changed())?;
        let why = match &self.change {
            Change::Files(files) => format!("its files changed ({})", files.join(", ")),
            Change::Dependency(dir) => format!("its file:// dependency {dir} changed"),
            Change::Unchanged => return None,
        };
        let parse = |v: &str| semver::Version::parse(v.trim_start_matches('v'));
        match (parse(before), parse(&self.version)) {
            (Ok(old), Ok(new)) if new > old => None,
            (Ok(_), Ok(_)) => Some(format!(
                "chart {}: {why} since {reference}, but its version {} was not increased (it was {before} at {reference}); raise version in {}",
                self.name,
                self.version,
                self.dir.join("Chart.yaml").display()
            )),
            _ => Some(format!(
                "chart {}: {why} since {reference}; its version {} (was {before}) is not semantic versioning, so no increase can be seen (helm requires SemVer 2, e.g. 1.4.0)",
                self.name, self.version
            )),
        }
    }
}

/// The charts in `dirs` and how each changed since `reference` (a branch, tag
/// or commit), with the merge base compared against.
///
/// # Errors
/// git is missing, a directory is not in a git repository, the ref is unknown
/// (a shallow clone), or a `Chart.yaml` cannot be read.
pub fn since(
    reference: &str,
    dirs: &[PathBuf],
) -> Result<(String, Vec<ChartChange>), ChangesError> {
    let Some(first) = dirs.first() else {
        return Ok((String::new(), Vec::new()));
    };
    let top = PathBuf::from(git(first, &["rev-parse", "--show-toplevel"])?.trim());
    let base = git(&top, &["merge-base", reference, "HEAD"])?
        .trim()
        .to_owned();
    let mut files: BTreeSet<String> = split(&git(
        &top,
        &["diff", "--no-renames", "--name-only", "-z", &base],
    )?);
    files.extend(split(&git(
        &top,
        &["ls-files", "--others", "--exclude-standard", "-z"],
    )?));
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let relative = |dir: &Path| -> String {
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        dir.strip_prefix(&top).unwrap_or(&dir).display().to_string()
    };
    let touched = |rel: &str| -> Vec<String> {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        files
            .iter()
            .filter(|f| f.starts_with(&prefix))
            .cloned()
            .collect()
    };
    let mut changes = Vec::new();
    for dir in dirs {
        let rel = relative(dir);
        let own = touched(&rel);
        let change = if !own.is_empty() {
            const SHOWN: usize = 5;
            let mut shown: Vec<String> = own.iter().take(SHOWN).cloned().collect();
            if own.len() > SHOWN {
                shown.push(format!("and {} more", own.len() - SHOWN));
            }
            Change::Files(shown)
        } else {
            local_dependencies(dir)?
                .into_iter()
                .map(|d| relative(&d))
                .find(|d| !touched(d).is_empty())
                .map_or(Change::Unchanged, Change::Dependency)
        };
        let version = chart_version(&std::fs::read_to_string(dir.join("Chart.yaml")).map_err(
            |e| ChangesError::Metadata {
                what: dir.join("Chart.yaml").display().to_string(),
                message: e.to_string(),
            },
        )?)
        .map_err(|message| ChangesError::Metadata {
            what: dir.join("Chart.yaml").display().to_string(),
            message,
        })?;
        let file_before = format!("{base}:{}", Path::new(&rel).join("Chart.yaml").display());
        // A chart that did not exist at the merge base has no version to beat.
        let version_before = match git(&top, &["show", &file_before]) {
            Ok(text) => Some(
                chart_version(&text).map_err(|message| ChangesError::Metadata {
                    what: format!(
                        "{} at {reference}",
                        Path::new(&rel).join("Chart.yaml").display()
                    ),
                    message,
                })?,
            ),
            Err(_) => None,
        };
        let name = dir
            .file_name()
            .map_or_else(|| rel.clone(), |n| n.to_string_lossy().into_owned());
        changes.push(ChartChange {
            dir: dir.clone(),
            name,
            change,
            version,
            version_before,
        });
    }
    Ok((base, changes))
}

/// The dependencies of a `Chart.yaml`.
#[derive(Deserialize)]
struct Dependencies {
    #[serde(default)]
    dependencies: Vec<super::dependencies::Dependency>,
}

/// The directories of a chart's `file://` dependencies, and theirs in turn.
fn local_dependencies(dir: &Path) -> Result<Vec<PathBuf>, ChangesError> {
    let mut found: Vec<PathBuf> = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(chart) = pending.pop() {
        let file = chart.join("Chart.yaml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let parsed: Dependencies =
            serde_yaml_ng::from_str(&text).map_err(|e| ChangesError::Metadata {
                what: file.display().to_string(),
                message: e.to_string(),
            })?;
        for d in parsed.dependencies {
            let Some(path) = d.repository.strip_prefix("file://") else {
                continue;
            };
            let path = std::fs::canonicalize(chart.join(path)).unwrap_or_else(|_| chart.join(path));
            // Charts that depend on one another in a loop are followed once.
            if !found.contains(&path) {
                found.push(path.clone());
                pending.push(path);
            }
        }
    }
    Ok(found)
}

/// `version` of a `Chart.yaml`'s text.
fn chart_version(text: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Version {
        version: Option<String>,
    }
    serde_yaml_ng::from_str::<Version>(text)
        .map_err(|e| e.to_string())?
        .version
        .ok_or_else(|| "it has no version".to_owned())
}

fn split(output: &str) -> BTreeSet<String> {
    output
        .split('\0')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Chart directory `dir` as it was at `reference` (a commit, branch or tag),
/// read from git (`git archive`, no checkout: the working tree is not
/// touched) into `into/<directory name>`, replaced if there: the chart to
/// install before an upgrade to the working tree's.
///
/// ```no_run
/// # fn example() -> Result<(), testware::charts::changes::ChangesError> {
/// let before = testware::charts::changes::chart_at(
///     "origin/main",
///     std::path::Path::new("charts/web"),
///     std::path::Path::new("target/charts-at-main"),
/// )?;
/// # Ok(()) }
/// ```
///
/// # Errors
/// git or tar is missing, `dir` is not in a git repository, the ref is
/// unknown, or the chart was not there at the ref.
pub fn chart_at(reference: &str, dir: &Path, into: &Path) -> Result<PathBuf, ChangesError> {
    let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?.trim());
    let top = std::fs::canonicalize(&top).unwrap_or(top);
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let rel = canonical
        .strip_prefix(&top)
        .unwrap_or(&canonical)
        .display()
        .to_string();
    let tree = format!("{reference}:{rel}");
    let failed = |message: String, hint| ChangesError::Git {
        args: format!("archive {tree}"),
        dir: top.clone(),
        message,
        hint,
    };
    let archive = Command::new("git")
        .arg("-C")
        .arg(&top)
        .args(["archive", "--format=tar", &tree])
        .output()
        .map_err(|e| failed(e.to_string(), "install git"))?;
    if !archive.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&archive.stderr).trim().to_owned(),
            "the ref must be known here (git fetch it; in CI clone with full history) and the chart must have been at this path then",
        ));
    }
    let name = canonical.file_name().unwrap_or_default();
    let target = into.join(name);
    let io = |e: std::io::Error| {
        failed(
            format!("{}: {e}", target.display()),
            "check the directory can be written",
        )
    };
    if target.exists() {
        std::fs::remove_dir_all(&target).map_err(io)?;
    }
    std::fs::create_dir_all(&target).map_err(io)?;
    let mut tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(&target)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("tar: {e}"), "install tar"))?;
    if let Some(mut stdin) = tar.stdin.take() {
        use std::io::Write as _;
        stdin.write_all(&archive.stdout).map_err(io)?;
    }
    let unpacked = tar.wait_with_output().map_err(io)?;
    if !unpacked.status.success() {
        return Err(failed(
            format!("tar: {}", String::from_utf8_lossy(&unpacked.stderr).trim()),
            "check the directory can be written",
        ));
    }
    Ok(target)
}

/// Runs git in `dir`; its standard output, or what it said.
fn git(dir: &Path, args: &[&str]) -> Result<String, ChangesError> {
    let failed = |message: String, hint| ChangesError::Git {
        args: args.join(" "),
        dir: dir.to_path_buf(),
        message,
        hint,
    };
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .map_err(|e| failed(e.to_string(), "install git, or leave out --since"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        let hint = if said.contains("not a git repository") {
            "--since compares commits: run it inside a git clone of the charts"
        } else {
            "the ref must be known here: fetch it (git fetch origin main), and in CI clone with full history (GitLab GIT_DEPTH: 0, GitHub fetch-depth: 0)"
        };
        return Err(failed(said, hint));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_read_as_it_was_at_a_ref_without_touching_the_working_tree() {
        let repo = std::env::temp_dir().join(format!("testware-chart-at-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&repo);
        let chart = repo.join("charts/web");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(chart.join("Chart.yaml"), "name: web\nversion: 0.1.0\n").unwrap();
        std::fs::write(chart.join("templates/a.yaml"), "old\n").unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .arg("-C")
                .arg(&repo)
                .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
                .args(args)
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        git(&["add", "."]);
        git(&["commit", "-qm", "web 0.1.0"]);
        std::fs::write(chart.join("Chart.yaml"), "name: web\nversion: 0.2.0\n").unwrap();
        std::fs::write(chart.join("templates/a.yaml"), "new\n").unwrap();

        let into = repo.join("scratch");
        let before = chart_at("HEAD", &chart, &into).unwrap();
        assert_eq!(before, into.join("web"));
        assert_eq!(
            std::fs::read_to_string(before.join("templates/a.yaml")).unwrap(),
            "old\n"
        );
        assert!(std::fs::read_to_string(before.join("Chart.yaml"))
            .unwrap()
            .contains("0.1.0"));
        assert_eq!(
            std::fs::read_to_string(chart.join("templates/a.yaml")).unwrap(),
            "new\n"
        );

        let err = chart_at("no-such-ref", &chart, &into)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the ref must be known here"), "{err}");
        std::fs::remove_dir_all(&repo).unwrap();
    }

    fn change(change: Change, version: &str, before: Option<&str>) -> ChartChange {
        ChartChange {
            dir: PathBuf::from("charts/app"),
            name: "app".into(),
            change,
            version: version.into(),
            version_before: before.map(str::to_owned),
        }
    }

    #[test]
    fn a_changed_chart_needs_a_higher_version() {
        let files = || Change::Files(vec!["charts/app/values.yaml".into()]);
        assert_eq!(
            change(files(), "1.2.1", Some("1.2.0")).version_problem("main"),
            None
        );
        assert_eq!(
            change(files(), "2.0.0-rc.1", Some("1.9.9")).version_problem("main"),
            None
        );
        let same = change(files(), "1.2.0", Some("1.2.0")).version_problem("main");
        assert_eq!(
            same.as_deref(),
            Some("chart app: its files changed (charts/app/values.yaml) since main, but its version 1.2.0 was not increased (it was 1.2.0 at main); raise version in charts/app/Chart.yaml")
        );
        let lower = change(files(), "1.1.0", Some("1.2.0")).version_problem("main");
        assert!(lower.is_some_and(|m| m.contains("1.1.0 was not increased (it was 1.2.0")));
        let via = change(
            Change::Dependency("charts/common".into()),
            "1.2.0",
            Some("1.2.0"),
        );
        assert!(via
            .version_problem("main")
            .is_some_and(|m| m.contains("its file:// dependency charts/common changed")));
        let odd = change(files(), "latest", Some("1.2.0")).version_problem("main");
        assert!(odd.is_some_and(|m| m.contains("not semantic versioning")));
        // New charts and unchanged ones have nothing to prove.
        assert_eq!(change(files(), "0.1.0", None).version_problem("main"), None);
        assert_eq!(
            change(Change::Unchanged, "1.2.0", Some("1.2.0")).version_problem("main"),
            None
        );
    }

    #[test]
    fn versions_are_read_from_chart_files() {
        assert_eq!(
            chart_version("apiVersion: v2\nname: a\nversion: 1.0.0\n").as_deref(),
            Ok("1.0.0")
        );
        assert_eq!(
            chart_version("name: a\n"),
            Err("it has no version".to_owned())
        );
        assert!(chart_version("version: [").is_err());
    }
}
