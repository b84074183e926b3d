//! The cluster's addons, applied at `up` with server-side apply: cluster DNS
//! (no DNS server for Kubernetes is installable here, so the project ships
//! `cluster-dns`) and the `local-path` storage provisioner with a default
//! StorageClass (so StatefulSets with claims come up).

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::Scope;

use crate::images::tag;
use crate::layout::{Layout, DNS_IP};
use cluster_addons::dns;

/// Namespace of the addons.
pub const NAMESPACE: &str = "kube-system";
/// Name of the provisioner, as in StorageClass `provisioner`.
pub const PROVISIONER: &str = "testware.io/local-path";
/// The default StorageClass.
pub const STORAGE_CLASS: &str = "local-path";
/// Port the DNS server listens on inside its pod (the Service maps 53 to it).
pub const DNS_POD_PORT: u16 = 5353;

/// The addon manifests for this cluster.
pub fn manifests(layout: &Layout) -> String {
    let version = tag();
    let volumes = layout.volumes().display().to_string();
    format!(
        r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: cluster-dns, namespace: {NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "testware:cluster-dns"}}
rules:
  - apiGroups: [""]
    resources: [services, endpoints]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: "testware:cluster-dns"}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "testware:cluster-dns"}}
subjects: [{{kind: ServiceAccount, name: cluster-dns, namespace: {NAMESPACE}}}]
---
apiVersion: v1
kind: Service
metadata:
  name: cluster-dns
  namespace: {NAMESPACE}
  labels: {{app.kubernetes.io/name: cluster-dns, app.kubernetes.io/part-of: testware}}
spec:
  clusterIP: {DNS_IP}
  selector: {{app.kubernetes.io/name: cluster-dns}}
  ports:
    - {{name: dns, port: 53, targetPort: {DNS_POD_PORT}, protocol: UDP}}
    - {{name: dns-tcp, port: 53, targetPort: {DNS_POD_PORT}, protocol: TCP}}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cluster-dns
  namespace: {NAMESPACE}
  labels: {{app.kubernetes.io/name: cluster-dns, app.kubernetes.io/part-of: testware}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app.kubernetes.io/name: cluster-dns}}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: cluster-dns}}
    spec:
      serviceAccountName: cluster-dns
      dnsPolicy: Default
      priorityClassName: system-cluster-critical
      terminationGracePeriodSeconds: 1
      securityContext: {{runAsNonRoot: true, runAsUser: 65532}}
      containers:
        - name: dns
          image: localhost/cluster-dns:{version}
          imagePullPolicy: IfNotPresent
          args: ["--listen", "0.0.0.0:{DNS_POD_PORT}", "--health", "0.0.0.0:8080", "--domain", "cluster.local"]
          ports:
            - {{name: dns, containerPort: {DNS_POD_PORT}, protocol: UDP}}
            - {{name: dns-tcp, containerPort: {DNS_POD_PORT}, protocol: TCP}}
            - {{name: health, containerPort: 8080}}
          readinessProbe: {{httpGet: {{path: /healthz, port: health}}, periodSeconds: 1}}
          livenessProbe: {{httpGet: {{path: /healthz, port: health}}, periodSeconds: 10}}
          resources:
            requests: {{cpu: 10m, memory: 16Mi}}
            limits: {{cpu: 500m, memory: 64Mi}}
          securityContext: {{allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {{drop: [ALL]}}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: local-path-provisioner, namespace: {NAMESPACE}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: "testware:local-path-provisioner"}}
rules:
  - apiGroups: [""]
    resources: [persistentvolumeclaims]
    verbs: [get, list, watch, update, patch]
  - apiGroups: [""]
    resources: [persistentvolumes]
    verbs: [get, list, watch, create, delete]
  - apiGroups: [storage.k8s.io]
    resources: [storageclasses]
    verbs: [get, list, watch]
  - apiGroups: [""]
    resources: [events]
    verbs: [create, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: "testware:local-path-provisioner"}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "testware:local-path-provisioner"}}
subjects: [{{kind: ServiceAccount, name: local-path-provisioner, namespace: {NAMESPACE}}}]
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: {STORAGE_CLASS}
  annotations: {{storageclass.kubernetes.io/is-default-class: "true"}}
provisioner: {PROVISIONER}
volumeBindingMode: WaitForFirstConsumer
reclaimPolicy: Delete
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: local-path-provisioner
  namespace: {NAMESPACE}
  labels: {{app.kubernetes.io/name: local-path-provisioner, app.kubernetes.io/part-of: testware}}
spec:
  replicas: 1
  strategy: {{type: Recreate}}
  selector: {{matchLabels: {{app.kubernetes.io/name: local-path-provisioner}}}}
  template:
    metadata:
      labels: {{app.kubernetes.io/name: local-path-provisioner}}
    spec:
      serviceAccountName: local-path-provisioner
      priorityClassName: system-cluster-critical
      terminationGracePeriodSeconds: 1
      containers:
        - name: provisioner
          image: localhost/local-path-provisioner:{version}
          imagePullPolicy: IfNotPresent
          args: ["--base-dir", "{volumes}", "--provisioner", "{PROVISIONER}", "--health", "0.0.0.0:8080"]
          env:
            - name: NODE_NAME
              valueFrom: {{fieldRef: {{fieldPath: spec.nodeName}}}}
          ports: [{{name: health, containerPort: 8080}}]
          readinessProbe: {{httpGet: {{path: /healthz, port: health}}, periodSeconds: 1}}
          livenessProbe: {{httpGet: {{path: /healthz, port: health}}, periodSeconds: 10}}
          resources:
            requests: {{cpu: 10m, memory: 16Mi}}
            limits: {{cpu: 500m, memory: 64Mi}}
          # Creates and removes volume directories on the host, owned by root.
          securityContext: {{runAsUser: 0, allowPrivilegeEscalation: false, capabilities: {{drop: [ALL], add: [CHOWN, DAC_OVERRIDE, FOWNER]}}}}
          volumeMounts: [{{name: volumes, mountPath: "{volumes}"}}]
      volumes:
        - name: volumes
          hostPath: {{path: "{volumes}", type: DirectoryOrCreate}}
"#
    )
}

/// Applies every manifest in `yaml` with server-side apply (field manager `testware`).
///
/// # Errors
/// A document does not parse, names an unknown kind, or is refused by the API server.
pub async fn apply(client: &kube::Client, yaml: &str) -> anyhow::Result<()> {
    for doc in yaml.split("\n---\n").filter(|d| !d.trim().is_empty()) {
        let object: DynamicObject =
            serde_yaml_ng::from_str(doc).context("parsing an addon manifest")?;
        let types = object
            .types
            .clone()
            .context("an addon manifest lacks apiVersion/kind")?;
        let gvk = GroupVersionKind::try_from(&types)?;
        let name = object
            .metadata
            .name
            .clone()
            .context("an addon manifest lacks a name")?;
        let (resource, caps) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .with_context(|| format!("resolving {}", types.kind))?;
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                object.metadata.namespace.as_deref().unwrap_or("default"),
                &resource,
            ),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        api.patch(
            &name,
            &PatchParams::apply("testware").force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {}/{name}", types.kind))?;
    }
    Ok(())
}

/// Applies the addons.
///
/// # Errors
/// See [`apply`].
pub async fn install(client: &kube::Client, layout: &Layout) -> anyhow::Result<()> {
    apply(client, &manifests(layout)).await
}

/// Each addon's state: its Deployment available, and DNS answering from the host.
pub async fn status(client: &kube::Client) -> Vec<(&'static str, Result<String, String>)> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let mut out = Vec::new();
    for name in ["cluster-dns", "local-path-provisioner"] {
        let state = match deployments.get_opt(name).await {
            Ok(Some(d)) => {
                let available = d
                    .status
                    .as_ref()
                    .and_then(|s| s.available_replicas)
                    .unwrap_or(0);
                if available > 0 {
                    Ok(format!("{available} replica(s) available"))
                } else {
                    Err(format!(
                        "no replica available ({})",
                        describe_conditions(&d)
                    ))
                }
            }
            Ok(None) => Err("not installed".into()),
            Err(e) => Err(format!("cannot read its Deployment: {e}")),
        };
        out.push((name, state));
    }
    let lookup = dns::query_a(
        std::net::SocketAddr::new(DNS_IP, 53),
        "kubernetes.default.svc.cluster.local.",
        Duration::from_secs(2),
    )
    .await;
    out.push((
        "dns answers",
        match lookup {
            Ok(ips) if !ips.is_empty() => {
                Ok(format!("kubernetes.default.svc.cluster.local -> {ips:?}"))
            }
            Ok(_) => Err("kubernetes.default.svc.cluster.local has no address".into()),
            Err(e) => Err(format!("query to {DNS_IP}:53 failed: {e:#}")),
        },
    ));
    out
}

fn describe_conditions(d: &Deployment) -> String {
    d.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={}: {}",
                        c.type_,
                        c.status,
                        c.message.clone().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_else(|| "no conditions yet".into())
}

/// Waits until every addon serves.
///
/// # Errors
/// Not all serve within two minutes; the message says which and why.
pub async fn wait_serving(client: &kube::Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let states = status(client).await;
        let failing: Vec<String> = states
            .iter()
            .filter_map(|(n, s)| s.as_ref().err().map(|e| format!("{n}: {e}")))
            .collect();
        if failing.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("addons not serving after 2 min: {}", failing.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
