//! The `references` rule: ConfigMap, Secret and PVC references resolve inside the release.
//!
//! A Secret "in the release" is one it renders, or one it makes happen: an
//! operator's object that writes a Secret of a known name (cert-manager's
//! `Certificate`, `ExternalSecret`, `SealedSecret`, `VaultSecret`) or a hook pod
//! of the release that creates one (`--secret-name=x`, `kubectl create secret …
//! x`). Users cannot annotate the charts they vendor, so these count without an
//! annotation; anything else outside the release is declared with
//! [`EXTERNAL_REFS`] or `testware check --external-ref Kind/name`.

use std::collections::BTreeMap;

use super::super::*;

/// ConfigMap, Secret and PVC references of every pod resolve inside the release
/// (keys included) or are declared external.
pub fn references(m: &Manifests) -> Vec<Violation> {
    references_with(m, &[])
}

/// [`references`], with `external` (`Kind/name`) provided outside the release
/// for every pod.
pub fn references_with(m: &Manifests, external: &[String]) -> Vec<Violation> {
    let produced = produced_secrets(m);
    let mut out = Vec::new();
    for pod in m.pod_templates() {
        let external: Vec<String> = pod
            .annotation(EXTERNAL_REFS)
            .map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<String>>()
            })
            .unwrap_or_default()
            .into_iter()
            .chain(external.iter().cloned())
            .collect();
        for pull in pod.spec.image_pull_secrets.iter().flatten() {
            let name = pull.name.as_str();
            let declared = external.iter().any(|e| *e == format!("Secret/{name}"));
            if !declared && m.find("Secret", name).is_none() && !produced.contains_key(name) {
                // The kubelet pulls without a pull secret it cannot find (and
                // says so in an event): only a private registry refuses.
                let mut v = violation(Rule::References, pod.owner, None, format!("imagePullSecrets names Secret/{name}, which is not in the release and not declared external: pulls from a registry that needs it will fail"));
                v.severity = Severity::Warning;
                out.push(v);
            }
        }
        let mut check = |kind: &str,
                         name: &str,
                         key: Option<&str>,
                         optional: bool,
                         container: Option<&str>,
                         via: &str| {
            if optional || external.iter().any(|e| *e == format!("{kind}/{name}")) {
                return;
            }
            if kind == "Secret" {
                if let Some(made) = produced.get(name) {
                    if let (Some(key), Some(keys)) = (key, made.keys) {
                        if !keys.contains(&key) {
                            out.push(violation(
                                Rule::References,
                                pod.owner,
                                container,
                                format!("{via} refers to key {key:?} of Secret/{name}, which {} writes with keys {} only", made.by, keys.join(", ")),
                            ));
                        }
                    }
                    return;
                }
            }
            let Some(target) = m.find(kind, name) else {
                out.push(violation(Rule::References, pod.owner, container, format!("{via} refers to {kind}/{name}, which is not in the release and not declared external (annotation {EXTERNAL_REFS}, or `testware check --external-ref {kind}/{name}`)")));
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

/// A Secret the release makes happen without rendering it.
#[derive(Debug, Clone)]
struct Produced {
    /// What writes it (`Certificate/web-tls`, `hook Job/admission-create`).
    by: String,
    /// The keys it is known to write, when they are known.
    keys: Option<&'static [&'static str]>,
}

/// The keys cert-manager writes into a Certificate's Secret.
const CERTIFICATE_KEYS: &[&str] = &["tls.crt", "tls.key", "ca.crt"];

/// Secrets written by operators' objects of the release and by its hook pods,
/// by name.
fn produced_secrets(m: &Manifests) -> BTreeMap<String, Produced> {
    let mut out = BTreeMap::new();
    for object in m.objects() {
        let group = object.api_version.split('/').next().unwrap_or_default();
        let text = |path: &[&str]| {
            path.iter()
                .try_fold(&object.raw, |v, k| v.get(*k))
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let written = match (object.kind.as_str(), group) {
            ("Certificate", "cert-manager.io") => {
                text(&["spec", "secretName"]).map(|n| (n, Some(CERTIFICATE_KEYS)))
            }
            ("ExternalSecret", g) if g.starts_with("external-secrets.io") => Some((
                text(&["spec", "target", "name"]).unwrap_or_else(|| object.name().to_owned()),
                None,
            )),
            ("SealedSecret", "bitnami.com") => Some((
                text(&["spec", "template", "metadata", "name"])
                    .unwrap_or_else(|| object.name().to_owned()),
                None,
            )),
            ("VaultSecret", "ricoberger.de") => Some((object.name().to_owned(), None)),
            _ => None,
        };
        if let Some((name, keys)) = written {
            out.insert(
                name,
                Produced {
                    by: object.id(),
                    keys,
                },
            );
        }
    }
    for pod in m.pod_templates().into_iter().filter(|p| p.owner.is_hook()) {
        for (c, _) in pod.all_containers() {
            let words: Vec<&str> = c
                .command
                .iter()
                .chain(c.args.iter())
                .flatten()
                .flat_map(|a| a.split_whitespace())
                .collect();
            for name in secrets_created_by(&words) {
                out.entry(name).or_insert_with(|| Produced {
                    by: format!("hook {}", pod.owner.id()),
                    keys: None,
                });
            }
        }
    }
    out
}

/// The Secret names a hook container's words create: a `--…secret…=name` or
/// `--…secret… name` flag (kube-webhook-certgen's `--secret-name`), or
/// `kubectl create secret <type> name`.
fn secrets_created_by(words: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let next = words.get(i + 1).copied();
        if let Some(flag) = word.strip_prefix("--") {
            let (flag, value) = match flag.split_once('=') {
                Some((f, v)) => (f, Some(v)),
                None => (flag, next.filter(|n| !n.starts_with('-'))),
            };
            if flag.contains("secret") && !flag.contains("namespace") {
                out.extend(value.map(str::to_owned));
            }
        } else if *word == "secret" && i > 0 && words[i - 1] == "create" {
            // kubectl create secret generic|tls|docker-registry NAME
            out.extend(words.get(i + 2).map(|s| (*s).to_owned()));
        }
    }
    out.retain(|n| !n.is_empty() && !n.contains(['$', '{', '"', '\'', '/']));
    out
}

#[cfg(test)]
mod tests {
    use super::secrets_created_by;

    #[test]
    fn hook_arguments_that_create_secrets() {
        let certgen = [
            "/certgen",
            "create",
            "--host=x",
            "--secret-name=web-admission",
            "--namespace=ns",
        ];
        assert_eq!(secrets_created_by(&certgen), ["web-admission"]);
        let spaced = ["gen", "--tls-secret", "tls-a", "--verbose"];
        assert_eq!(secrets_created_by(&spaced), ["tls-a"]);
        let kubectl = [
            "sh",
            "-c",
            "kubectl",
            "create",
            "secret",
            "generic",
            "db-pass",
            "--from-literal=p=1",
        ];
        assert_eq!(secrets_created_by(&kubectl), ["db-pass"]);
        let other = [
            "--secret-namespace=ns",
            "--config",
            "x",
            "--secret-name=$(NAME)",
        ];
        assert!(secrets_created_by(&other).is_empty());
    }
}
