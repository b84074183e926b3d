//! The `references` rule: ConfigMap, Secret and PVC references resolve inside the release.

use super::super::*;

/// ConfigMap, Secret and PVC references of every pod resolve inside the release
/// (keys included) or are declared external.
pub fn references(m: &Manifests) -> Vec<Violation> {
    let mut out = Vec::new();
    for pod in m.pod_templates() {
        let external: Vec<String> = pod
            .annotation(EXTERNAL_REFS)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let mut check = |kind: &str,
                         name: &str,
                         key: Option<&str>,
                         optional: bool,
                         container: Option<&str>,
                         via: &str| {
            if optional || external.iter().any(|e| *e == format!("{kind}/{name}")) {
                return;
            }
            let Some(target) = m.find(kind, name) else {
                out.push(violation(Rule::References, pod.owner, container, format!("{via} refers to {kind}/{name}, which is not in the release and not declared in {EXTERNAL_REFS}")));
                return;
            };
            if let Some(key) = key {
                let data = match kind {
                    "ConfigMap" => m.config_map_data(name).ok(),
                    _ => m.secret_data(name).ok(),
                };
                if data.is_some_and(|d| !d.contains_key(key)) {
                    out.push(violation(
                        Rule::References,
                        pod.owner,
                        container,
                        format!(
                            "{via} refers to key {key:?} of {}, which has no such key",
                            target.id()
                        ),
                    ));
                }
            }
        };
        for v in pod.volumes() {
            if let Some(c) = &v.config_map {
                check(
                    "ConfigMap",
                    &c.name,
                    None,
                    c.optional == Some(true),
                    None,
                    &format!("volume {}", v.name),
                );
            }
            if let Some(s) = &v.secret {
                check(
                    "Secret",
                    s.secret_name.as_deref().unwrap_or_default(),
                    None,
                    s.optional == Some(true),
                    None,
                    &format!("volume {}", v.name),
                );
            }
            if let Some(p) = &v.persistent_volume_claim {
                check(
                    "PersistentVolumeClaim",
                    &p.claim_name,
                    None,
                    false,
                    None,
                    &format!("volume {}", v.name),
                );
            }
            for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
                if let Some(c) = &source.config_map {
                    check(
                        "ConfigMap",
                        &c.name,
                        None,
                        c.optional == Some(true),
                        None,
                        &format!("volume {}", v.name),
                    );
                }
                if let Some(s) = &source.secret {
                    check(
                        "Secret",
                        &s.name,
                        None,
                        s.optional == Some(true),
                        None,
                        &format!("volume {}", v.name),
                    );
                }
            }
        }
        for (c, _) in pod.all_containers() {
            for from in c.env_from.iter().flatten() {
                if let Some(r) = &from.config_map_ref {
                    check(
                        "ConfigMap",
                        &r.name,
                        None,
                        r.optional == Some(true),
                        Some(&c.name),
                        "envFrom",
                    );
                }
                if let Some(r) = &from.secret_ref {
                    check(
                        "Secret",
                        &r.name,
                        None,
                        r.optional == Some(true),
                        Some(&c.name),
                        "envFrom",
                    );
                }
            }
            for var in c.env.iter().flatten() {
                let Some(from) = &var.value_from else {
                    continue;
                };
                let via = format!("env {}", var.name);
                if let Some(r) = &from.config_map_key_ref {
                    check(
                        "ConfigMap",
                        &r.name,
                        Some(&r.key),
                        r.optional == Some(true),
                        Some(&c.name),
                        &via,
                    );
                }
                if let Some(r) = &from.secret_key_ref {
                    check(
                        "Secret",
                        &r.name,
                        Some(&r.key),
                        r.optional == Some(true),
                        Some(&c.name),
                        &via,
                    );
                }
            }
        }
    }
    out
}
