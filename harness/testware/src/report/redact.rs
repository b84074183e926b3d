//! Redaction: nothing secret in what the harness writes. CI systems publish
//! failure bundles, logs and JUnit reports (on public projects anyone can
//! download them), so before anything of a namespace is written:
//!
//! - Secret objects keep their key names and sizes, never their values;
//! - values-file entries whose key looks secret ([`is_secret_key`]) and private
//!   keys (PEM blocks) are replaced;
//! - literal env vars whose name looks secret are replaced (`secretKeyRef`s are
//!   references and are never resolved into output);
//! - every value found that way, and every Secret value of the namespace, is
//!   replaced wherever else it appears: logs, events, manifests, failure messages.
//!
//! `--no-redact` (`HARNESS_REDACT=0`) turns this off for local debugging; it is
//! refused when `CI` is set.

use k8s_openapi::api::core::v1::{Pod, Secret};
use serde_json::Value;

/// What replaces a secret value.
pub const MARKER: &str = "[redacted]";

/// Values shorter than this are not replaced in free text: `1` or `true` would
/// blank out half a log. (Structural redaction still replaces them.)
const MIN_TEXT_SECRET: usize = 6;

/// Whether a key (a values-file key, an env var name) names something secret.
pub fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['-', '_', '.'], "");
    const WORDS: [&str; 8] = [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "privatekey",
        "apikey",
        "accesskey",
    ];
    WORDS.iter().any(|w| k.contains(w)) && !k.ends_with("ref") && !k.ends_with("name")
        || k.ends_with("signingkey")
}

/// The secret values of one namespace, replaced wherever they appear in text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    values: Vec<String>,
    disabled: bool,
}

impl Redactor {
    /// A redactor that leaves everything as it is (`--no-redact`).
    pub fn disabled() -> Self {
        Self {
            values: Vec::new(),
            disabled: true,
        }
    }

    /// Whether redaction is on.
    pub fn is_enabled(&self) -> bool {
        !self.disabled
    }

    /// Remembers `value` (and its base64 form) as secret.
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.len() < MIN_TEXT_SECRET {
            return;
        }
        for form in [value.to_owned(), base64(value.as_bytes())] {
            if !self.values.contains(&form) {
                self.values.push(form);
            }
        }
        // Longest first, so a value that contains another is replaced whole.
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    /// `text` with every known secret value and every PEM private key replaced.
    pub fn text(&self, text: &str) -> String {
        if self.disabled {
            return text.to_owned();
        }
        let mut out = redact_pem(text);
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), MARKER);
            }
        }
        out
    }

    /// Learns every value of the namespace's Secrets (a service-account
    /// token Secret's namespace and CA excepted: they are public).
    pub async fn learn_secrets(&mut self, client: &kube::Client, namespace: &str) {
        let secrets: kube::Api<Secret> = kube::Api::namespaced(client.clone(), namespace);
        if let Ok(list) = secrets.list(&Default::default()).await {
            for secret in list.items {
                let learnt =
                    secret.data.iter().flatten().filter(|(key, _)| {
                        !public_service_account_field(secret.type_.as_deref(), key)
                    });
                for (_, bytes) in learnt {
                    if let Ok(text) = std::str::from_utf8(&bytes.0) {
                        self.add(text);
                    }
                }
                for text in secret.string_data.iter().flat_map(|d| d.values()) {
                    self.add(text);
                }
            }
        }
    }

    /// Learns a pod's literal env values with secret-looking names (and
    /// anything else [`Redactor::json`] finds in it).
    pub fn learn_pod(&mut self, pod: &Pod) {
        if let Ok(mut value) = serde_json::to_value(pod) {
            self.json(&mut value);
        }
    }

    /// Redacts a Kubernetes object or a values tree in place (learning what it
    /// replaces): Secret `data`/`stringData` become `[redacted: N bytes]` with
    /// the keys kept; entries with secret-looking keys and literal env values
    /// with secret-looking names become [`MARKER`]; the last-applied annotation
    /// (a copy of the object) goes.
    pub fn json(&mut self, value: &mut Value) {
        if self.disabled {
            return;
        }
        let mut secret_data = Vec::new();
        if value.get("kind").and_then(Value::as_str) == Some("Secret") {
            for field in ["data", "stringData"] {
                let type_ = value.get("type").and_then(Value::as_str).map(str::to_owned);
                if let Some(Value::Object(map)) = value.get_mut(field) {
                    for (key, entry) in map.iter_mut() {
                        let public = public_service_account_field(type_.as_deref(), key);
                        let text = entry.as_str().unwrap_or_default().to_owned();
                        let size = if field == "data" {
                            decode_base64(&text).map_or(text.len(), |b| {
                                if let (false, Ok(plain)) = (public, std::str::from_utf8(&b)) {
                                    self.add(plain);
                                }
                                b.len()
                            })
                        } else {
                            self.add(&text);
                            text.len()
                        };
                        *entry = Value::String(format!("[redacted: {size} bytes]"));
                    }
                }
                // Already redacted: kept out of the walk below.
                if let Some(map) = value.as_object_mut() {
                    if let Some(data) = map.remove(field) {
                        secret_data.push((field, data));
                    }
                }
            }
        }
        if let Some(Value::Object(annotations)) = value.pointer_mut("/metadata/annotations") {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
        self.walk(value);
        if let Some(map) = value.as_object_mut() {
            for (field, data) in secret_data {
                map.insert(field.to_owned(), data);
            }
        }
    }

    fn walk(&mut self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                // An env var: {"name": "DB_PASSWORD", "value": "…"}.
                let env_name = map
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| is_secret_key(n))
                    .is_some();
                if env_name {
                    if let Some(Value::String(v)) = map.get_mut("value") {
                        let secret = std::mem::replace(v, MARKER.to_owned());
                        self.add(&secret);
                    }
                }
                for (key, entry) in map.iter_mut() {
                    // References (secretKeyRef, configMapRef, …) name things and
                    // hold no secret.
                    if key.to_ascii_lowercase().ends_with("ref") {
                        continue;
                    }
                    match entry {
                        Value::String(s) if is_secret_key(key) => {
                            let secret = std::mem::replace(s, MARKER.to_owned());
                            self.add(&secret);
                        }
                        Value::Number(_) | Value::Bool(_) if is_secret_key(key) => {
                            *entry = Value::String(MARKER.to_owned());
                        }
                        _ => self.walk(entry),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| self.walk(i)),
            Value::String(s) if s.contains("PRIVATE KEY-----") => {
                let secret = std::mem::replace(s, MARKER.to_owned());
                self.add(&secret);
            }
            _ => {}
        }
    }

    /// A multi-document YAML text (a manifest, a values file, a pod) with every
    /// document redacted as [`Redactor::json`] does, then as [`Redactor::text`].
    /// A document that does not parse is redacted as text only.
    pub fn yaml(&mut self, text: &str) -> String {
        if self.disabled {
            return text.to_owned();
        }
        let mut documents = Vec::new();
        for document in split_documents(text) {
            let parsed: Result<Value, _> = serde_yaml_ng::from_str(document);
            match parsed {
                Ok(Value::Null) => documents.push(document.to_owned()),
                Ok(mut value) => {
                    self.json(&mut value);
                    documents.push(
                        serde_yaml_ng::to_string(&value).unwrap_or_else(|_| document.to_owned()),
                    );
                }
                Err(_) => documents.push(document.to_owned()),
            }
        }
        // The values learnt from later documents apply to earlier ones too.
        self.text(&documents.join("\n---\n"))
    }
}

/// The `namespace` and `ca.crt` of a service-account token Secret are public
/// (the namespace's own name, the cluster's CA): learning them as secrets would
/// blank out every mention of the namespace.
fn public_service_account_field(type_: Option<&str>, key: &str) -> bool {
    type_ == Some("kubernetes.io/service-account-token") && matches!(key, "namespace" | "ca.crt")
}

fn split_documents(text: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            documents.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push(&text[start..]);
    documents
}

/// PEM private key blocks replaced, whatever else is around them.
fn redact_pem(text: &str) -> String {
    const BEGIN: &str = "-----BEGIN ";
    const END: &str = "-----END ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(begin) = rest.find(BEGIN) {
        let block = &rest[begin..];
        let private = block
            .lines()
            .next()
            .is_some_and(|l| l.contains("PRIVATE KEY"));
        // The end of the closing line `-----END … PRIVATE KEY-----`.
        let end = block.find(END).and_then(|e| {
            block[e + END.len()..]
                .find("-----")
                .map(|f| e + END.len() + f + 5)
        });
        match (private, end) {
            (true, Some(end)) => {
                out.push_str(&rest[..begin]);
                out.push_str(MARKER);
                rest = &block[end..];
            }
            _ => {
                out.push_str(&rest[..begin + BEGIN.len()]);
                rest = &block[BEGIN.len()..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys_are_recognised() {
        for key in [
            "password",
            "redis.auth.password",
            "webhookSecret",
            "secret",
            "apiToken",
            "AWS_SECRET_ACCESS_KEY",
            "credentials",
            "privateKey",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "replicaCount",
            "existingSecretName",
            "secretKeyRef",
            "image",
            "key",
            "authEnabled",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn secrets_keep_keys_and_sizes_and_their_values_are_replaced_elsewhere() {
        let mut r = Redactor::default();
        let manifest = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  password: aHVudGVyMjI=\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  url: redis://:hunter22@redis\n";
        let out = r.yaml(manifest);
        assert!(out.contains("password: '[redacted: 8 bytes]'"), "{out}");
        assert!(
            !out.contains("hunter22") && !out.contains("aHVudGVyMjI="),
            "{out}"
        );
        assert!(out.contains("redis://:[redacted]@redis"), "{out}");
        assert_eq!(r.text("log: auth hunter22 ok"), "log: auth [redacted] ok");
    }

    #[test]
    fn values_and_env_with_secret_names_are_replaced() {
        let mut r = Redactor::default();
        let out = r.yaml("redis:\n  auth:\n    password: s3cret-pass\n  port: 6379\nwebhook:\n  secret: hook-s3cret\n");
        assert!(
            !out.contains("s3cret-pass") && !out.contains("hook-s3cret"),
            "{out}"
        );
        assert!(out.contains("port: 6379"), "{out}");
        let pod = "kind: Pod\nspec:\n  containers:\n  - name: c\n    env:\n    - name: DB_PASSWORD\n      value: env-s3cret\n    - name: MODE\n      value: fast\n    - name: FROM_REF\n      valueFrom:\n        secretKeyRef: {name: s, key: password}\n";
        let out = r.yaml(pod);
        assert!(
            !out.contains("env-s3cret") && out.contains("value: fast"),
            "{out}"
        );
        assert!(out.contains("secretKeyRef"), "references stay: {out}");
        assert_eq!(
            r.text("env-s3cret and hook-s3cret"),
            "[redacted] and [redacted]"
        );
    }

    #[test]
    fn private_keys_are_replaced_and_certificates_kept() {
        let r = Redactor::default();
        let text = "a\n-----BEGIN PRIVATE KEY-----\nMIIabc\n-----END PRIVATE KEY-----\nb\n-----BEGIN CERTIFICATE-----\nMIIcert\n-----END CERTIFICATE-----\n";
        let out = r.text(text);
        assert!(!out.contains("MIIabc") && out.contains("MIIcert"), "{out}");
    }

    #[test]
    fn disabled_leaves_everything() {
        let mut r = Redactor::disabled();
        r.add("hunter22");
        assert_eq!(r.text("hunter22"), "hunter22");
        assert!(r.yaml("password: x\n").contains("password: x"));
    }

    #[test]
    fn service_account_tokens_are_secret_but_their_namespace_is_not() {
        let mut r = Redactor::default();
        let out = r.yaml("kind: Secret\ntype: kubernetes.io/service-account-token\ndata:\n  namespace: dGVzdC1hYmMtMTIz\n  token: c2VjcmV0LXRva2VuLXZhbHVl\n");
        assert!(out.contains("namespace: '[redacted: 12 bytes]'"), "{out}");
        assert_eq!(
            r.text("namespace test-abc-123, token secret-token-value"),
            "namespace test-abc-123, token [redacted]"
        );
    }
}
