//! The `api-version` rule: API versions against the target release's deprecation table.

use super::super::*;

/// Kinds the harness types in one version that Kubernetes also serves in another.
const ALSO_SERVED: &[(&str, &str)] = &[("autoscaling/v1", "HorizontalPodAutoscaler")];

/// API versions against `target`: a removed one is an error, a deprecated one a
/// warning, each naming its replacement; an object of a kind the harness types, in
/// a version that is neither that one nor in the deprecation table, is an error
/// too — no other rule could read it, so it must not pass unseen.
pub fn api_version(m: &Manifests, target: KubeVersion) -> Vec<Violation> {
    let mut out = Vec::new();
    for o in m.objects() {
        let (api, kind) = (o.api_version.as_str(), o.kind.as_str());
        let instead = |d: &Deprecation| match d.replacement {
            Some(r) => format!("use {r}"),
            None => "it has no replacement".to_owned(),
        };
        match api_versions::standing(api, kind, target) {
            Standing::Removed(d) => out.push(violation(
                Rule::ApiVersion,
                o,
                None,
                format!(
                    "{api} {kind} is not served since Kubernetes 1.{} (target {target}): {}",
                    d.removed_in,
                    instead(d)
                ),
            )),
            Standing::Deprecated(d) => out.push(Violation {
                severity: Severity::Warning,
                ..violation(
                    Rule::ApiVersion,
                    o,
                    None,
                    format!(
                        "{api} {kind} is deprecated (target {target}; removed in 1.{}): {}",
                        d.removed_in,
                        instead(d)
                    ),
                )
            }),
            Standing::Current => {
                let typed = crate::manifest::typed_api_version(kind);
                let unknown = typed.is_some_and(|t| t != api)
                    && api_versions::deprecation(api, kind).is_none()
                    && !ALSO_SERVED.contains(&(api, kind));
                if let (true, Some(typed)) = (unknown, typed) {
                    out.push(violation(
                        Rule::ApiVersion,
                        o,
                        None,
                        format!("{api} is not an API version of {kind} (expected {typed}): no other rule could read this object"),
                    ));
                }
            }
        }
    }
    out
}
