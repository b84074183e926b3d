//! Testware for Helm charts and their Kubernetes deployments: the library a charts
//! repository's test suites are written with.
//!
//! A suite is a test target with `harness = false` whose `main` registers case
//! functions; each case function asks for what it needs by type:
//!
//! ```no_run
//! use std::sync::Arc;
//! use testware::{cases, CaseResult, RenderOptions, ChartSet, Suite};
//!
//! /// Every Deployment of the `web` chart runs two replicas with `ci/ha.yaml`.
//! async fn ha_values_scale_out(charts: Arc<ChartSet>) -> CaseResult {
//!     let rendered = charts.render("web", RenderOptions::default().values("ci/ha.yaml")).await?;
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
//!   [`options`]: values (every action) and render options.
//! - [`manifest`]: typed rendered objects, queries and [`manifest::policy`] checks.
//! - [`cluster`]: the cluster client and the probe behind the chart_deploy tier;
//!   [`engine`]: the container engine (Docker API) behind the component tier.
//! - [`namespace`]: ephemeral test namespaces, their fast awaited deletion, the janitor.
//! - [`deployment`]: `Install` and `Upgrade` requests and `ChartDeployment`, the
//!   Helm release in a test namespace they give.
//! - [`versions`]: fields that changed shape between Kubernetes API versions, read alike.
//! - [`status`]: what objects' states mean (workload kinds, readiness, rolled out), pure.
//! - [`wait`]: `wait_until`, watch-based conditions, the case `Deadline`.
//! - [`explain`]: why a pod, workload or service is not ready, in words.
//! - [`net`]: exec, port-forwards on free local ports, a minimal HTTP request.
//! - [`echo`]: `EchoServer`, the in-cluster log helper; [`images`]: its image,
//!   built on demand and imported into the cluster (kind, k3d, local, any).
//! - [`diagnostics`]: failure bundles; [`redact`]: nothing secret in what is written.
//!
//! The systems that full_stack cases push data through (Kafka, InfluxDB, the
//! EFD, Redis, the embargo ingest, log stores) are in the crate
//! `testware-systems`, one feature each.
//!
//! The core is one crate with a module per concern: the runner alone would save
//! nothing (every suite needs the manifest types and most need a cluster client).
//! What only some suites need is apart: the systems' clients (rdkafka builds
//! librdkafka) in `testware-systems`, the embedded cluster in `local-cluster`.
#![warn(missing_docs)]

#[macro_use]
pub mod check;
pub mod chart;
pub mod cluster;
pub mod config;
pub mod deployment;
pub mod diagnostics;
pub mod echo;
pub mod engine;
pub mod explain;
pub mod helm;
pub mod images;
pub mod junit;
pub mod manifest;
pub mod marks;
pub mod namespace;
pub mod net;
pub mod options;
pub mod redact;
pub mod runner;
pub mod status;
pub mod timeline;
pub mod versions;
pub mod wait;

pub use chart::{ChartRenderer, ChartSet, HelmChart, Rendered, ValueSet};
pub use check::expect_err;
pub use config::RunConfig;
pub use deployment::{ChartDeployment, DeployError, Install, Upgrade};
pub use helm::Helm;
pub use manifest::Manifests;
pub use namespace::TestNamespace;
pub use options::{Readiness, RenderOptions, Values};
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
