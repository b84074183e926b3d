//! The fuzz target of `testware_fuzz::manifests` (what it checks is there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| testware_fuzz::manifests::check(data));
