//! The `helm` CLI adapter: locating and version-checking the binary, and running
//! it with argument vectors, timeouts and errors that carry the command, the exit
//! status and stderr.
//!
//! Template and lint are used by the no_deploy tier; install, upgrade, rollback,
//! uninstall and status go through the same [`Helm::run`] later.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::Command;

use crate::charts::options::{RenderOptions, Values};
use crate::config::{Tools, ENV_HELM};

/// Oldest helm the harness accepts (`helm template --skip-tests` and the JSON
/// outputs it relies on behave as used here from 3.8 on).
pub const MIN_VERSION: Version = Version {
    major: 3,
    minor: 8,
    patch: 0,
};
/// The helm version `ci/test` and `testware check` build into the project
/// cache (from the Go module proxy, `helm.sh/helm/v3`).
pub const PINNED_VERSION: &str = "3.21.4";
/// The helm 4 version they build instead with `HARNESS_HELM_VERSION=4`
/// (`helm.sh/helm/v4`).
pub const PINNED_V4: &str = "4.3.2";

/// The version of the cache's helm that `HARNESS_HELM_VERSION` chooses: unset
/// or `3` [`PINNED_VERSION`], `4` [`PINNED_V4`], else the exact version it
/// names (`4.3.1`, `v3.21.3`). `harness/cli/assets/install-helm.sh` reads the
/// variable the same way.
///
/// # Errors
/// The value is none of those.
pub fn pinned(choice: Option<&str>) -> Result<Version, HelmError> {
    let text = match choice.map(str::trim) {
        None | Some("" | "3") => PINNED_VERSION,
        Some("4") => PINNED_V4,
        Some(exact) => exact,
    };
    Version::parse(text)
        .filter(|v| v.major >= 3)
        .ok_or_else(|| HelmError::BadChoice {
            value: text.to_owned(),
        })
}

/// Default time limit of one helm command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A helm version (`v3.10.1` → 3.10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl Version {
    /// Parses `v3.10.1`, `3.10.1` or `v3.10.1+g9f88ccb`.
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.trim().trim_start_matches('v');
        let core = core.split(['+', '-']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u32>());
        Some(Self {
            major: parts.next()?.ok()?,
            minor: parts.next()?.ok()?,
            patch: parts.next()?.ok()?,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Errors from locating or running helm.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// No helm binary anywhere the harness looks.
    #[error("helm not found (looked at ${ENV_HELM}, PATH and {}) (hint: set HELM to a helm {MIN_VERSION}+ binary or put one on PATH, see https://helm.sh/docs/intro/install/; in the testware repository `ci/install-helm` installs the pinned one)", cache.display())]
    NotFound {
        /// The project's install location that was checked.
        cache: PathBuf,
    },
    /// `$HELM` is set but cannot be a helm binary.
    #[error("HELM={} {problem} (hint: point HELM to a helm {MIN_VERSION}+ binary, or unset it to use the helm on PATH)", value.display())]
    BadVariable {
        /// What `HELM` holds.
        value: PathBuf,
        /// What is wrong with it: empty, missing, a directory, not executable.
        problem: &'static str,
    },
    /// The binary could not be started.
    #[error("failed to start {}", path.display())]
    Spawn {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `helm version` printed something that is not a version.
    #[error("{} did not report a helm version (printed {output:?})", path.display())]
    UnknownVersion {
        /// The binary.
        path: PathBuf,
        /// What it printed.
        output: String,
    },
    /// The helm `HARNESS_HELM_VERSION` chooses is not in the cache.
    #[error("HARNESS_HELM_VERSION chose helm {version}, which is not built at {} (hint: `testware check` builds it on first use; in the testware repository `HARNESS_HELM_VERSION=… ci/install-helm`; or set HELM to a helm binary)", path.display())]
    ChosenNotBuilt {
        /// The version chosen.
        version: Version,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// `HARNESS_HELM_VERSION` names no helm version.
    #[error("HARNESS_HELM_VERSION={value:?} is not a helm version (hint: 3, 4 or an exact version such as {PINNED_V4})")]
    BadChoice {
        /// What the variable holds.
        value: String,
    },
    /// The binary is older than [`MIN_VERSION`].
    #[error("{} is helm {found}, but {MIN_VERSION} or newer is needed (hint: set HELM to a newer helm or put one first on PATH)", path.display())]
    TooOld {
        /// The binary.
        path: PathBuf,
        /// Its version.
        found: Version,
    },
    /// The chart directory has no `Chart.yaml`.
    #[error("chart not found: {} has no Chart.yaml", path.display())]
    ChartNotFound {
        /// The path given.
        path: PathBuf,
    },
    /// helm ran and failed.
    #[error("`{command}` failed with {status}: {stderr}{}{}", findings_suffix(.findings), failure_hint(.stderr))]
    Failed {
        /// The command line, for reading and re-running.
        command: String,
        /// The exit status.
        status: std::process::ExitStatus,
        /// Its stderr, trimmed.
        stderr: String,
        /// The `[ERROR]` / `[WARNING]` lines helm printed on stdout (`helm lint`
        /// reports its findings there, and only a count on stderr).
        findings: String,
    },
    /// helm did not finish in time and was killed.
    #[error("`{command}` did not finish within {after:?} and was killed")]
    Timeout {
        /// The command line.
        command: String,
        /// The time limit.
        after: Duration,
    },
}

/// A located, version-checked helm binary.
#[derive(Debug)]
pub struct Helm {
    path: PathBuf,
    version: Version,
    started: AtomicU64,
}

/// `helm template <release> <chart> --namespace <ns> --include-crds` and the values.
fn template_args(chart: &Path, options: &RenderOptions) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "template".into(),
        options.release.clone().into(),
        chart.into(),
        "--namespace".into(),
        options.namespace.clone().into(),
        "--include-crds".into(),
    ];
    if let Some(version) = options.kube_version {
        args.push("--kube-version".into());
        args.push(version.to_string().into());
    }
    for version in &options.api_versions {
        args.push("--api-versions".into());
        args.push(version.into());
    }
    if options.skip_tests {
        args.push("--skip-tests".into());
    }
    if options.debug {
        args.push("--debug".into());
    }
    args.extend(options.values.args(chart));
    args
}

/// Where the install script puts helm `version` in the project cache.
pub fn cached_helm(cache: &Path, version: Version) -> PathBuf {
    cache
        .join("helm")
        .join(format!("v{version}"))
        .join("bin")
        .join("helm")
}

impl Helm {
    /// Finds helm where `tools` say: `$HELM`, else `helm` on `PATH`, else the
    /// project's install location (`<cache>/helm/v<version>/bin/helm`); checks
    /// its version. With `HARNESS_HELM_VERSION` set, the cache's build of that
    /// version comes before `PATH`: a run asked for helm 4 gets helm 4.
    ///
    /// # Errors
    /// [`HelmError::NotFound`], [`HelmError::BadChoice`], or any error of [`Helm::at`].
    pub async fn locate(tools: &Tools) -> Result<Self, HelmError> {
        match &tools.helm_version {
            Some(choice) if tools.helm.is_none() => {
                let version = pinned(Some(choice))?;
                let cached = cached_helm(&tools.cache_dir, version);
                if !cached.is_file() {
                    return Err(HelmError::ChosenNotBuilt {
                        version,
                        path: cached,
                    });
                }
                Self::at(cached).await
            }
            _ => Self::locate_in(tools.helm.clone(), &tools.path, &tools.cache_dir).await,
        }
    }

    /// [`Helm::locate`] without a version chosen, the places to look given
    /// explicitly: `helm_var` (the value of `$HELM`), the `PATH` list and the
    /// cache directory.
    ///
    /// # Errors
    /// See [`Helm::locate`].
    pub async fn locate_in(
        helm_var: Option<PathBuf>,
        path: &std::ffi::OsStr,
        cache: &Path,
    ) -> Result<Self, HelmError> {
        let cached = cached_helm(cache, pinned(None)?);
        if let Some(value) = &helm_var {
            check_helm_variable(value)?;
        }
        let candidate = helm_var
            .or_else(|| {
                std::env::split_paths(path)
                    .map(|dir| dir.join("helm"))
                    .find(|c| c.is_file())
            })
            .or_else(|| cached.is_file().then(|| cached.clone()))
            .ok_or(HelmError::NotFound { cache: cached })?;
        Self::at(candidate).await
    }

    /// Uses the helm at `path` after checking it runs and is new enough.
    ///
    /// # Errors
    /// The binary does not start, does not report a version, or is too old.
    pub async fn at(path: impl Into<PathBuf>) -> Result<Self, HelmError> {
        let path = path.into();
        let mut command = Command::new(&path);
        command.args(["version", "--template", "{{.Version}}"]);
        let output = tokio::time::timeout(
            DEFAULT_TIMEOUT,
            output_when_not_busy(command.kill_on_drop(true)),
        )
        .await
        .map_err(|_| HelmError::Timeout {
            command: format!("{} version", path.display()),
            after: DEFAULT_TIMEOUT,
        })?
        .map_err(|source| HelmError::Spawn {
            path: path.clone(),
            source,
        })?;
        let printed = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let version = Version::parse(&printed).ok_or_else(|| HelmError::UnknownVersion {
            path: path.clone(),
            output: printed.clone(),
        })?;
        if version < MIN_VERSION {
            return Err(HelmError::TooOld {
                path,
                found: version,
            });
        }
        Ok(Self {
            path,
            version,
            started: AtomicU64::new(1),
        })
    }

    /// The binary in use.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// `helm list` of releases in every state: helm 3 lists only deployed and
    /// failed ones unless told `--all`, a flag helm 4 (which lists all) refuses.
    pub fn list_every_state(&self) -> Vec<OsString> {
        if self.version.major >= 4 {
            vec!["list".into()]
        } else {
            vec!["list".into(), "--all".into()]
        }
    }

    /// How many helm processes this adapter has started (the version check included).
    pub fn processes_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// `helm template`; returns the multi-document YAML.
    ///
    /// # Errors
    /// A missing chart directory, or the command failing or timing out.
    pub async fn template(
        &self,
        chart: &Path,
        options: &RenderOptions,
    ) -> Result<String, HelmError> {
        require_chart(chart)?;
        if options.dependency_build {
            self.dependency_build(chart).await?;
        }
        self.run(template_args(chart, options), DEFAULT_TIMEOUT)
            .await
    }

    /// `helm dependency build --skip-refresh`: the chart's dependencies into its
    /// `charts/` directory, from `file://` paths and the repositories' cached
    /// indexes (no network for `file://` ones).
    ///
    /// # Errors
    /// A missing chart directory, or helm's failure.
    pub async fn dependency_build(&self, chart: &Path) -> Result<String, HelmError> {
        require_chart(chart)?;
        let args: Vec<OsString> = vec![
            "dependency".into(),
            "build".into(),
            "--skip-refresh".into(),
            chart.into(),
        ];
        self.run(args, DEFAULT_TIMEOUT).await
    }

    /// `helm lint --strict` with `values`; returns helm's report.
    ///
    /// # Errors
    /// A missing chart directory, lint findings (as [`HelmError::Failed`]), or a timeout.
    pub async fn lint(&self, chart: &Path, values: &Values) -> Result<String, HelmError> {
        require_chart(chart)?;
        let mut args: Vec<OsString> = vec!["lint".into(), "--strict".into(), chart.into()];
        args.extend(values.args(chart));
        self.run(args, DEFAULT_TIMEOUT).await
    }

    /// Runs helm with `args`; returns stdout.
    ///
    /// # Errors
    /// The process cannot start, exits non-zero, or outlives `timeout` (then it is killed).
    ///
    /// # Cancel safety
    /// Dropping the future kills the process.
    pub async fn run(&self, args: Vec<OsString>, timeout: Duration) -> Result<String, HelmError> {
        self.run_with_env(args, Vec::new(), timeout).await
    }

    /// [`Helm::run`] with `env` added to helm's environment.
    ///
    /// # Errors
    /// As for [`Helm::run`].
    pub async fn run_with_env(
        &self,
        args: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
        timeout: Duration,
    ) -> Result<String, HelmError> {
        let command_line = display_command(&self.path, &args);
        let mut command = Command::new(&self.path);
        command
            .args(&args)
            .envs(env)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null());
        self.started.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        tracing::debug!(command = %command_line, "helm started");
        let output = match tokio::time::timeout(timeout, output_when_not_busy(&mut command)).await {
            Err(_) => {
                tracing::warn!(command = %command_line, ?timeout, "helm timed out");
                return Err(HelmError::Timeout {
                    command: command_line,
                    after: timeout,
                });
            }
            Ok(result) => result.map_err(|source| HelmError::Spawn {
                path: self.path.clone(),
                source,
            })?,
        };
        tracing::info!(
            command = %command_line,
            seconds = started.elapsed().as_secs_f64(),
            status = %output.status,
            "helm ran"
        );
        if !output.status.success() {
            let stdout = String::from_utf8_lossy(&output.stdout);
            let findings: Vec<&str> = stdout
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("[ERROR]") || l.starts_with("[WARNING]"))
                .collect();
            return Err(HelmError::Failed {
                command: command_line,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                findings: findings.join("\n"),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

/// Runs the command, retrying briefly while the binary is "text file busy": a
/// binary that was just written (an install, a test's fake helm) can be held open
/// for writing by a process forked elsewhere in the meantime.
async fn output_when_not_busy(command: &mut Command) -> std::io::Result<std::process::Output> {
    let mut attempts = 0;
    loop {
        match command.output().await {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// What to do about the failures helm's message does not explain how to fix.
fn failure_hint(stderr: &str) -> &'static str {
    if stderr.contains("missing in charts/ directory") {
        " (hint: the chart's dependencies are not built: run `helm dependency build` (`testware check --dependency-build`; in a suite, RenderOptions::dependency_build); file:// dependencies build offline, remote ones need the network or a copy in charts/)"
    } else if stderr.contains("library charts are not installable") {
        " (hint: a library chart renders nothing by itself: check the charts that depend on it)"
    } else if stderr.contains("execution error at") {
        " (hint: a template refused these values with `required` or `fail`: give the values it asks for in a ci/*.yaml values set of the chart, or `testware check --values FILE` (in a suite, RenderOptions::values))"
    } else {
        ""
    }
}

fn findings_suffix(findings: &str) -> String {
    if findings.is_empty() {
        String::new()
    } else {
        format!("\n{findings}")
    }
}

/// `$HELM` names an executable file, or the error says what it is instead.
fn check_helm_variable(value: &Path) -> Result<(), HelmError> {
    use std::os::unix::fs::PermissionsExt as _;
    let problem = if value.as_os_str().is_empty() {
        Some("is empty")
    } else {
        match std::fs::metadata(value) {
            Err(_) => Some("does not exist"),
            Ok(m) if m.is_dir() => Some("is a directory"),
            Ok(m) if m.permissions().mode() & 0o111 == 0 => Some("is not executable"),
            Ok(_) => None,
        }
    };
    match problem {
        Some(problem) => Err(HelmError::BadVariable {
            value: value.to_path_buf(),
            problem,
        }),
        None => Ok(()),
    }
}

fn require_chart(chart: &Path) -> Result<(), HelmError> {
    if chart.join("Chart.yaml").is_file() {
        Ok(())
    } else {
        Err(HelmError::ChartNotFound {
            path: chart.to_path_buf(),
        })
    }
}

/// Writes embedded `(relative path, content)` files under `dir` (the cache),
/// leaving files that already hold the content alone. Each is written to a
/// temporary file and renamed into place, so parallel writers never expose half a file.
///
/// # Errors
/// A directory or file cannot be written.
pub(crate) fn write_embedded(dir: &Path, files: &[(&str, &str)]) -> std::io::Result<()> {
    for (name, text) in files {
        let path = dir.join(name);
        if std::fs::read_to_string(&path).is_ok_and(|t| t == *text) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, &path)?;
    }
    Ok(())
}

/// The command as a shell would show it, quoted where needed, for error messages.
fn display_command(program: &Path, args: &[OsString]) -> String {
    std::iter::once(program.as_os_str())
        .chain(args.iter().map(OsString::as_os_str))
        .map(|a| {
            let a = a.to_string_lossy();
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
            {
                a.into_owned()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("v3.10.1", Some((3, 10, 1)))]
    #[case("v3.8.0+g1234", Some((3, 8, 0)))]
    #[case("3.12.3\n", Some((3, 12, 3)))]
    #[case("Client: v2.17.0", None)]
    #[case("", None)]
    fn versions_parse(#[case] text: &str, #[case] expected: Option<(u32, u32, u32)>) {
        let parsed = Version::parse(text).map(|v| (v.major, v.minor, v.patch));
        assert_eq!(parsed, expected);
    }

    #[rstest]
    #[case(None, Some(PINNED_VERSION))]
    #[case(Some("3"), Some(PINNED_VERSION))]
    #[case(Some("4"), Some(PINNED_V4))]
    #[case(Some("v4.3.1"), Some("4.3.1"))]
    #[case(Some("3.21.3"), Some("3.21.3"))]
    #[case(Some("2.17.0"), None)]
    #[case(Some("latest"), None)]
    fn a_helm_version_is_chosen(#[case] choice: Option<&str>, #[case] expected: Option<&str>) {
        let chosen = pinned(choice).map(|v| v.to_string());
        match expected {
            Some(version) => assert_eq!(chosen.unwrap(), version),
            None => assert!(
                matches!(chosen, Err(HelmError::BadChoice { .. })),
                "{chosen:?}"
            ),
        }
    }

    #[tokio::test]
    async fn a_chosen_helm_not_built_is_named_with_a_hint() {
        let cache = std::env::temp_dir().join(format!("helm-choice-{}", std::process::id()));
        let tools = Tools {
            helm: None,
            helm_version: Some("4".into()),
            cache_dir: cache.clone(),
            ..Tools::from_env(|_| None)
        };
        let err = Helm::locate(&tools).await.unwrap_err().to_string();
        assert!(err.contains(&format!("chose helm {PINNED_V4}")), "{err}");
        assert!(err.contains("ci/install-helm"), "{err}");
    }

    #[test]
    fn commands_are_shown_quoted() {
        let shown = display_command(
            Path::new("/bin/helm"),
            &["template".into(), "a b".into(), "x=it's".into()],
        );
        assert_eq!(shown, r"/bin/helm template 'a b' 'x=it'\''s'");
    }

    #[test]
    fn template_arguments_keep_order() {
        let options = RenderOptions::default()
            .release("r")
            .namespace("ns")
            .values("/v/a.yaml")
            .values("b.yaml")
            .set("x.y", "1")
            .kube_version(crate::manifest::api_versions::KubeVersion { minor: 25 })
            .api_version("monitoring.coreos.com/v1");
        let shown = display_command(Path::new("helm"), &template_args(Path::new("c"), &options));
        assert_eq!(shown, "helm template r c --namespace ns --include-crds --kube-version 1.25 --api-versions monitoring.coreos.com/v1 --values /v/a.yaml --values c/b.yaml --set x.y=1");
        let flags = RenderOptions {
            skip_tests: true,
            debug: true,
            ..RenderOptions::default()
        };
        let shown = display_command(Path::new("helm"), &template_args(Path::new("c"), &flags));
        assert!(
            shown.ends_with("--include-crds --skip-tests --debug"),
            "{shown}"
        );
    }

    fn fake_helm(dir: &Path, script: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("helm");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[tokio::test(flavor = "current_thread")]
    async fn old_or_odd_helm_is_refused_with_the_reason() {
        let dir =
            std::env::temp_dir().join(format!("helm-test-{}", crate::config::random_suffix(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let old = fake_helm(&dir, "echo v3.7.2");
        let err = Helm::at(&old).await.unwrap_err().to_string();
        assert!(
            err.contains("is helm 3.7.2, but 3.8.0 or newer is needed"),
            "{err}"
        );
        let odd = fake_helm(&dir, "echo hello");
        let err = Helm::at(&odd).await.unwrap_err().to_string();
        assert!(err.contains("did not report a helm version"), "{err}");
        let err = Helm::at(dir.join("missing")).await.unwrap_err().to_string();
        assert!(err.starts_with("failed to start"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_hanging_helm_is_killed_at_the_timeout() {
        let dir =
            std::env::temp_dir().join(format!("helm-test-{}", crate::config::random_suffix(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = fake_helm(
            &dir,
            "case \"$1\" in version) echo v3.10.1;; *) sleep 30;; esac",
        );
        let helm = Helm::at(&path).await.unwrap();
        let err = helm
            .run(vec!["template".into()], Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(matches!(err, HelmError::Timeout { .. }), "{err}");
        let failing = fake_helm(
            &dir,
            "case \"$1\" in version) echo v3.10.1;; *) echo 'Error: boom' >&2; exit 1;; esac",
        );
        let helm = Helm::at(&failing).await.unwrap();
        let err = helm
            .run(vec!["lint".into()], DEFAULT_TIMEOUT)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lint` failed with exit status: 1: Error: boom"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn lint_findings_printed_on_stdout_reach_the_error() {
        let dir =
            std::env::temp_dir().join(format!("helm-test-{}", crate::config::random_suffix(6)));
        let chart = dir.join("chart");
        std::fs::create_dir_all(&chart).unwrap();
        std::fs::write(chart.join("Chart.yaml"), "name: c\nversion: 0.1.0\n").unwrap();
        let path = fake_helm(
            &dir,
            r#"case "$1" in
version) echo v3.10.1 ;;
*) echo "==> Linting chart"; echo "[ERROR] templates/deployment.yaml: the kind extensions/v1beta1 Deployment is no longer supported"; echo "Error: 1 chart(s) linted, 1 chart(s) failed" >&2; exit 1 ;;
esac"#,
        );
        let helm = Helm::at(&path).await.unwrap();
        let err = helm
            .lint(&chart, &Values::default())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 chart(s) failed"), "{err}");
        assert!(
            err.contains("[ERROR] templates/deployment.yaml: the kind extensions/v1beta1 Deployment is no longer supported"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
