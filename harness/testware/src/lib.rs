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
//! One folder per concern, from the top of the dependency order down:
//!
//! - [`runner`]: cases with tiers and marks, selection, quarantine, the
//!   requirement probes, each case's run; [`mod@check`]: `check!`, `check_eq!` and
//!   `expect_err` for case bodies; [`marks`]: mark expressions.
//! - [`config`]: the run's options and the tools' locations, parsed once and
//!   passed explicitly.
//! - [`deployment`]: `Install` and `Upgrade` requests and `ChartDeployment`, the
//!   Helm release in a test namespace they give; [`echo`]: `EchoServer`, the
//!   in-cluster log helper.
//! - [`charts`]: a repository's charts rendered once and cached, the helm
//!   adapter, what each helm action is given.
//! - [`manifest`]: typed rendered objects, queries, schemas and
//!   [`manifest::policy`] (one file per rule), pure but for the render.
//! - [`cluster`]: the client and its probe, namespaces, waits, workload states
//!   and their explanations, exec and port-forwards.
//! - [`containers`]: the container engine of the component tier, images built
//!   on demand and imported into the cluster.
//! - [`report`]: JUnit, failure bundles, the case timeline, redaction.
//!
//! The modules users reach most are re-exported at the top as well
//! (`testware::namespace`, `testware::wait`, `testware::helm`, …), as kube
//! re-exports its parts.
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
pub mod charts;
pub mod cluster;
pub mod config;
pub mod containers;
pub mod deployment;
pub mod echo;
pub mod manifest;
pub mod marks;
pub mod report;
pub mod runner;

// The parts users reach most, at the top (the folders above show where they live).
pub use charts::{chart, helm, options};
pub use cluster::{explain, holds, namespace, net, status, versions, wait};
pub use containers::{engine, images};
pub use report::{diagnostics, junit, redact, timeline};

pub use chart::{ChartRenderer, ChartSet, HelmChart, Rendered, ValueSet};
pub use check::expect_err;
pub use cluster::pod_security::PodSecurity;
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
