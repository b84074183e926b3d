//! What every fuzz target checks, as a function of the input's bytes that
//! panics where the input shows a bug. The targets in `fuzz_targets/` call
//! these under libFuzzer (`ci/fuzz`: cargo fuzz, the nightly toolchain, the
//! long runs of the pipeline's scheduled `fuzz` job); the corpus replay below
//! calls them on every committed input (`corpus/<target>/`) as an ordinary test,
//! with the stable toolchain, in `cargo test`.

pub mod api_versions;
pub mod cri_log_lines;
pub mod efd_records;
pub mod embargo_notifications;
pub mod influx_answers;
pub mod kubeconfig;
pub mod manifests;
pub mod marks;
pub mod search_answers;
pub mod values_redaction;

/// A target's check: panics where the input shows a bug.
pub type Check = fn(&[u8]);

/// Every target by the name of its binary (and of its corpus directory).
pub const TARGETS: &[(&str, Check)] = &[
    ("api_versions", api_versions::check),
    ("cri_log_lines", cri_log_lines::check),
    ("efd_records", efd_records::check),
    ("embargo_notifications", embargo_notifications::check),
    ("influx_answers", influx_answers::check),
    ("kubeconfig", kubeconfig::check),
    ("manifests", manifests::check),
    ("marks", marks::check),
    ("search_answers", search_answers::check),
    ("values_redaction", values_redaction::check),
];

#[cfg(test)]
mod corpus_replay;
