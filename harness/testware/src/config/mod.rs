//! `RunConfig`: the harness options, parsed once from the command line and the
//! environment and then passed explicitly to everything that needs them.
//!
//! The harness options are a clap [`HarnessArgs`] flattened beside
//! libtest-mimic's own [`Arguments`] (itself a clap parser), so `cargo test -p
//! suites -- --mark no_deploy --exact foo` works and `--help` lists both.
//! Every option also has an environment variable, because `cargo test --workspace`
//! hands the same arguments to every test binary, including plain libtest ones
//! that would reject unknown flags; the variables are read here and nowhere else
//! (through the `env` function given to [`RunConfig::parse`], so tests can give
//! their own).

use std::path::{Path, PathBuf};

use clap::Parser as _;
use libtest_mimic::Arguments;

use crate::marks::{MarkExpr, MarkExprError};

mod tools;
pub use tools::{
    Tools, ENV_CACHE_DIR, ENV_CONTAINER_CLI, ENV_DOCKER_HOST, ENV_HELM, ENV_IMAGE_IMPORT,
    ENV_RENDER_CACHE, ENV_SCHEMA_DIR,
};

/// Environment variable for `--mark`.
pub const ENV_MARK: &str = "HARNESS_MARK";
/// Environment variable for `--test-namespace`.
pub const ENV_TEST_NAMESPACE: &str = "HARNESS_TEST_NAMESPACE";
/// Environment variable for `--kube-context`.
pub const ENV_KUBE_CONTEXT: &str = "HARNESS_KUBE_CONTEXT";
/// Environment variable for `--require-cluster` (`1`/`true`/`yes` switch it on).
pub const ENV_REQUIRE_CLUSTER: &str = "HARNESS_REQUIRE_CLUSTER";
/// Environment variable for `--keep-namespace`.
pub const ENV_KEEP_NAMESPACE: &str = "HARNESS_KEEP_NAMESPACE";
/// Environment variable for `--junit`.
pub const ENV_JUNIT: &str = "HARNESS_JUNIT";
/// Environment variable for `--artifacts`.
pub const ENV_ARTIFACTS: &str = "HARNESS_ARTIFACTS";
/// Environment variable forcing the run id (a DNS label of at most 20 characters),
/// e.g. so a supervising process can find what a run created.
pub const ENV_RUN_ID: &str = "HARNESS_RUN_ID";
/// Environment variable: seconds a namespace lives unless its run renews it.
pub const ENV_NAMESPACE_LEASE: &str = "HARNESS_NAMESPACE_LEASE";
/// `0` turns redaction off (`--no-redact`), for local debugging only.
pub const ENV_REDACT: &str = "HARNESS_REDACT";
/// Environment variable: restarts of a crash-looping container after which a
/// rollout wait ends (see [`crate::cluster::status::FailFast`]).
pub const ENV_CRASH_LOOP_RESTARTS: &str = "HARNESS_CRASH_LOOP_RESTARTS";
/// Environment variable: seconds a state another object may clear (a missing
/// Secret or key, a pod no node matches) must last before a rollout wait ends.
pub const ENV_STUCK_SETTLE: &str = "HARNESS_STUCK_SETTLE";
/// `0` turns off the claims on cluster-scoped objects ([`crate::cluster::claims`]):
/// cases that install the same one may then run at once, and collide.
pub const ENV_CLUSTER_CLAIMS: &str = "HARNESS_CLUSTER_CLAIMS";
/// `0` turns off the holds on the cluster ([`crate::cluster::sharing`]): cases
/// that change nodes then run beside the others, and disturb them.
pub const ENV_CLUSTER_HOLDS: &str = "HARNESS_CLUSTER_HOLDS";
/// Environment variable: seconds a case waits for its turn on the cluster
/// while a case that changes nodes holds it ([`crate::cluster::sharing`]).
pub const ENV_CLUSTER_WAIT: &str = "HARNESS_CLUSTER_WAIT";
/// How long a case waits for its turn on the cluster unless `HARNESS_CLUSTER_WAIT` says otherwise.
pub const DEFAULT_CLUSTER_WAIT: std::time::Duration = std::time::Duration::from_secs(600);
/// `0` turns off the translation of API versions the server lacks
/// (`deployment::translate`): such charts then fail as helm says.
pub const ENV_TRANSLATE_API_VERSIONS: &str = "HARNESS_TRANSLATE_API_VERSIONS";

/// The Pod Security level the harness's namespaces enforce: `privileged`,
/// `baseline` (the default) or `restricted` ([`crate::cluster::pod_security`]).
pub const ENV_POD_SECURITY: &str = "HARNESS_POD_SECURITY";

/// How long a namespace lives without renewal, unless `HARNESS_NAMESPACE_LEASE` says otherwise.
pub const DEFAULT_NAMESPACE_LEASE: std::time::Duration = std::time::Duration::from_secs(300);

/// When to keep a case's namespace after the case ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepNamespace {
    /// Always delete (the default).
    #[default]
    Never,
    /// Keep the namespaces of failed cases for inspection.
    OnFailure,
    /// Keep every namespace.
    Always,
}

impl std::str::FromStr for KeepNamespace {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "never" => Ok(Self::Never),
            "on-failure" => Ok(Self::OnFailure),
            "always" => Ok(Self::Always),
            other => Err(ConfigError::BadValue {
                option: "--keep-namespace".into(),
                value: other.to_owned(),
                expected: "never, on-failure or always",
            }),
        }
    }
}

/// Errors in the harness options.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The command line does not parse (or asks for `--help`): clap's message.
    #[error("{}", .0.render().to_string().trim_end().trim_start_matches("error: "))]
    Arguments(#[source] clap::Error),
    /// An option value of the wrong form.
    #[error("invalid value {value:?} for {option}: expected {expected}")]
    BadValue {
        /// Where it came from: the flag or the environment variable.
        option: String,
        /// What was given.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// `HARNESS_SHARD` or its plan is wrong (the message says how).
    #[error("{0}")]
    Shard(String),
    /// Redaction was turned off where artifacts get published.
    #[error("redaction cannot be turned off in CI (CI is set; --no-redact / HARNESS_REDACT=0 is for local debugging only)")]
    RedactionInCi,
    /// The mark expression does not parse.
    #[error("invalid mark expression {expression:?} from {origin} (hint: words joined by and, or, not and parentheses, e.g. \"chart_deploy and not slow\")")]
    Mark {
        /// What was given.
        expression: String,
        /// Where it came from: `--mark` or `HARNESS_MARK`.
        origin: String,
        /// Why it does not parse.
        #[source]
        source: MarkExprError,
    },
}

/// Everything the harness was told, parsed once.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Only cases whose tier and marks satisfy this run (`--mark`).
    pub mark: Option<MarkExpr>,
    /// A namespace name forced by the user (`--test-namespace`).
    pub test_namespace: Option<String>,
    /// The kubeconfig context to use (`--kube-context`), else the current one.
    pub kube_context: Option<String>,
    /// The kubeconfig file and where it was named (`--kubeconfig` or
    /// `KUBECONFIG`); `None`: kube's inference (`~/.kube/config`, in-cluster, or
    /// a `KUBECONFIG` list of several files).
    pub kubeconfig: Option<(PathBuf, String)>,
    /// A missing cluster fails chart_deploy cases instead of ignoring them.
    pub require_cluster: bool,
    /// When namespaces survive their case.
    pub keep_namespace: KeepNamespace,
    /// Where to write JUnit XML; see [`RunConfig::junit_file`].
    pub junit: Option<PathBuf>,
    /// Root of failure bundles and other per-run output.
    pub artifacts: PathBuf,
    /// `CI_JOB_ID` when running in a CI job.
    pub ci_job_id: Option<String>,
    /// Random id of this run: names and labels of everything the run creates carry it.
    pub run_id: String,
    /// How long a namespace outlives the last renewal by its run; the janitor
    /// reaps it after that. A live run renews every fifth of it.
    pub namespace_lease: std::time::Duration,
    /// Whether secrets are redacted from what the run writes (see
    /// [`crate::report::redact`]); off only with `--no-redact` outside CI.
    pub redact: bool,
    /// Where helm, the cache, the schemas and the container tools are.
    pub tools: Tools,
    /// nextest runs this process (`NEXTEST` is set): one case per process, so
    /// each writes a JUnit file of its own.
    pub under_nextest: bool,
    /// When rollout waits give up on a stuck pod instead of waiting out their deadline.
    pub fail_fast: crate::cluster::status::FailFast,
    /// Whether installs claim the cluster-scoped objects they create
    /// ([`crate::cluster::claims`]); off with `HARNESS_CLUSTER_CLAIMS=0`.
    pub claim_cluster_objects: bool,
    /// How long a case waits for its turn on the cluster: behind a case that
    /// changes nodes, or (such a case) behind the running ones
    /// ([`crate::cluster::sharing`]; `HARNESS_CLUSTER_WAIT`, seconds).
    pub cluster_wait: std::time::Duration,
    /// Whether cases hold the cluster, shared or (a case that changes nodes)
    /// alone ([`crate::cluster::sharing`]); off with `HARNESS_CLUSTER_HOLDS=0`.
    pub hold_cluster: bool,
    /// Whether installs translate API versions the server lacks to an older
    /// version of the same kind with the same fields; off with
    /// `HARNESS_TRANSLATE_API_VERSIONS=0`.
    pub translate_api_versions: bool,
    /// The Pod Security level the run's namespaces enforce unless a case asks
    /// for another (`HARNESS_POD_SECURITY`, default `baseline`).
    pub pod_security: crate::cluster::pod_security::PodSecurity,
    /// The shard of the run's cases this process runs (`HARNESS_SHARD`,
    /// `HARNESS_SHARD_PLAN`; see [`crate::runner::shard`]).
    pub shard: Option<crate::runner::shard::Shard>,
    /// nextest's attempt at this case (`NEXTEST_ATTEMPT`, 1-based) when it
    /// retries failed cases: a case that passes on an attempt after the first
    /// is flaky, and fails unless quarantined.
    pub attempt: u32,
}

/// The harness's options on a suite's command line; each falls back to its
/// environment variable (named in its help).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HarnessArgs {
    /// Run only the cases whose tier and marks satisfy EXPR, e.g. "chart_deploy
    /// and not slow" [env: HARNESS_MARK]
    #[arg(long, value_name = "EXPR")]
    pub mark: Option<String>,
    /// Use this namespace instead of a fresh one per case [env: HARNESS_TEST_NAMESPACE]
    #[arg(long, value_name = "NAME")]
    pub test_namespace: Option<String>,
    /// The kubeconfig context to use [env: HARNESS_KUBE_CONTEXT]
    #[arg(long, value_name = "NAME")]
    pub kube_context: Option<String>,
    /// The kubeconfig file [env: KUBECONFIG]
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<String>,
    /// A missing cluster fails chart_deploy cases instead of ignoring them
    /// [env: HARNESS_REQUIRE_CLUSTER=1]
    #[arg(long)]
    pub require_cluster: bool,
    /// Keep namespaces after their case: never, on-failure or always [env: HARNESS_KEEP_NAMESPACE]
    #[arg(long, value_name = "WHEN")]
    pub keep_namespace: Option<String>,
    /// Write JUnit XML: a file, a directory or a pattern with {suite} [env: HARNESS_JUNIT]
    #[arg(long, value_name = "PATH")]
    pub junit: Option<String>,
    /// Root of failure bundles [env: HARNESS_ARTIFACTS]
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<String>,
    /// Write secrets unredacted (local debugging only; refused in CI) [env: HARNESS_REDACT=0]
    #[arg(long)]
    pub no_redact: bool,
}

/// A suite's whole command line: the harness's options and libtest-mimic's.
#[derive(Debug, clap::Parser)]
#[command(disable_version_flag = true, about = "A testware suite")]
struct SuiteArgs {
    #[command(flatten)]
    harness: HarnessArgs,
    #[command(flatten)]
    libtest: Arguments,
}

impl RunConfig {
    /// Parses the process's arguments and environment; returns the config and
    /// libtest-mimic's arguments.
    ///
    /// # Errors
    /// The command line does not parse, or an option has a value of the wrong form.
    pub fn from_process() -> Result<(Self, Arguments), ConfigError> {
        Self::parse(std::env::args(), |key| std::env::var(key).ok())
    }

    /// Parses `args` (program name first) with `env` as the environment.
    ///
    /// # Errors
    /// See [`RunConfig::from_process`].
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Self, Arguments), ConfigError> {
        let SuiteArgs { harness, libtest } =
            SuiteArgs::try_parse_from(args).map_err(ConfigError::Arguments)?;
        Ok((Self::from_args(harness, env)?, libtest))
    }

    /// The config of parsed options, each without a value falling back to its
    /// variable in `env`.
    ///
    /// # Errors
    /// An option (or variable) has a value of the wrong form.
    pub fn from_args(
        args: HarnessArgs,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let HarnessArgs {
            mark,
            test_namespace,
            kube_context,
            kubeconfig,
            mut require_cluster,
            keep_namespace,
            junit,
            artifacts,
            mut no_redact,
        } = args;
        // A value and where it came from (the flag wins over the variable).
        let pick_from = |given: Option<String>, option: &str, var: &str| {
            given.map(|v| (v, option.to_owned())).or_else(|| {
                env(var)
                    .filter(|v| !v.is_empty())
                    .map(|v| (v, var.to_owned()))
            })
        };
        let pick = |given: Option<String>, option: &str, var: &str| {
            pick_from(given, option, var).map(|(v, _)| v)
        };

        let mark = pick_from(mark, "--mark", ENV_MARK)
            .map(|(m, origin)| {
                MarkExpr::parse(&m).map_err(|source| ConfigError::Mark {
                    expression: m.clone(),
                    origin,
                    source,
                })
            })
            .transpose()?;
        let test_namespace = pick_from(test_namespace, "--test-namespace", ENV_TEST_NAMESPACE)
            .map(|(ns, origin)| {
                if is_dns_label(&ns) {
                    Ok(ns)
                } else {
                    Err(ConfigError::BadValue {
                        option: origin,
                        value: ns,
                        expected: "a DNS label (lowercase letters, digits and '-', at most 63)",
                    })
                }
            })
            .transpose()?;
        let keep_namespace = pick_from(keep_namespace, "--keep-namespace", ENV_KEEP_NAMESPACE)
            .map(|(v, origin)| {
                v.parse().map_err(|e| match e {
                    ConfigError::BadValue {
                        value, expected, ..
                    } => ConfigError::BadValue {
                        option: origin,
                        value,
                        expected,
                    },
                    other => other,
                })
            })
            .transpose()?
            .unwrap_or_default();
        require_cluster |= env(ENV_REQUIRE_CLUSTER)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
        let artifacts = pick(artifacts, "--artifacts", ENV_ARTIFACTS)
            .map(PathBuf::from)
            .unwrap_or_else(|| default_target_dir(&env).join("harness"));

        let run_id = match env(ENV_RUN_ID).filter(|v| !v.is_empty()) {
            Some(id) if is_dns_label(&id) && id.len() <= 20 => id,
            Some(id) => {
                return Err(ConfigError::BadValue {
                    option: ENV_RUN_ID.into(),
                    value: id,
                    expected: "a DNS label of at most 20 characters",
                })
            }
            None => random_suffix(8),
        };
        let namespace_lease = match env(ENV_NAMESPACE_LEASE).filter(|v| !v.is_empty()) {
            Some(text) => match text.parse::<u64>() {
                Ok(secs) if secs >= 5 => std::time::Duration::from_secs(secs),
                _ => {
                    return Err(ConfigError::BadValue {
                        option: ENV_NAMESPACE_LEASE.into(),
                        value: text,
                        expected: "whole seconds, at least 5",
                    })
                }
            },
            None => DEFAULT_NAMESPACE_LEASE,
        };
        let whole =
            |option: &str, expected: &'static str| match env(option).filter(|v| !v.is_empty()) {
                Some(text) => text
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| ConfigError::BadValue {
                        option: option.into(),
                        value: text,
                        expected,
                    }),
                None => Ok(None),
            };
        let defaults = crate::cluster::status::FailFast::default();
        let fail_fast = crate::cluster::status::FailFast {
            crash_loop_restarts: whole(ENV_CRASH_LOOP_RESTARTS, "a whole number of restarts")?
                .map_or(defaults.crash_loop_restarts, |n| {
                    n.try_into().unwrap_or(i32::MAX)
                }),
            settle: whole(ENV_STUCK_SETTLE, "whole seconds")?.map_or(defaults.settle, |s| {
                std::time::Duration::from_secs(s.into())
            }),
            ..defaults
        };
        let cluster_wait = whole(ENV_CLUSTER_WAIT, "whole seconds")?
            .map_or(DEFAULT_CLUSTER_WAIT, |s| {
                std::time::Duration::from_secs(s.into())
            });
        no_redact |= env(ENV_REDACT)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no"));
        if no_redact && env("CI").is_some_and(|v| !v.is_empty()) {
            return Err(ConfigError::RedactionInCi);
        }
        let config = RunConfig {
            mark,
            test_namespace,
            kube_context: pick(kube_context, "--kube-context", ENV_KUBE_CONTEXT),
            kubeconfig: pick_from(kubeconfig, "--kubeconfig", "KUBECONFIG")
                .filter(|(path, _)| !path.contains(':'))
                .map(|(path, origin)| (PathBuf::from(path), origin)),
            require_cluster,
            keep_namespace,
            junit: pick(junit, "--junit", ENV_JUNIT).map(PathBuf::from),
            artifacts,
            ci_job_id: env("CI_JOB_ID").filter(|v| !v.is_empty()),
            run_id,
            namespace_lease,
            redact: !no_redact,
            tools: Tools::from_env(&env),
            under_nextest: env("NEXTEST").is_some(),
            fail_fast,
            claim_cluster_objects: !env(ENV_CLUSTER_CLAIMS)
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")),
            cluster_wait,
            hold_cluster: !env(ENV_CLUSTER_HOLDS)
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")),
            translate_api_versions: !env(ENV_TRANSLATE_API_VERSIONS)
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")),
            pod_security: match env(ENV_POD_SECURITY).filter(|v| !v.is_empty()) {
                Some(level) => level.parse().map_err(|_| ConfigError::BadValue {
                    option: ENV_POD_SECURITY.into(),
                    value: level,
                    expected: "privileged, baseline or restricted",
                })?,
                None => Default::default(),
            },
            shard: crate::runner::shard::Shard::from_env(&env).map_err(ConfigError::Shard)?,
            attempt: env("NEXTEST_ATTEMPT")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1),
        };
        Ok(config)
    }

    /// The JUnit file for `suite`: `--junit` names a file, a directory (existing
    /// or ending in `/`, then `<dir>/<suite>.xml`), or a pattern with `{suite}`.
    ///
    /// When nextest runs one case per process, `case` is set and the file name
    /// gets the case appended, so parallel processes do not overwrite each other.
    pub fn junit_file(&self, suite: &str, case: Option<&str>) -> Option<PathBuf> {
        let given = self.junit.as_ref()?;
        let text = given.to_string_lossy();
        let base = if text.contains("{suite}") {
            PathBuf::from(text.replace("{suite}", suite))
        } else if text.ends_with('/') || given.is_dir() {
            given.join(format!("{suite}.xml"))
        } else {
            given.clone()
        };
        Some(match case {
            None => base,
            Some(case) => {
                let stem = base.file_stem().unwrap_or_default().to_string_lossy();
                // A retry's report beside the failed attempt's, not over it.
                let attempt = match self.attempt {
                    0 | 1 => String::new(),
                    n => format!("--attempt-{n}"),
                };
                base.with_file_name(format!("{stem}--{}{attempt}.xml", file_safe(case)))
            }
        })
    }

    /// A fresh namespace name for a case: the forced `--test-namespace`,
    /// else `ci-<job>-<suffix>` in CI, else `test-<run>-<suffix>`; always a DNS label.
    pub fn namespace_name(&self) -> String {
        if let Some(ns) = &self.test_namespace {
            return ns.clone();
        }
        let prefix = match &self.ci_job_id {
            Some(job) => format!("ci-{}", dns_safe(job)),
            None => format!("test-{}", self.run_id),
        };
        let mut name = format!("{prefix}-{}", random_suffix(6));
        name.truncate(63);
        name.trim_end_matches('-').to_owned()
    }
}

/// `true` for an RFC 1123 label: what Kubernetes accepts as a namespace name.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn dns_safe(s: &str) -> String {
    s.chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// `s` with everything but ASCII letters, digits, `-` and `_` replaced by `_`:
/// safe as one path component.
pub(crate) fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Lowercase letters and digits from the OS random source: safe in DNS names and
/// unique across parallel processes (no counters or clock seeds).
pub fn random_suffix(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The cargo target directory the running test binary lives in
/// (`<target>/<profile>/deps/<binary>`), else `CARGO_TARGET_DIR`, else `./target`.
fn default_target_dir(env: &impl Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(dir) = env("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let deps = exe.parent()?;
            (deps.file_name()? == "deps").then(|| deps.parent()?.parent().map(Path::to_path_buf))?
        })
        .unwrap_or_else(|| PathBuf::from("target"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<(RunConfig, Arguments), ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RunConfig::parse(
            std::iter::once("prog".to_owned()).chain(args.iter().map(|s| s.to_string())),
            move |k| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()),
        )
    }

    #[test]
    fn harness_options_are_taken_out_and_the_rest_passed_on() {
        let (config, rest) = parse(
            &[
                "--mark",
                "no_deploy",
                "--exact",
                "foo",
                "--keep-namespace=on-failure",
                "--require-cluster",
            ],
            &[],
        )
        .unwrap();
        assert!(rest.exact);
        assert_eq!(rest.filter.as_deref(), Some("foo"));
        assert!(config.mark.is_some());
        assert!(config.require_cluster);
        assert_eq!(config.keep_namespace, KeepNamespace::OnFailure);
    }

    #[test]
    fn command_line_wins_over_environment() {
        let (config, _) = parse(
            &["--kube-context", "kind-a"],
            &[(ENV_KUBE_CONTEXT, "kind-b"), (ENV_REQUIRE_CLUSTER, "true")],
        )
        .unwrap();
        assert_eq!(config.kube_context.as_deref(), Some("kind-a"));
        assert!(config.require_cluster);
    }

    #[rstest]
    #[case(&["--mark"], "a value is required for '--mark <EXPR>'")]
    #[case(&["--no-such-option"], "unexpected argument '--no-such-option'")]
    #[case(&["--keep-namespace", "sometimes"], "invalid value \"sometimes\" for --keep-namespace")]
    #[case(&["--test-namespace", "Bad_Name"], "invalid value \"Bad_Name\" for --test-namespace")]
    #[case(&["--mark", "no_deploy and"], "invalid mark expression")]
    fn bad_options_are_named(#[case] args: &[&str], #[case] expected: &str) {
        let err = parse(args, &[]).unwrap_err().to_string();
        assert!(err.starts_with(expected), "{err}");
    }

    #[test]
    fn namespaces_follow_ci_job_and_are_unique() {
        let (config, _) = parse(&[], &[("CI_JOB_ID", "4711")]).unwrap();
        let (a, b) = (config.namespace_name(), config.namespace_name());
        assert!(a.starts_with("ci-4711-") && is_dns_label(&a), "{a}");
        assert_ne!(a, b);
        let (forced, _) = parse(&["--test-namespace", "mine"], &[("CI_JOB_ID", "1")]).unwrap();
        assert_eq!(forced.namespace_name(), "mine");
        let (local, _) = parse(&[], &[]).unwrap();
        assert!(is_dns_label(&local.namespace_name()));
    }

    #[test]
    fn run_id_and_lease_come_from_the_environment() {
        let (config, _) =
            parse(&[], &[(ENV_RUN_ID, "leak-1"), (ENV_NAMESPACE_LEASE, "12")]).unwrap();
        assert_eq!(config.run_id, "leak-1");
        assert_eq!(config.namespace_lease, std::time::Duration::from_secs(12));
        let bad_id = parse(&[], &[(ENV_RUN_ID, "Bad_Id")]).unwrap_err();
        assert!(bad_id.to_string().contains(ENV_RUN_ID), "{bad_id}");
        let short = parse(&[], &[(ENV_NAMESPACE_LEASE, "2")]).unwrap_err();
        assert!(short.to_string().contains("at least 5"), "{short}");
    }

    #[test]
    fn fail_fast_comes_from_the_environment() {
        let (config, _) = parse(
            &[],
            &[(ENV_CRASH_LOOP_RESTARTS, "1"), (ENV_STUCK_SETTLE, "5")],
        )
        .unwrap();
        assert_eq!(config.fail_fast.crash_loop_restarts, 1);
        assert_eq!(config.fail_fast.settle, std::time::Duration::from_secs(5));
        let (default, _) = parse(&[], &[]).unwrap();
        assert_eq!(
            default.fail_fast,
            crate::cluster::status::FailFast::default()
        );
        let bad = parse(&[], &[(ENV_CRASH_LOOP_RESTARTS, "-1")]).unwrap_err();
        assert!(bad.to_string().contains(ENV_CRASH_LOOP_RESTARTS), "{bad}");
    }

    #[rstest]
    #[case("out/", None, "out/echo.xml")]
    #[case("out/{suite}-report.xml", None, "out/echo-report.xml")]
    #[case("out/report.xml", None, "out/report.xml")]
    #[case("out/", Some("[no_deploy] a::b"), "out/echo--_no_deploy__a__b.xml")]
    fn junit_file_names(#[case] given: &str, #[case] case: Option<&str>, #[case] expected: &str) {
        let (config, _) = parse(&["--junit", given], &[]).unwrap();
        assert_eq!(
            config.junit_file("echo", case).unwrap(),
            PathBuf::from(expected)
        );
    }

    #[test]
    fn redaction_is_on_by_default_and_cannot_be_turned_off_in_ci() {
        let parse = |args: &[&str], env: &[(&str, &str)]| {
            let env: Vec<(String, String)> = env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            RunConfig::parse(
                std::iter::once("t".to_owned()).chain(args.iter().map(|a| a.to_string())),
                move |key| env.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
            )
        };
        assert!(parse(&[], &[]).unwrap().0.redact);
        assert!(!parse(&["--no-redact"], &[]).unwrap().0.redact);
        assert!(!parse(&[], &[(ENV_REDACT, "0")]).unwrap().0.redact);
        let err = parse(&["--no-redact"], &[("CI", "true")]).unwrap_err();
        assert!(
            err.to_string().contains("cannot be turned off in CI"),
            "{err}"
        );
    }
}
