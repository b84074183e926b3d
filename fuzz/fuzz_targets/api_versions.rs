//! Kubernetes versions (`--kube-version`) and helm's version answer: any text
//! parses or is refused, and what parses prints back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use testware::helm::Version;
use testware::manifest::api_versions::KubeVersion;

fuzz_target!(|text: &str| {
    if let Ok(version) = KubeVersion::parse(text) {
        assert_eq!(KubeVersion::parse(&version.to_string()), Ok(version));
    }
    let _ = Version::parse(text);
});
