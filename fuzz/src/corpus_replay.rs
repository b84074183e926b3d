//! The committed corpora replayed: every input of `corpus/<target>/` through
//! its target's check, so that an input that once found a bug keeps guarding
//! the fix in every `cargo test`, without libFuzzer or the nightly toolchain.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;

use crate::TARGETS;

/// `fuzz/` of the checkout under test: cargo's `CARGO_MANIFEST_DIR` at run
/// time, as the other tests here find their files (the compiled-in path may
/// be another clone's: CI's target directory is shared by every checkout).
fn fuzz_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join("corpus").join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (every target keeps a seed corpus)", dir.display()));
    let mut files: Vec<PathBuf> = entries.map(|e| e.expect("a corpus entry").path()).collect();
    files.sort();
    files
}

#[test]
fn every_committed_input_passes_its_targets_check() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for (target, check) in TARGETS {
        let files = inputs(target);
        assert!(!files.is_empty(), "corpus/{target}/ is empty");
        for file in files {
            let data = std::fs::read(&file).expect("a corpus input");
            if catch_unwind(AssertUnwindSafe(|| check(&data))).is_err() {
                failures.push(file.display().to_string());
            }
            replayed += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {replayed} corpus inputs fail their target's check (reproduce: \
         ci/fuzz builds the target; run its binary with the file): {failures:#?}",
        failures.len()
    );
}

/// A target added to `fuzz_targets/` without an entry in [`TARGETS`] would be
/// fuzzed but never replayed.
#[test]
fn every_fuzz_target_is_replayed() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz_targets/")
        .map(|e| e.expect("an entry").path())
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(on_disk, listed);
}

/// The replay can fail: a check that panics on one input is reported.
#[test]
fn a_failing_check_is_caught() {
    fn refuses_x(data: &[u8]) {
        assert!(!data.contains(&b'x'), "x");
    }
    assert!(catch_unwind(|| refuses_x(b"abc")).is_ok());
    assert!(catch_unwind(|| refuses_x(b"xyz")).is_err());
}
