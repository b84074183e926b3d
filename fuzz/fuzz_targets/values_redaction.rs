//! Values files and manifests as the failure bundle writes them: any YAML text
//! is redacted without a panic, and a secret learnt beforehand never survives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use testware::redact::Redactor;

const SECRET: &str = "fuzz-secret-value-7d1e";

fuzz_target!(|text: &str| {
    let mut redactor = Redactor::default();
    redactor.add(SECRET);
    let out = redactor.yaml(text);
    assert!(!out.contains(SECRET), "the secret survived in {out:?}");
});
