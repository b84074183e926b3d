//! Values files and manifests as the failure bundle writes them: any YAML text
//! is redacted without a panic, and a secret learnt beforehand never survives.

use testware::redact::Redactor;

const SECRET: &str = "fuzz-secret-value-7d1e";

/// Panics where the input shows a bug.
pub fn check(data: &[u8]) {
    // libFuzzer's `&str` targets skip input that is not UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut redactor = Redactor::default();
    redactor.add(SECRET);
    let out = redactor.yaml(text);
    assert!(!out.contains(SECRET), "the secret survived in {out:?}");
}
