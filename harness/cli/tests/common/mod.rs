//! What the `testware check` test targets share: the repository's paths, the
//! command run with arguments, environment or piped input, and fixture copies.
//! Each target uses part of it.
#![allow(dead_code)]

use std::process::Command;

/// `path` in the checkout the test runs in (cargo's `CARGO_MANIFEST_DIR` at run
/// time: a cached build reused by a clone elsewhere reads that clone's files).
pub fn repo(path: &str) -> String {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(
            || env!("CARGO_MANIFEST_DIR").into(),
            std::path::PathBuf::from,
        )
        .join("../..")
        .join(path)
        .display()
        .to_string()
}

pub fn check(args: &[&str]) -> (Option<i32>, String) {
    check_with(args, &[])
}

pub fn check_with(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    run_check(args, env, None)
}

/// `testware check` with `input` on its standard input (a pipe, as `<(…)` is).
pub fn check_piped(args: &[&str], input: &str) -> (Option<i32>, String) {
    run_check(args, &[], Some(input))
}

/// Exit status and output (stdout, then stderr) of `testware check args`.
pub fn run_check(
    args: &[&str],
    env: &[(&str, &str)],
    input: Option<&str>,
) -> (Option<i32>, String) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_testware"))
        .arg("check")
        .args(args)
        .envs(env.iter().copied())
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the testware binary runs");
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(input.as_bytes())
            .expect("the values reach it");
    }
    let output = child.wait_with_output().expect("it ends");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

/// The keys the fixture charts with their own keys use (`own-keys`, `strict-schema`).
pub const OWN_KEYS: [&str; 6] = [
    "--node-selector-key",
    "nodeSelector",
    "--tolerations-key",
    "tolerations",
    "--storage-class-key",
    "persistence.storageClass",
];

/// A copy of `fixtures/policy-charts/<name>` in a directory of its own (a
/// dependency build writes into the chart), removed when dropped.
pub struct Copy(pub std::path::PathBuf);

impl Copy {
    pub fn of(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("testware-check-{name}-{}", std::process::id()));
        let status = Command::new("cp")
            .args([
                "-r",
                &repo(&format!("fixtures/policy-charts/{name}")),
                &dir.display().to_string(),
            ])
            .status()
            .expect("cp runs");
        assert!(status.success());
        Self(dir)
    }

    pub fn chart(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
