//! Rendered manifests (`helm template` output, `helm get manifest`): any text
//! parses into typed objects or is refused with an error, and the policy rules
//! run on whatever parsed.

use testware::chart::ChartMeta;
use testware::manifest::policy::{check_all, Context};
use testware::Manifests;

/// Panics where the input shows a bug.
pub fn check(data: &[u8]) {
    // libFuzzer's `&str` targets skip input that is not UTF-8.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(manifests) = Manifests::parse(text) else {
        return;
    };
    for object in manifests.objects() {
        let _ = (
            object.id(),
            object.labels(),
            object.pod_template().is_some(),
        );
    }
    let chart: ChartMeta = serde_json::from_value(serde_json::json!({
        "name": "fuzz", "version": "0.1.0", "appVersion": "1.0"
    }))
    .expect("a chart's metadata");
    let cx = Context {
        include_test_hooks: true,
        ..Context::new(&chart, "fuzz")
    };
    for violation in check_all(&manifests, &cx) {
        let _ = format!("{violation:?}");
    }
}
