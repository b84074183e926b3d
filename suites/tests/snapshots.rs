//! Snapshots of every chart × value set (the library's `snapshot::cases`,
//! kept in `suites/snapshots/`, reviewed with `cargo insta review`), and two
//! cases that show a snapshot never passes silently: a stale one fails, and a
//! missing one fails without being written where CI runs.

use std::sync::Arc;

use testware::charts::snapshot::{self, SnapshotError, Snapshots};
use testware::{cases, check, ChartSet, Ctx, Suite, ValueSet};

fn main() -> std::process::ExitCode {
    let charts = ChartSet::new(suites::charts_dir());
    let kept = Snapshots::new(suites::repo_root().join("suites/snapshots"));
    Suite::new("snapshots")
        .chart_set(charts.clone())
        .cases(snapshot::cases(&charts, kept))
        .cases(cases![no_deploy: stale_snapshot_fails, missing_snapshot_fails_and_is_not_written_in_ci])
        .run()
}

/// insta's choice to accept every render, which these two cases cannot check under.
fn accepting_everything() -> anyhow::Result<()> {
    check!(
        std::env::var("INSTA_UPDATE").as_deref() != Ok("always"),
        "INSTA_UPDATE=always accepts every render, so a stale or missing snapshot cannot fail: unset it to run this case"
    );
    Ok(())
}

/// An empty directory `name` among the case's artifacts (a run before may have left one).
fn fresh_dir(ctx: &Ctx, name: &str) -> anyhow::Result<std::path::PathBuf> {
    let dir = ctx.artifacts_dir().join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A snapshot of echo-server taken with 3 replicas (fixtures/snapshots) fails
/// against the chart's render, which has 1.
async fn stale_snapshot_fails(ctx: Ctx, charts: Arc<ChartSet>) -> anyhow::Result<()> {
    accepting_everything()?;
    let dir = fresh_dir(&ctx, "stale")?;
    let file = "echo-server__default.snap";
    std::fs::copy(suites::fixture("snapshots").join(file), dir.join(file))?;
    let outcome = Snapshots::new(&dir)
        .assert_render(&charts, "echo-server", &ValueSet::defaults())
        .await;
    let err = testware::expect_err(outcome, "the stale snapshot")?;
    check!(
        matches!(err.downcast_ref(), Some(SnapshotError::Stale { .. })),
        "expected a stale snapshot, got: {err:#}"
    );
    Ok(())
}

/// With no snapshot the case fails; in CI (`CI` set) nothing is written,
/// elsewhere the render waits in a `.snap.new` for review, never as the
/// snapshot itself.
async fn missing_snapshot_fails_and_is_not_written_in_ci(
    ctx: Ctx,
    charts: Arc<ChartSet>,
) -> anyhow::Result<()> {
    accepting_everything()?;
    let snapshots = Snapshots::new(fresh_dir(&ctx, "missing")?);
    let outcome = snapshots
        .assert_render(&charts, "echo-server", &ValueSet::defaults())
        .await;
    let err = testware::expect_err(outcome, "the missing snapshot")?;
    check!(
        matches!(err.downcast_ref(), Some(SnapshotError::Missing { .. })),
        "expected a missing snapshot, got: {err:#}"
    );
    let file = snapshots.file("echo-server__default");
    check!(!file.exists(), "{} was written", file.display());
    let pending = file.with_extension("snap.new");
    let in_ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    check!(
        pending.exists() != in_ci,
        "CI={in_ci}: {} should {}exist",
        pending.display(),
        if in_ci { "not " } else { "" }
    );
    Ok(())
}
