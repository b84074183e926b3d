//! The fuzz target of `testware_fuzz::cri_log_lines` (what it checks is there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| testware_fuzz::cri_log_lines::check(data));
