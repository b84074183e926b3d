//! The test harness for Helm charts and their deployments.
//!
//! - [`runner`]: cases with tiers and marks, mark expressions, quarantine, JUnit.
//! - [`config`]: the run's options, parsed once and passed explicitly.
//! - [`helm`]: the helm CLI adapter; [`chart`]: rendering charts once and caching.
//! - [`manifest`]: typed rendered objects, queries and [`manifest::policy`] checks.
//! - [`cluster`]: the cluster client and the probe behind the chart_deploy tier.
//! - [`namespace`]: ephemeral test namespaces, their fast awaited deletion, the janitor.
//! - [`deployment`]: `ChartDeployment`, a Helm release in a test namespace.
//! - [`wait`]: `wait_until`, watch-based conditions, the case `Deadline`.
//! - [`explain`]: why a pod, workload or service is not ready, in words.
//! - [`net`]: exec, port-forwards on free local ports, a minimal HTTP request.
//! - [`echo`]: `EchoServer`, the in-cluster log helper.
//! - [`diagnostics`]: failure bundles.
//! - [`kafka`]: Kafka clients for in-cluster brokers (port-forward + protocol relay).
//! - [`influx`]: InfluxQL queries, writes and counts awaited with explanations.
//! - [`efd`]: SAL-shaped EFD records and a deployed efd release seen from the test.
#![warn(missing_docs)]

pub mod chart;
pub mod cluster;
pub mod config;
pub mod deployment;
pub mod diagnostics;
pub mod echo;
pub mod efd;
pub mod explain;
pub mod helm;
pub mod influx;
pub mod junit;
pub mod kafka;
pub mod manifest;
pub mod marks;
pub mod namespace;
pub mod net;
pub mod runner;
pub mod wait;

pub use chart::{ChartRenderer, HelmChart, RenderOptions, Rendered};
pub use config::RunConfig;
pub use helm::Helm;
pub use manifest::Manifests;
pub use runner::{Case, CaseResult, Ctx, Quarantine, Suite, Tier};

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
