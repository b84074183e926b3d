//! The `schema` rule: every object against the target release's OpenAPI schema.

use super::super::*;

/// Each object against the release's schema: every unknown field and wrong type
/// with its path. An object the release has no schema for is a warning — unless
/// the api-version rule already speaks for it (a removed or unknown version of a
/// kind the harness reads).
pub fn schema(m: &Manifests, schemas: &Schemas) -> Vec<Violation> {
    let mut out = Vec::new();
    for o in m.objects() {
        match schemas.validate(&o.raw) {
            Ok(Some(problems)) => out.extend(
                problems
                    .into_iter()
                    .map(|p| violation(Rule::Schema, o, None, p)),
            ),
            Ok(None) => {
                let spoken_for = api_versions::deprecation(&o.api_version, &o.kind).is_some()
                    || crate::manifest::typed_api_version(&o.kind).is_some();
                if !spoken_for {
                    out.push(Violation {
                        severity: Severity::Warning,
                        ..violation(
                            Rule::Schema,
                            o,
                            None,
                            format!(
                                "Kubernetes {} has no schema for {} {}: not validated (a custom resource is validated by its CRD)",
                                schemas.version(),
                                o.api_version,
                                o.kind
                            ),
                        )
                    });
                }
            }
            Err(e) => out.push(violation(Rule::Schema, o, None, e.to_string())),
        }
    }
    out
}
