//! The test runner every suite uses: cases with a tier and marks, selection by
//! mark expression, quarantine, the cluster requirement, JUnit output.
//!
//! Built on libtest-mimic, so plain libtest options (`--list`, `--exact`,
//! `--ignored`, name filters, `--test-threads`) and nextest's one-process-per-test
//! mode work unchanged. A case's tier and marks are its libtest "kind", shown in
//! listings as `[no_deploy,slow] name: test` — that is how nextest filtersets see them.
//!
//! - [`case`]: what a case is (tier, marks, quarantine, timeout, body; `body` says
//!   what a body is);
//! - [`inject`]: case functions that ask for what they need by type, and [`crate::cases!`];
//! - [`ctx`]: what a running case knows, and what is cleaned up after it;
//! - [`suite`]: selection, the cluster probe, libtest-mimic, JUnit;
//! - [`execution`]: one case's run under its deadline, cleanup, the typed outcome;
//! - [`requirements`]: what the suite's probes found, which each case's execution reads;
//! - [`shard`]: the part of the cases one of several shards runs, balanced by time;
//! - `signals`: the run's namespaces deleted on SIGINT/SIGTERM.

mod body;
pub mod case;
pub mod ctx;
pub mod execution;
pub mod inject;
pub mod requirements;
pub mod shard;
mod signals;
pub mod suite;

pub use body::CaseResult;
pub use case::{Case, Quarantine, Tier, QUARANTINE_MARK};
pub use ctx::Ctx;
pub use execution::KEEP_FOR;
pub use inject::{CaseFn, FromCtx, ParamCaseFn};
pub use requirements::{Requirements, Unmet};
pub use suite::{Suite, SuiteReport};

#[cfg(test)]
mod tests;
