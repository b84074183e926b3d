//! Testware for Helm charts and their Kubernetes deployments: the library a charts
//! repository's test suites are written with.
//!
//! A suite is a test target with `harness = false` whose `main` registers case
//! functions; each case function asks for what it needs by type:
//!
//! ```no_run
//! use std::sync::Arc;
//! use testware::{cases, CaseResult, ChartOptions, ChartSet, Suite};
//!
//! /// Every Deployment of the `web` chart runs two replicas with `ci/ha.yaml`.
//! async fn ha_values_scale_out(charts: Arc<ChartSet>) -> CaseResult {
//!     let rendered = charts.render("web", ChartOptions::default().values("ci/ha.yaml")).await?;
//!     for deployment in rendered.all::<testware::k8s_openapi::api::apps::v1::Deployment>() {
//!         let replicas = deployment.spec.as_ref().and_then(|s| s.replicas);
//!         anyhow::ensure!(replicas == Some(2), "replicas {replicas:?}");
//!     }
//!     Ok(())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     Suite::new("web").charts("charts").cases(cases![no_deploy: ha_values_scale_out]).run()
//! }
//! ```
//!
//! - [`check`]: `check!`, `check_eq!` and `expect_err` for case bodies.
//! - [`runner`]: cases with tiers and marks, mark expressions, quarantine, JUnit.
//! - [`config`]: the run's options, parsed once and passed explicitly.
//! - [`helm`]: the helm CLI adapter; [`chart`]: a repository's charts, rendered once and cached;
//!   [`options`]: the one options type for render, lint, install and upgrade.
//! - [`manifest`]: typed rendered objects, queries and [`manifest::policy`] checks.
//! - [`cluster`]: the cluster client and the probe behind the chart_deploy tier;
//!   [`engine`]: the container engine (Docker API) behind the component tier.
//! - [`namespace`]: ephemeral test namespaces, their fast awaited deletion, the janitor.
//! - [`deployment`]: `ChartDeployment`, a Helm release in a test namespace.
//! - [`status`]: what objects' states mean (workload kinds, readiness, rolled out), pure.
//! - [`wait`]: `wait_until`, watch-based conditions, the case `Deadline`.
//! - [`explain`]: why a pod, workload or service is not ready, in words.
//! - [`net`]: exec, port-forwards on free local ports, a minimal HTTP request.
//! - [`echo`]: `EchoServer`, the in-cluster log helper; [`images`]: its image,
//!   built on demand and imported into the cluster (kind, k3d, local, any).
//! - [`diagnostics`]: failure bundles; [`redact`]: nothing secret in what is written.
//! - `kafka`, `influx`, `efd` (feature `full-stack`): Kafka clients for in-cluster
//!   brokers (port-forward + protocol relay), InfluxQL queries and counts awaited
//!   with explanations, SAL-shaped EFD records, and the EFD's data path — deployed
//!   as a release, or any broker and InfluxDB the test reaches (e.g. containers).
//!
//! One crate with a module per concern, not several crates behind a facade: a
//! user adds one dependency and one version; the runner alone would save nothing
//! (every suite needs the manifest types and most need a cluster client), while
//! the one heavy, special-purpose part — rdkafka, which builds librdkafka — is the
//! optional feature `full-stack`.
#![warn(missing_docs)]

#[macro_use]
pub mod check;
pub mod chart;
pub mod cluster;
pub mod config;
pub mod deployment;
pub mod diagnostics;
pub mod echo;
#[cfg(feature = "full-stack")]
pub mod efd;
#[cfg(feature = "full-stack")]
pub mod embargo;
pub mod engine;
pub mod explain;
pub mod helm;
pub mod images;
#[cfg(feature = "full-stack")]
pub mod influx;
pub mod junit;
#[cfg(feature = "full-stack")]
pub mod kafka;
#[cfg(feature = "full-stack")]
pub mod logs;
pub mod manifest;
pub mod marks;
pub mod namespace;
pub mod net;
pub mod options;
pub mod redact;
#[cfg(feature = "full-stack")]
pub mod redis;
pub mod runner;
pub mod status;
pub mod wait;

pub use chart::{ChartRenderer, ChartSet, HelmChart, Rendered, ValueSet};
pub use check::expect_err;
pub use config::RunConfig;
pub use helm::Helm;
pub use manifest::Manifests;
pub use options::{ChartOptions, Readiness};
pub use runner::{Case, CaseResult, Ctx, FromCtx, Quarantine, Suite, Tier};

// What cases use in their signatures, at the versions this library is built with.
// The Kubernetes API version is chosen by the application (a k8s-openapi
// `v1_*` feature in the suite's own Cargo.toml), never by this library.
pub use anyhow;
pub use k8s_openapi;
pub use kube;

/// An error with its whole `source()` chain, joined by `: `.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The README's Rust examples, compiled as doc tests so that they cannot drift
/// from the API (one of them needs the `full-stack` feature, which the
/// workspace's suites enable).
#[cfg(all(doctest, feature = "full-stack"))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeExamples;

#[cfg(test)]
mod readme {
    /// The README's "use it in your repository" section shows the example
    /// repository's files as they are.
    #[test]
    fn shows_the_example_repository_verbatim() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
        for file in ["Cargo.toml", "tests/no_deploy.rs", "tests/chart_deploy.rs"] {
            let path = root.join("examples/charts-repo").join(file);
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(!text.is_empty(), "{} is missing", path.display());
            assert!(
                readme.contains(&text),
                "README.md does not show {} as it is",
                path.display()
            );
        }
    }
}
