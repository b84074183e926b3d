//! `testware check --since REF` in a temporary git repository: only the charts
//! changed since the ref are checked, and a changed chart must raise its version.

mod common;

use common::*;
use std::process::Command;

/// `--since`: in a git clone, only the charts changed since the ref (their own
/// files, or a `file://` dependency's) are checked, and a changed chart whose
/// version was not raised fails, naming both versions; nothing changed is said
/// plainly; a ref git does not know is refused with how to fetch it.
#[test]
fn only_charts_changed_since_a_ref_are_checked_and_must_raise_their_version() {
    let work = std::env::temp_dir().join(format!("testware-check-since-{}", std::process::id()));
    // Removed however the test ends.
    let _cleanup = Copy(work.clone());
    let charts = work.join("charts");
    std::fs::create_dir_all(&charts).unwrap();
    for (from, to) in [
        ("charts-under-test/echo-server", "echo"),
        ("fixtures/policy-charts/file-dependency/app", "app"),
        ("fixtures/policy-charts/file-dependency/common", "common"),
    ] {
        // -L: echo-server is a symbolic link to the library's asset.
        let copied = Command::new("cp")
            .args(["-rL", &repo(from)])
            .arg(charts.join(to))
            .status()
            .expect("cp runs");
        assert!(copied.success());
    }
    let git = |args: &[&str]| {
        let output = Command::new("git")
            .arg("-C")
            .arg(&work)
            .args(["-c", "user.name=ci", "-c", "user.email=ci@example.org"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {output:?}");
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "charts"]);
    let dir = charts.display().to_string();

    let (code, text) = check(&[&dir, "--since", "main"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("nothing changed since main (merge base ")
            && text.contains(") in the 3 chart(s) given: no chart to check"),
        "{text}"
    );

    // A change without a version bump: that chart only, and it fails.
    let values = charts.join("echo/values.yaml");
    let mut text_before = std::fs::read_to_string(&values).unwrap();
    text_before.push_str("# a change\n");
    std::fs::write(&values, &text_before).unwrap();
    let (code, text) = check(&[&dir, "--since", "main"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("1 of 3 chart(s) changed since main")
            && text.contains("  echo (0.2.0 -> 0.2.0): charts/echo/values.yaml"),
        "{text}"
    );
    assert!(
        text.contains("FAIL version::echo\n     chart echo: its files changed (charts/echo/values.yaml) since main, but its version 0.2.0 was not increased (it was 0.2.0 at main); raise version in"),
        "{text}"
    );
    assert!(text.contains("ok   policy::echo::default"), "{text}");
    assert!(
        !text.contains("::app") && !text.contains("::common"),
        "{text}"
    );

    // Raised: it passes.
    let chart_file = charts.join("echo/Chart.yaml");
    let raised = std::fs::read_to_string(&chart_file)
        .unwrap()
        .replace("version: 0.2.0", "version: 0.2.1");
    std::fs::write(&chart_file, raised).unwrap();
    let (code, text) = check(&[&dir, "--since", "main"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("ok   version::echo"), "{text}");
    git(&["commit", "-q", "-am", "echo 0.2.1"]);

    // A file:// dependency changed: the chart that uses it changed too.
    let helpers = charts.join("common/templates/_labels.tpl");
    let mut labels = std::fs::read_to_string(&helpers).unwrap();
    labels.push_str("{{/* a change */}}\n");
    std::fs::write(&helpers, labels).unwrap();
    let (code, text) = check(&[
        &dir,
        "--since",
        "HEAD",
        "--rule",
        "labels",
        "--dependency-build",
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("2 of 3 chart(s) changed since HEAD")
            && text.contains("  app (0.1.0 -> 0.1.0): its file:// dependency charts/common")
            && text.contains("  common (0.1.0 -> 0.1.0): charts/common/templates/_labels.tpl"),
        "{text}"
    );
    assert!(
        text.contains("chart app: its file:// dependency charts/common changed since HEAD, but its version 0.1.0 was not increased"),
        "{text}"
    );

    let (code, text) = check(&[&dir, "--since", "no-such-branch"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("git merge-base no-such-branch HEAD failed in")
            && text.contains("hint: the ref must be known here: fetch it"),
        "{text}"
    );
    std::fs::remove_dir_all(&work).unwrap();

    let outside =
        std::env::temp_dir().join(format!("testware-check-no-git-{}", std::process::id()));
    let _cleanup_outside = Copy(outside.clone());
    let copy = Command::new("cp")
        .args(["-rL", &repo("charts-under-test/echo-server")])
        .arg(&outside)
        .status()
        .expect("cp runs");
    assert!(copy.success());
    let (code, text) = check(&[&outside.display().to_string(), "--since", "main"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("not a git repository"), "{text}");
    assert!(
        text.contains("run it inside a git clone of the charts"),
        "{text}"
    );
    std::fs::remove_dir_all(&outside).unwrap();
}
