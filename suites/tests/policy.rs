//! Policy checks on every chart × every values set (the chart's defaults, each
//! `ci/*.yaml` and `values-*.yaml`), plus `helm lint --strict` for the same
//! combinations — the library's `policy::cases` — and self-tests of two rules.
//!
//! Every render applies the probe values (`global.nodeSelector`, `global.tolerations`,
//! `global.storageClass`) so the scheduling and storage-class rules can see
//! whether the chart honours them.

use std::sync::Arc;

use testware::manifest::policy;
use testware::{cases, check, check_eq, ChartSet, Ctx, Suite, ValueSet};

fn main() -> std::process::ExitCode {
    let charts = ChartSet::new(suites::charts_dir());
    Suite::new("policy")
        .chart_set(charts.clone())
        .cases(policy::cases(&charts))
        .cases(cases![no_deploy: latest_image_is_caught, missing_resources_are_caught])
        .run()
}

/// The pin rule fails the real echo-server chart when a values file asks for `latest`.
async fn latest_image_is_caught(charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let values = ValueSet::file(
        "fixtures/values/echo-server-latest.yaml",
        suites::fixture("values/echo-server-latest.yaml"),
    );
    let report = policy::check_chart(&charts, "echo-server", &values).await?;
    let expected = "chart echo-server, values fixtures/values/echo-server-latest.yaml: Deployment/test-echo-server, container echo-server: rule image-pinned: image \"x:latest\" is not pinned";
    check!(
        report.to_string().contains(expected),
        "expected a violation containing {expected:?}, got {report}"
    );
    Ok(())
}

/// The resources rule fails a copy of echo-server whose template lost `resources:`.
async fn missing_resources_are_caught(ctx: Ctx, charts: Arc<ChartSet>) -> anyhow::Result<()> {
    let copies = ctx.artifacts_dir();
    copy_chart(&charts.dir("echo-server"), &copies.join("echo-server"))?;
    let template = copies.join("echo-server/templates/deployment.yaml");
    let text = std::fs::read_to_string(&template)?;
    let stripped: String = text
        .split_inclusive('\n')
        .filter(|l| {
            !l.trim_start().starts_with("resources:") && !l.contains("toYaml .Values.resources")
        })
        .collect();
    check!(
        stripped != text,
        "the template has no resources block to remove"
    );
    std::fs::write(&template, stripped)?;

    let report =
        policy::check_chart(&ChartSet::new(copies), "echo-server", &ValueSet::defaults()).await?;
    let expected = "chart echo-server, values default: Deployment/test-echo-server, container echo-server: rule resources: missing resources requests.cpu, requests.memory, limits.cpu, limits.memory";
    check!(
        report.to_string().contains(expected),
        "expected {expected:?} in {report}"
    );
    check_eq!(
        report.violations.len(),
        1,
        "only the resources rule should fail: {report}"
    );
    Ok(())
}

fn copy_chart(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    if to.exists() {
        std::fs::remove_dir_all(to)?;
    }
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "server" {
                copy_chart(&entry.path(), &target)?;
            }
        } else {
            std::fs::create_dir_all(to)?;
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}
