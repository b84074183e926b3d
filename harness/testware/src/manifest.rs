//! Typed view of rendered manifests: each object parsed into its k8s-openapi type
//! (or a `DynamicObject` for kinds the harness does not know, such as CRDs), with
//! the template it came from, and the queries a test author needs.

pub mod api_versions;
pub mod policy;
pub mod schema;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerPort, EnvVar, PersistentVolumeClaim, Pod, PodSpec, Secret,
    Service, ServiceAccount, Volume,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::Metadata;
use kube::core::DynamicObject;

/// Errors from parsing or querying manifests.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// A YAML document does not parse.
    #[error("document {index} from {source_template} is not valid YAML")]
    Yaml {
        /// 0-based position in the output.
        index: usize,
        /// The template it came from.
        source_template: String,
        /// Why.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A document lacks `apiVersion`/`kind` or does not fit its kind's schema.
    #[error("{kind} from {source_template} does not match the {kind} schema")]
    Schema {
        /// The kind.
        kind: String,
        /// The template it came from.
        source_template: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A query for one object found none.
    #[error("no {kind} named {name:?} in the rendered chart (present: {present})")]
    Missing {
        /// The kind looked for.
        kind: String,
        /// The name looked for.
        name: String,
        /// The objects of that kind that exist.
        present: String,
    },
}

macro_rules! known_kinds {
    ($($variant:ident => $ty:ty),* $(,)?) => {
        /// An object parsed into its k8s-openapi type.
        #[derive(Debug, Clone)]
        #[allow(missing_docs)]
        pub enum Typed {
            $($variant(Box<$ty>),)*
            /// A kind without a compiled-in type (CRDs and the like).
            Dynamic(Box<DynamicObject>),
        }

        impl Typed {
            fn parse(value: serde_json::Value, api_version: &str, kind: &str) -> Result<Self, serde_json::Error> {
                use k8s_openapi::Resource;
                $(
                    if api_version == <$ty as Resource>::API_VERSION && kind == <$ty as Resource>::KIND {
                        return Ok(Typed::$variant(Box::new(serde_json::from_value(value)?)));
                    }
                )*
                // A removed version of a typed kind (extensions/v1beta1 Deployment) is
                // read as its replacement when it fits, so that the container and
                // selector rules still see it; the api-version rule reports the version.
                if let Some(replacement) = api_versions::deprecation(api_version, kind).and_then(|d| d.replacement) {
                    if typed_api_version(kind) == Some(replacement) {
                        let mut as_replacement = value.clone();
                        as_replacement["apiVersion"] = serde_json::Value::from(replacement);
                        if let Ok(typed) = Self::parse(as_replacement, replacement, kind) {
                            return Ok(typed);
                        }
                    }
                }
                Ok(Typed::Dynamic(Box::new(serde_json::from_value(value)?)))
            }

            fn metadata(&self) -> &ObjectMeta {
                match self {
                    $(Typed::$variant(o) => o.metadata(),)*
                    Typed::Dynamic(o) => &o.metadata,
                }
            }
        }

        /// The API version the harness reads `kind` in, for the kinds it types.
        pub fn typed_api_version(kind: &str) -> Option<&'static str> {
            use k8s_openapi::Resource;
            $(
                if kind == <$ty as Resource>::KIND {
                    return Some(<$ty as Resource>::API_VERSION);
                }
            )*
            None
        }

        $(
            impl KnownKind for $ty {
                fn pick(typed: &Typed) -> Option<&Self> {
                    match typed {
                        Typed::$variant(o) => Some(o),
                        _ => None,
                    }
                }
            }
        )*
    };
}

/// A kind the harness parses into a typed object.
pub trait KnownKind: k8s_openapi::Resource + Sized {
    /// The typed object, when `typed` is of this kind.
    fn pick(typed: &Typed) -> Option<&Self>;
}

known_kinds! {
    Deployment => Deployment,
    StatefulSet => StatefulSet,
    DaemonSet => DaemonSet,
    ReplicaSet => ReplicaSet,
    Job => Job,
    CronJob => CronJob,
    Pod => Pod,
    Service => Service,
    ConfigMap => ConfigMap,
    Secret => Secret,
    PersistentVolumeClaim => PersistentVolumeClaim,
    ServiceAccount => ServiceAccount,
    Role => Role,
    RoleBinding => RoleBinding,
    ClusterRole => ClusterRole,
    ClusterRoleBinding => ClusterRoleBinding,
    Ingress => Ingress,
    NetworkPolicy => NetworkPolicy,
    PodDisruptionBudget => PodDisruptionBudget,
    HorizontalPodAutoscaler => HorizontalPodAutoscaler,
    StorageClass => StorageClass,
}

/// One rendered object.
#[derive(Debug, Clone)]
pub struct ManifestObject {
    /// The template that produced it (`# Source:` line), e.g. `efd/templates/kafka.yaml`.
    pub source: String,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// The parsed object.
    pub typed: Typed,
    /// The object as rendered, unknown fields included (what the schema rule validates).
    pub raw: serde_json::Value,
}

impl ManifestObject {
    /// Its metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        self.typed.metadata()
    }

    /// Its name (empty if the template set none).
    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// Its labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.metadata().labels.clone().unwrap_or_default()
    }

    /// `Kind/name`, for messages.
    pub fn id(&self) -> String {
        format!("{}/{}", self.kind, self.name())
    }

    /// The typed object if it is a `K`.
    pub fn as_kind<K: KnownKind>(&self) -> Option<&K> {
        K::pick(&self.typed)
    }

    /// The pod this object runs, for every workload kind (and bare Pods).
    pub fn pod_template(&self) -> Option<PodTemplate<'_>> {
        let (meta, spec) = match &self.typed {
            Typed::Deployment(o) => crate::cluster::versions::spec(&o.spec)
                .map(|s| (s.template.metadata.as_ref(), s.template.spec.as_ref()))?,
            Typed::StatefulSet(o) => crate::cluster::versions::spec(&o.spec)
                .map(|s| (s.template.metadata.as_ref(), s.template.spec.as_ref()))?,
            Typed::DaemonSet(o) => crate::cluster::versions::spec(&o.spec)
                .map(|s| (s.template.metadata.as_ref(), s.template.spec.as_ref()))?,
            Typed::ReplicaSet(o) => crate::cluster::versions::spec(&o.spec)
                .and_then(|s| s.template.as_ref())
                .map(|t| (t.metadata.as_ref(), t.spec.as_ref()))?,
            Typed::Job(o) => o
                .spec
                .as_ref()
                .map(|s| (s.template.metadata.as_ref(), s.template.spec.as_ref()))?,
            Typed::CronJob(o) => crate::cluster::versions::spec(&o.spec)
                .and_then(|s| s.job_template.spec.as_ref())
                .map(|s| (s.template.metadata.as_ref(), s.template.spec.as_ref()))?,
            Typed::Pod(o) => (Some(&o.metadata), o.spec.as_ref()),
            _ => return None,
        };
        Some(PodTemplate {
            owner: self,
            metadata: meta,
            spec: spec?,
        })
    }

    /// `true` for objects whose pods are meant to keep running: the workload
    /// controllers, and bare Pods that restart always and are not hooks (Jobs,
    /// CronJobs and run-once Pods end).
    pub fn is_long_running(&self) -> bool {
        match &self.typed {
            Typed::Deployment(_)
            | Typed::StatefulSet(_)
            | Typed::DaemonSet(_)
            | Typed::ReplicaSet(_) => true,
            Typed::Pod(pod) => {
                !self.is_hook()
                    && pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.restart_policy.as_deref())
                        .is_none_or(|r| r == "Always")
            }
            _ => false,
        }
    }

    /// `true` for Helm hook objects (`helm.sh/hook` annotation).
    pub fn is_hook(&self) -> bool {
        self.metadata()
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("helm.sh/hook"))
    }
}

/// The pod part of a workload.
#[derive(Debug, Clone, Copy)]
pub struct PodTemplate<'a> {
    /// The workload that owns it.
    pub owner: &'a ManifestObject,
    /// The template's metadata (labels, annotations).
    pub metadata: Option<&'a ObjectMeta>,
    /// The pod spec.
    pub spec: &'a PodSpec,
}

impl<'a> PodTemplate<'a> {
    /// The pod's labels.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.metadata
            .and_then(|m| m.labels.clone())
            .unwrap_or_default()
    }

    /// The value of `key` among the pod's or the owner's annotations.
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        let own = self
            .metadata
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(key));
        let owner = self
            .owner
            .metadata()
            .annotations
            .as_ref()
            .and_then(|a| a.get(key));
        own.or(owner).map(String::as_str)
    }

    /// Init containers then regular containers, with a flag for init.
    pub fn all_containers(&self) -> impl Iterator<Item = (&'a Container, bool)> {
        let spec = self.spec;
        spec.init_containers
            .iter()
            .flatten()
            .map(|c| (c, true))
            .chain(spec.containers.iter().map(|c| (c, false)))
    }

    /// A regular or init container by name.
    pub fn container(&self, name: &str) -> Option<&'a Container> {
        self.all_containers()
            .map(|(c, _)| c)
            .find(|c| c.name == name)
    }

    /// Ports of all regular containers.
    pub fn ports(&self) -> Vec<&'a ContainerPort> {
        self.spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .collect()
    }

    /// The pod's volumes.
    pub fn volumes(&self) -> &'a [Volume] {
        self.spec.volumes.as_deref().unwrap_or_default()
    }
}

/// Where an environment variable's value comes from, resolved inside the release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvValue {
    /// A literal value.
    Literal(String),
    /// A ConfigMap key; `value` is set when the ConfigMap is part of the release.
    ConfigMap {
        /// ConfigMap name.
        name: String,
        /// Key in it.
        key: String,
        /// The rendered value, if found.
        value: Option<String>,
    },
    /// A Secret key; `value` is set when the Secret is part of the release.
    Secret {
        /// Secret name.
        name: String,
        /// Key in it.
        key: String,
        /// The rendered value, if found.
        value: Option<String>,
    },
    /// A downward-API field or resource, shown as its path.
    Downward(String),
}

impl EnvValue {
    /// The value when known at render time.
    pub fn resolved(&self) -> Option<&str> {
        match self {
            EnvValue::Literal(v) => Some(v),
            EnvValue::ConfigMap { value, .. } | EnvValue::Secret { value, .. } => value.as_deref(),
            EnvValue::Downward(_) => None,
        }
    }
}

/// All objects of one render.
#[derive(Debug, Clone, Default)]
pub struct Manifests {
    objects: Vec<ManifestObject>,
}

impl Manifests {
    /// Parses `helm template` output: YAML documents separated by `---`, each
    /// preceded by a `# Source:` comment. Empty documents are skipped.
    ///
    /// # Errors
    /// A document that is not YAML, lacks `apiVersion`/`kind`, or does not fit its kind.
    pub fn parse(text: &str) -> Result<Self, ManifestError> {
        let mut objects = Vec::new();
        for (index, doc) in split_documents(text).into_iter().enumerate() {
            let source_template = doc
                .lines()
                .find_map(|l| l.strip_prefix("# Source: "))
                .unwrap_or("(unknown template)")
                .to_owned();
            let value: serde_json::Value =
                serde_yaml_ng::from_str(doc).map_err(|source| ManifestError::Yaml {
                    index,
                    source_template: source_template.clone(),
                    source,
                })?;
            if value.is_null() {
                continue;
            }
            let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
            let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
                return Err(ManifestError::Schema {
                    kind: "object".into(),
                    source_template,
                    source: serde::de::Error::custom("apiVersion and kind are required"),
                });
            };
            let raw = value.clone();
            let typed = Typed::parse(value, &api_version, &kind).map_err(|source| {
                ManifestError::Schema {
                    kind: kind.clone(),
                    source_template: source_template.clone(),
                    source,
                }
            })?;
            objects.push(ManifestObject {
                source: source_template,
                api_version,
                kind,
                typed,
                raw,
            });
        }
        Ok(Self { objects })
    }

    /// Every object, in render order.
    pub fn objects(&self) -> &[ManifestObject] {
        &self.objects
    }

    /// Every object of kind `K`.
    pub fn all<K: KnownKind + 'static>(&self) -> impl Iterator<Item = &K> {
        self.objects.iter().filter_map(ManifestObject::as_kind::<K>)
    }

    /// The `K` named `name`.
    ///
    /// # Errors
    /// [`ManifestError::Missing`] naming the objects of that kind that do exist.
    pub fn get<K: KnownKind>(&self, name: &str) -> Result<&K, ManifestError> {
        self.find(K::KIND, name)
            .and_then(ManifestObject::as_kind::<K>)
            .ok_or_else(|| self.missing(K::KIND, name))
    }

    /// The object of `kind` named `name`, of any kind (CRDs included).
    pub fn find(&self, kind: &str, name: &str) -> Option<&ManifestObject> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name() == name)
    }

    /// Objects whose label `key` has `value`.
    pub fn with_label(&self, key: &str, value: &str) -> Vec<&ManifestObject> {
        self.objects
            .iter()
            .filter(|o| o.labels().get(key).is_some_and(|v| v == value))
            .collect()
    }

    /// The pod templates of every workload (and bare Pod).
    pub fn pod_templates(&self) -> Vec<PodTemplate<'_>> {
        self.objects
            .iter()
            .filter_map(ManifestObject::pod_template)
            .collect()
    }

    /// The pod template of the workload `kind/name`.
    ///
    /// # Errors
    /// No such workload.
    pub fn pod_template(&self, kind: &str, name: &str) -> Result<PodTemplate<'_>, ManifestError> {
        self.find(kind, name)
            .and_then(ManifestObject::pod_template)
            .ok_or_else(|| self.missing(kind, name))
    }

    /// Every image of every container and init container, sorted, once each.
    pub fn images(&self) -> Vec<String> {
        let mut images: Vec<String> = self
            .pod_templates()
            .iter()
            .flat_map(|p| {
                p.all_containers()
                    .filter_map(|(c, _)| c.image.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        images.sort();
        images.dedup();
        images
    }

    /// The rendered data of the ConfigMap `name`.
    ///
    /// # Errors
    /// No such ConfigMap.
    pub fn config_map_data(&self, name: &str) -> Result<BTreeMap<String, String>, ManifestError> {
        Ok(self
            .get::<ConfigMap>(name)?
            .data
            .clone()
            .unwrap_or_default())
    }

    /// The data of the Secret `name`, decoded (`data` and `stringData` merged).
    ///
    /// # Errors
    /// No such Secret.
    pub fn secret_data(&self, name: &str) -> Result<BTreeMap<String, String>, ManifestError> {
        let secret = self.get::<Secret>(name)?;
        let mut data: BTreeMap<String, String> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        data.extend(secret.string_data.clone().unwrap_or_default());
        Ok(data)
    }

    /// The environment of `container`, `envFrom` first, with ConfigMap and Secret
    /// references resolved against the objects of this render.
    pub fn env(&self, container: &Container) -> Vec<(String, EnvValue)> {
        let mut env = Vec::new();
        for from in container.env_from.iter().flatten() {
            let prefix = from.prefix.clone().unwrap_or_default();
            if let Some(name) = from.config_map_ref.as_ref().map(|r| r.name.clone()) {
                for (key, value) in self.config_map_data(&name).unwrap_or_default() {
                    env.push((
                        format!("{prefix}{key}"),
                        EnvValue::ConfigMap {
                            name: name.clone(),
                            key,
                            value: Some(value),
                        },
                    ));
                }
            }
            if let Some(name) = from.secret_ref.as_ref().map(|r| r.name.clone()) {
                for (key, value) in self.secret_data(&name).unwrap_or_default() {
                    env.push((
                        format!("{prefix}{key}"),
                        EnvValue::Secret {
                            name: name.clone(),
                            key,
                            value: Some(value),
                        },
                    ));
                }
            }
        }
        env.extend(
            container
                .env
                .iter()
                .flatten()
                .map(|var| (var.name.clone(), self.env_value(var))),
        );
        env
    }

    /// The value of the variable `name` of `container`, resolved where possible.
    pub fn env_var(&self, container: &Container, name: &str) -> Option<EnvValue> {
        self.env(container)
            .into_iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    fn env_value(&self, var: &EnvVar) -> EnvValue {
        let Some(from) = &var.value_from else {
            return EnvValue::Literal(var.value.clone().unwrap_or_default());
        };
        if let Some(r) = &from.config_map_key_ref {
            let value = self
                .config_map_data(&r.name)
                .ok()
                .and_then(|d| d.get(&r.key).cloned());
            return EnvValue::ConfigMap {
                name: r.name.clone(),
                key: r.key.clone(),
                value,
            };
        }
        if let Some(r) = &from.secret_key_ref {
            let value = self
                .secret_data(&r.name)
                .ok()
                .and_then(|d| d.get(&r.key).cloned());
            return EnvValue::Secret {
                name: r.name.clone(),
                key: r.key.clone(),
                value,
            };
        }
        let path = from
            .field_ref
            .as_ref()
            .map(|f| f.field_path.clone())
            .or_else(|| from.resource_field_ref.as_ref().map(|r| r.resource.clone()))
            .unwrap_or_default();
        EnvValue::Downward(path)
    }

    fn missing(&self, kind: &str, name: &str) -> ManifestError {
        let present: Vec<&str> = self
            .objects
            .iter()
            .filter(|o| o.kind == kind)
            .map(ManifestObject::name)
            .collect();
        ManifestError::Missing {
            kind: kind.to_owned(),
            name: name.to_owned(),
            present: if present.is_empty() {
                "none".into()
            } else {
                present.join(", ")
            },
        }
    }
}

/// Splits on `---` separator lines (with or without trailing text).
fn split_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_end();
        if trimmed == "---" || trimmed.starts_with("--- ") {
            docs.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    docs.push(&text[start..]);
    docs.into_iter().filter(|d| !d.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = r#"---
# Source: demo/templates/config.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-config
  labels: {app.kubernetes.io/name: demo}
data:
  MODE: fast
---
# Source: demo/templates/secret.yaml
apiVersion: v1
kind: Secret
metadata: {name: demo-secret}
stringData: {password: hunter2}
---
# Source: demo/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata: {name: demo}
spec:
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec:
      initContainers: [{name: init, image: "busybox:1.36"}]
      containers:
        - name: web
          image: localhost/demo:1.0.0
          ports: [{name: http, containerPort: 8080}]
          envFrom: [{configMapRef: {name: demo-config}}]
          env:
            - {name: LITERAL, value: "x"}
            - name: PASSWORD
              valueFrom: {secretKeyRef: {name: demo-secret, key: password}}
            - name: NODE
              valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
---
# Source: demo/templates/crd-object.yaml
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec: {size: 3}
"#;

    #[test]
    fn objects_are_typed_with_their_source() {
        let m = Manifests::parse(RENDERED).unwrap();
        assert_eq!(m.objects().len(), 4);
        let widget = m.find("Widget", "w").unwrap();
        assert!(matches!(widget.typed, Typed::Dynamic(_)));
        assert_eq!(widget.source, "demo/templates/crd-object.yaml");
        assert!(m.get::<Deployment>("demo").is_ok());
        let err = m.get::<Deployment>("other").unwrap_err().to_string();
        assert_eq!(
            err,
            "no Deployment named \"other\" in the rendered chart (present: demo)"
        );
    }

    #[test]
    fn env_is_resolved_from_config_maps_and_secrets() {
        let m = Manifests::parse(RENDERED).unwrap();
        let pod = m.pod_template("Deployment", "demo").unwrap();
        let web = pod.container("web").unwrap();
        assert_eq!(m.env_var(web, "MODE").unwrap().resolved(), Some("fast"));
        assert_eq!(
            m.env_var(web, "PASSWORD").unwrap().resolved(),
            Some("hunter2")
        );
        assert_eq!(m.env_var(web, "LITERAL").unwrap().resolved(), Some("x"));
        assert_eq!(
            m.env_var(web, "NODE").unwrap(),
            EnvValue::Downward("spec.nodeName".into())
        );
        assert_eq!(m.images(), ["busybox:1.36", "localhost/demo:1.0.0"]);
        assert_eq!(pod.ports()[0].container_port, 8080);
    }

    #[test]
    fn broken_documents_name_their_template() {
        let bad_yaml = "# Source: demo/templates/x.yaml\nkind: [unclosed\n";
        let err = Manifests::parse(bad_yaml).unwrap_err().to_string();
        assert_eq!(
            err,
            "document 0 from demo/templates/x.yaml is not valid YAML"
        );
        let bad_schema = "# Source: demo/templates/d.yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: many}\n";
        let err = Manifests::parse(bad_schema).unwrap_err().to_string();
        assert_eq!(
            err,
            "Deployment from demo/templates/d.yaml does not match the Deployment schema"
        );
    }
}
