//! Kubernetes versions (`--kube-version`) and helm's version answer: any text
//! parses or is refused, and what parses prints back the same.

use testware::helm::Version;
use testware::manifest::api_versions::KubeVersion;

/// Panics where the input shows a bug.
pub fn check(data: &[u8]) {
    // libFuzzer's `&str` targets skip input that is not UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(version) = KubeVersion::parse(text) {
        assert_eq!(KubeVersion::parse(&version.to_string()), Ok(version));
    }
    let _ = Version::parse(text);
}
