//! The fuzz target of `testware_fuzz::search_answers` (what it checks is there).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| testware_fuzz::search_answers::check(data));
