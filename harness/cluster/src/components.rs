//! The cluster's components: their configuration files, command lines and the
//! health check that says each one is up. Order matters: [`start_order`].

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::binaries::Binaries;
use crate::layout::{
    apiserver_url, Layout, APISERVER_PORT, BRIDGE, DNS_IP, ETCD_CLIENT_PORT, ETCD_PEER_PORT,
    NODE_IP, NODE_NAME, POD_CIDR, SERVICE_CIDR,
};
use crate::pki::{Identity, Pki};
use crate::process::Daemon;
use crate::shape::{NodeSpec, Shape};

/// Client identities, one kubeconfig each.
pub const ADMIN: Identity = Identity {
    file: "admin",
    cn: "testware-admin",
    org: Some("system:masters"),
};
/// The controller manager's identity.
pub const CONTROLLER_MANAGER: Identity = Identity {
    file: "controller-manager",
    cn: "system:kube-controller-manager",
    org: None,
};
/// The scheduler's identity.
pub const SCHEDULER: Identity = Identity {
    file: "scheduler",
    cn: "system:kube-scheduler",
    org: None,
};
/// The kubelet's identity (Node authorizer: `system:node:<name>` in `system:nodes`).
pub const KUBELET: Identity = Identity {
    file: "kubelet-client",
    cn: "system:node:testware",
    org: Some("system:nodes"),
};
/// kube-proxy's identity.
pub const KUBE_PROXY: Identity = Identity {
    file: "kube-proxy",
    cn: "system:kube-proxy",
    org: None,
};
/// The API server's identity towards kubelets.
pub const APISERVER_KUBELET: Identity = Identity {
    file: "apiserver-kubelet-client",
    cn: "kube-apiserver-kubelet-client",
    org: Some("system:masters"),
};

/// The API server's identity towards etcd (etcd requires client certificates).
pub const ETCD_CLIENT: Identity = Identity {
    file: "apiserver-etcd-client",
    cn: "kube-apiserver-etcd-client",
    org: None,
};

/// All client identities the PKI issues.
pub const IDENTITIES: [Identity; 7] = [
    ADMIN,
    CONTROLLER_MANAGER,
    SCHEDULER,
    KUBELET,
    KUBE_PROXY,
    APISERVER_KUBELET,
    ETCD_CLIENT,
];

/// How a component shows it is healthy.
#[derive(Debug, Clone)]
pub enum Health {
    /// Plain HTTP GET on loopback answering 200 with this body prefix.
    Http {
        /// `host:port`.
        addr: String,
        /// The path.
        path: &'static str,
        /// Expected start of the body.
        body: &'static str,
    },
    /// HTTPS GET verified with the cluster's CA, with the client certificate of
    /// the kubeconfig `kubeconfigs/<identity>.conf`, answering 200 with this body prefix.
    Https {
        /// `https://host:port`.
        url: String,
        /// File stem of the kubeconfig whose CA and client certificate to use.
        identity: &'static str,
        /// The path.
        path: &'static str,
        /// Expected start of the body.
        body: &'static str,
    },
    /// The API server's `/readyz`, asked with the admin credentials.
    ApiServer,
    /// containerd answers on its socket (`ctr version`).
    Containerd {
        /// The socket.
        socket: PathBuf,
    },
    /// Only that the process runs (components without a plain-HTTP health port in newer releases).
    Alive,
}

/// A component: the daemon, its health check and the ports it must own.
#[derive(Debug, Clone)]
pub struct Component {
    /// The daemon.
    pub daemon: Daemon,
    /// Its health check.
    pub health: Health,
    /// `(address, what)` pairs that must be free before it starts.
    pub ports: Vec<(String, &'static str)>,
}

/// The local image used as every pod's sandbox.
pub fn pause_image() -> String {
    format!("localhost/testware-pause:{}", env!("CARGO_PKG_VERSION"))
}

/// Free disk below which the kubelet taints the node `disk-pressure` and evicts pods.
pub const EVICTION_FLOOR: &str = "512Mi";

/// Free disk `up` asks for: images, pod data and the logs of a test run, well above
/// [`EVICTION_FLOOR`].
pub const MIN_FREE_DISK: u64 = 3 << 30;

/// Writes `text` to `path` with `mode`, creating its directory.
pub(crate) fn write_file(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes every configuration file and kubeconfig the components read, those of
/// the nodes after the first under their own directories.
///
/// # Errors
/// A file cannot be written, or the PKI cannot be read.
pub fn write_configs(
    layout: &Layout,
    pki: &Pki,
    shape: &Shape,
    bins: &Binaries,
) -> anyhow::Result<()> {
    let write_mode = |rel: &str, text: &str, mode: u32| write_file(&layout.path(rel), text, mode);
    let write = |rel: &str, text: &str| write_mode(rel, text, 0o644);
    // Kubeconfigs embed private keys: readable by root only.
    for id in [ADMIN, CONTROLLER_MANAGER, SCHEDULER, KUBELET, KUBE_PROXY] {
        write_mode(
            &format!("kubeconfigs/{}.conf", id.file),
            &pki.kubeconfig(&id, &apiserver_url())?,
            0o600,
        )?;
    }
    write_mode(
        &format!("kubeconfigs/{}.conf", ETCD_CLIENT.file),
        &pki.kubeconfig(
            &ETCD_CLIENT,
            &format!("https://127.0.0.1:{ETCD_CLIENT_PORT}"),
        )?,
        0o600,
    )?;
    let first = shape.first();
    write("containerd/config.toml", &containerd_config(&layout.root))?;
    write(
        "cni/net.d/10-testware.conflist",
        &cni_config(&layout.root, &shape.pod_cidr(first)),
    )?;
    write(
        "kubelet/config.yaml",
        &kubelet_config(
            first,
            &layout.pki(),
            "kubelet",
            shape.is_multi_node(),
            bins.minor,
            &layout.containerd_socket(),
        ),
    )?;
    for node in shape.extra() {
        let dir = layout.node_dir(&node.name);
        write_file(
            &dir.join("kubeconfigs/kubelet-client.conf"),
            &pki.kubeconfig_of(
                &format!("kubelet-client-{}", node.name),
                &format!("system:node:{}", node.name),
                &apiserver_url(),
            )?,
            0o600,
        )?;
        write_file(
            &dir.join("containerd/config.toml"),
            &containerd_config(&dir),
            0o644,
        )?;
        write_file(
            &dir.join("cni/net.d/10-testware.conflist"),
            &cni_config(&dir, &shape.pod_cidr(node)),
            0o644,
        )?;
        write_file(
            &dir.join("kubelet/config.yaml"),
            &kubelet_config(
                node,
                &layout.pki(),
                &format!("kubelet-{}", node.name),
                true,
                bins.minor,
                &dir.join("run/containerd.sock"),
            ),
            0o644,
        )?;
    }
    Ok(())
}

/// containerd's configuration for a node whose state is under `root`.
fn containerd_config(root: &Path) -> String {
    let sock = root.join("run/containerd.sock");
    let root = root.display();
    format!(
        r#"version = 2
root = "{root}/containerd/root"
state = "{root}/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{sock}"

[ttrpc]
  address = "{root}/run/containerd.ttrpc.sock"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{root}/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # Negative oom_score_adj is refused on these machines, even for root.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  max_container_log_line_size = 65536

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"

    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # crun refuses the hybrid cgroup layout; runc works.
        BinaryName = "/usr/sbin/runc"
        SystemdCgroup = false

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{root}/cni/net.d"
"#,
        sock = sock.display(),
        pause = pause_image(),
    )
}

/// The CNI bridge of a node whose state is under `root`, with pod range `subnet`.
fn cni_config(root: &Path, subnet: &str) -> String {
    let root = root.display();
    format!(
        r#"{{
  "cniVersion": "0.4.0",
  "name": "testware",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "{BRIDGE}",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {{
        "type": "host-local",
        "dataDir": "{root}/cni/networks",
        "ranges": [[{{"subnet": "{subnet}"}}]],
        "routes": [{{"dst": "0.0.0.0/0"}}]
      }}
    }},
    {{"type": "portmap", "capabilities": {{"portMappings": true}}}},
    {{"type": "loopback"}}
  ]
}}
"#
    )
}

/// The kubelet's configuration on `node`, serving with the PKI's `<serving>.crt`,
/// for a kubelet of release 1.`minor`, talking to the runtime at `socket`.
/// With `short_leases` (several nodes) it renews its lease every 5 s, so a lost
/// node is noticed within the controller manager's 16 s grace.
fn kubelet_config(
    node: &NodeSpec,
    pki_dir: &Path,
    serving: &str,
    short_leases: bool,
    minor: u32,
    socket: &Path,
) -> String {
    let pki_dir = pki_dir.display();
    let ip = node.ip();
    // The first node's health port is on loopback; the others' on their own
    // address, where this machine (not their loopback) can ask it.
    let healthz = if node.is_first() {
        "127.0.0.1".to_owned()
    } else {
        ip.to_string()
    };
    let lease = if short_leases {
        "nodeLeaseDurationSeconds: 20\n"
    } else {
        ""
    };
    // From 1.35 the kubelet refuses cgroup v1 hosts unless told otherwise
    // (KEP-5573); these machines are cgroup v1 (hybrid). Honoured through 1.37.
    let cgroup_v1 = if minor >= 35 {
        "failCgroupV1: false\n"
    } else {
        ""
    };
    // The 1.34 kubelet resizes pods in place (beta, on by default) through
    // their pod cgroups, which `cgroupsPerQOS: false` leaves out: it crashed
    // with a nil pointer in doPodResizeAction at the first pod it judged
    // resized. GA (and no longer optional) from 1.35, where it does not crash.
    let resize = if minor < 35 {
        "featureGates: {InPlacePodVerticalScaling: false}\n"
    } else {
        ""
    };
    // A flag before 1.27 (deprecated since).
    let runtime = if minor >= 27 {
        format!(
            "containerRuntimeEndpoint: \"unix://{}\"\n",
            socket.display()
        )
    } else {
        String::new()
    };
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: "{ip}"
port: 10250
readOnlyPort: 0
healthzBindAddress: {healthz}
healthzPort: 10248
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: "{pki_dir}/ca.crt"}}
authorization:
  mode: Webhook
tlsCertFile: "{pki_dir}/{serving}.crt"
tlsPrivateKeyFile: "{pki_dir}/{serving}.key"
# cgroups v1 with a v2 hierarchy mounted too: cgroupfs, no QoS cgroups.
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
clusterDNS: ["{DNS_IP}"]
clusterDomain: cluster.local
serializeImagePulls: false
# No image garbage collection (100 turns it off): without a registry an image
# removed cannot be pulled back, and a disk passing 99% (a build beside the
# cluster) once took the pause image and every pod with it.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 95
# Absolute floors, not shares: 1% of a large shared disk is gigabytes that builds
# beside the cluster may well use (kind sets these to 0% for the same reason).
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "{EVICTION_FLOOR}"
  nodefs.inodesFree: "1%"
  imagefs.available: "{EVICTION_FLOOR}"
containerLogMaxSize: 10Mi
# The node's conditions are looked at every second (default 10 s: a new node
# stays NotReady, and its first pods unscheduled, that long), but posted only
# when they change or once a minute.
nodeStatusUpdateFrequency: 1s
nodeStatusReportFrequency: 1m
rotateCertificates: false
{lease}{cgroup_v1}{runtime}{resize}"#
    )
}

/// The components in start order (reverse for stopping).
pub fn start_order(layout: &Layout, bins: &Binaries, shape: &Shape) -> Vec<Component> {
    let root = &layout.root;
    let p = |rel: &str| root.join(rel).display().to_string();
    let pki = |name: &str| layout.pki().join(name).display().to_string();
    let kubeconfig = |file: &str| p(&format!("kubeconfigs/{file}.conf"));
    let arg = |k: &str, v: &str| format!("--{k}={v}");
    let loopback = |port: u16| format!("127.0.0.1:{port}");
    // 1.24 removed the insecure ports; 1.27 removed the kubelet's runtime flags.
    let insecure_ports = bins.minor < 24;
    let insecure = |args: Vec<String>| if insecure_ports { args } else { Vec::new() };
    let short_eviction = shape.is_multi_node();

    let etcd = Component {
        daemon: Daemon {
            name: "etcd",
            prefix: Vec::new(),
            program: bins.etcd.clone(),
            args: vec![
                arg("name", NODE_NAME),
                arg("data-dir", &p("etcd")),
                arg(
                    "listen-client-urls",
                    &format!("https://{}", loopback(ETCD_CLIENT_PORT)),
                ),
                arg(
                    "advertise-client-urls",
                    &format!("https://{}", loopback(ETCD_CLIENT_PORT)),
                ),
                arg(
                    "listen-peer-urls",
                    &format!("https://{}", loopback(ETCD_PEER_PORT)),
                ),
                arg(
                    "initial-advertise-peer-urls",
                    &format!("https://{}", loopback(ETCD_PEER_PORT)),
                ),
                arg(
                    "initial-cluster",
                    &format!("{NODE_NAME}=https://{}", loopback(ETCD_PEER_PORT)),
                ),
                // TLS with client certificates of the cluster's CA on both ports:
                // no other process on the machine can read or write the cluster.
                arg("cert-file", &pki("etcd-server.crt")),
                arg("key-file", &pki("etcd-server.key")),
                arg("client-cert-auth", "true"),
                arg("trusted-ca-file", &pki("ca.crt")),
                arg("peer-cert-file", &pki("etcd-server.crt")),
                arg("peer-key-file", &pki("etcd-server.key")),
                arg("peer-client-cert-auth", "true"),
                arg("peer-trusted-ca-file", &pki("ca.crt")),
                arg("auto-compaction-retention", "1"),
                arg("quota-backend-bytes", &(2u64 << 30).to_string()),
                arg("log-level", "warn"),
            ],
        },
        health: Health::Https {
            url: format!("https://{}", loopback(ETCD_CLIENT_PORT)),
            identity: ETCD_CLIENT.file,
            path: "/health",
            body: "{\"health\":\"true\"",
        },
        ports: vec![
            (loopback(ETCD_CLIENT_PORT), "etcd client"),
            (loopback(ETCD_PEER_PORT), "etcd peer"),
        ],
    };

    let apiserver = Component {
        daemon: Daemon {
            name: "kube-apiserver",
            prefix: Vec::new(),
            program: bins.kube("kube-apiserver"),
            args: vec![
                arg(
                    "etcd-servers",
                    &format!("https://{}", loopback(ETCD_CLIENT_PORT)),
                ),
                arg("etcd-cafile", &pki("ca.crt")),
                arg("etcd-certfile", &pki("apiserver-etcd-client.crt")),
                arg("etcd-keyfile", &pki("apiserver-etcd-client.key")),
                arg("bind-address", &NODE_IP.to_string()),
                arg("advertise-address", &NODE_IP.to_string()),
                arg("secure-port", &APISERVER_PORT.to_string()),
                arg("anonymous-auth", "false"),
                arg("client-ca-file", &pki("ca.crt")),
                arg("tls-cert-file", &pki("apiserver.crt")),
                arg("tls-private-key-file", &pki("apiserver.key")),
                arg(
                    "kubelet-client-certificate",
                    &pki("apiserver-kubelet-client.crt"),
                ),
                arg("kubelet-client-key", &pki("apiserver-kubelet-client.key")),
                arg("kubelet-certificate-authority", &pki("ca.crt")),
                // The node's hostname does not resolve; dial kubelets by address.
                arg("kubelet-preferred-address-types", "InternalIP,Hostname"),
                arg("service-account-key-file", &pki("sa.pub")),
                arg("service-account-signing-key-file", &pki("sa.key")),
                arg(
                    "service-account-issuer",
                    "https://kubernetes.default.svc.cluster.local",
                ),
                arg("service-cluster-ip-range", SERVICE_CIDR),
                arg("authorization-mode", "Node,RBAC"),
                arg("enable-admission-plugins", "NodeRestriction"),
                arg("allow-privileged", "true"),
                arg("profiling", "false"),
                arg("event-ttl", "1h"),
                arg("v", "1"),
            ]
            .into_iter()
            .chain(insecure(vec![arg("insecure-port", "0")]))
            // Several nodes: pods of a lost node are evicted 10 s after it is
            // marked NotReady or unreachable (default 300 s).
            .chain(
                short_eviction
                    .then(|| {
                        [
                            arg("default-not-ready-toleration-seconds", "10"),
                            arg("default-unreachable-toleration-seconds", "10"),
                        ]
                    })
                    .into_iter()
                    .flatten(),
            )
            .collect(),
        },
        health: Health::ApiServer,
        ports: vec![(format!("{NODE_IP}:{APISERVER_PORT}"), "kube-apiserver")],
    };

    let controller_manager = Component {
        daemon: Daemon {
            name: "kube-controller-manager",
            prefix: Vec::new(),
            program: bins.kube("kube-controller-manager"),
            args: vec![
                arg("kubeconfig", &kubeconfig("controller-manager")),
                arg(
                    "authentication-kubeconfig",
                    &kubeconfig("controller-manager"),
                ),
                arg(
                    "authorization-kubeconfig",
                    &kubeconfig("controller-manager"),
                ),
                arg("bind-address", "127.0.0.1"),
                arg("secure-port", "10257"),
                arg("tls-cert-file", &pki("controller-manager-serving.crt")),
                arg(
                    "tls-private-key-file",
                    &pki("controller-manager-serving.key"),
                ),
                arg("cluster-signing-cert-file", &pki("ca.crt")),
                arg("cluster-signing-key-file", &pki("ca.key")),
                arg("root-ca-file", &pki("ca.crt")),
                arg("service-account-private-key-file", &pki("sa.key")),
                arg("use-service-account-credentials", "true"),
                // Every controller asks for its own service-account token at
                // start: under the client's default limit (20 requests/s, burst
                // 30) that alone took 5 s of a 14 s warm `up`, before any
                // controller ran. A throughput setting, not a behaviour one.
                arg("kube-api-qps", "100"),
                arg("kube-api-burst", "200"),
                arg("leader-elect", "false"),
                arg("terminated-pod-gc-threshold", "50"),
                arg("profiling", "false"),
                arg("v", "1"),
            ]
            .into_iter()
            // The insecure port (10252, on every interface) is off.
            .chain(insecure(vec![arg("port", "0")]))
            // Several nodes: a node whose lease is not renewed for 16 s (default
            // 40 s) is marked NotReady; its kubelet renews every 5 s.
            .chain(
                short_eviction
                    .then(|| {
                        [
                            arg("node-monitor-period", "2s"),
                            arg("node-monitor-grace-period", "16s"),
                        ]
                    })
                    .into_iter()
                    .flatten(),
            )
            .collect(),
        },
        health: Health::Https {
            url: format!("https://{}", loopback(10257)),
            identity: CONTROLLER_MANAGER.file,
            path: "/healthz",
            body: "ok",
        },
        ports: vec![(loopback(10257), "kube-controller-manager")],
    };

    let scheduler = Component {
        daemon: Daemon {
            name: "kube-scheduler",
            prefix: Vec::new(),
            program: bins.kube("kube-scheduler"),
            args: vec![
                arg("kubeconfig", &kubeconfig("scheduler")),
                arg("authentication-kubeconfig", &kubeconfig("scheduler")),
                arg("authorization-kubeconfig", &kubeconfig("scheduler")),
                arg("bind-address", "127.0.0.1"),
                arg("secure-port", "10259"),
                arg("tls-cert-file", &pki("scheduler-serving.crt")),
                arg("tls-private-key-file", &pki("scheduler-serving.key")),
                arg("leader-elect", "false"),
                arg("profiling", "false"),
                arg("v", "1"),
            ]
            .into_iter()
            // The insecure port (10251, on every interface) is off.
            .chain(insecure(vec![arg("port", "0")]))
            .collect(),
        },
        health: Health::Https {
            url: format!("https://{}", loopback(10259)),
            identity: SCHEDULER.file,
            path: "/healthz",
            body: "ok",
        },
        ports: vec![(loopback(10259), "kube-scheduler")],
    };

    let [containerd, kubelet, proxy] = node_services(
        bins,
        shape.first(),
        &layout.root,
        &kubeconfig("kube-proxy"),
        Vec::new(),
    );

    vec![
        etcd,
        apiserver,
        controller_manager,
        scheduler,
        containerd,
        kubelet,
        proxy,
    ]
}

/// The names of the components, in start order.
pub fn names(layout: &Layout, bins: &Binaries) -> Vec<&'static str> {
    start_order(layout, bins, &Shape::single())
        .iter()
        .map(|c| c.daemon.name)
        .collect()
}

/// containerd, the kubelet and kube-proxy of `node`, whose state is under `root`
/// (the state directory for the first node, its own directory for the others),
/// each run through `prefix` (into the node's namespaces).
pub fn node_services(
    bins: &Binaries,
    node: &NodeSpec,
    root: &Path,
    proxy_kubeconfig: &str,
    prefix: Vec<String>,
) -> [Component; 3] {
    let p = |rel: &str| root.join(rel).display().to_string();
    let arg = |k: &str, v: &str| format!("--{k}={v}");
    let loopback = |port: u16| format!("127.0.0.1:{port}");
    let legacy_kubelet = bins.minor < 27;
    let ip = node.ip().to_string();
    // The first node's health ports are on loopback; the others' on their own
    // address, where this machine (not only their loopback) reaches them.
    let health_addr = |port: u16| {
        if node.is_first() {
            loopback(port)
        } else {
            format!("{ip}:{port}")
        }
    };
    let socket = root.join("run/containerd.sock");
    let containerd = Component {
        daemon: Daemon {
            name: "containerd",
            program: PathBuf::from("/usr/bin/containerd"),
            prefix: prefix.clone(),
            args: vec![
                arg("config", &p("containerd/config.toml")),
                arg("log-level", "warn"),
            ],
        },
        health: Health::Containerd {
            socket: socket.clone(),
        },
        ports: vec![],
    };

    let kubelet = Component {
        daemon: Daemon {
            name: "kubelet",
            program: bins.kube("kubelet"),
            prefix: prefix.clone(),
            args: vec![
                arg("config", &p("kubelet/config.yaml")),
                arg("kubeconfig", &p("kubeconfigs/kubelet-client.conf")),
                // kubelet refuses a loopback node IP; the node address lives on lo but is not 127/8.
                arg("node-ip", &ip),
                arg("hostname-override", &node.name),
                arg("root-dir", &p("kubelet/root")),
                arg("cert-dir", &p("kubelet/pki")),
                arg("v", "1"),
            ]
            .into_iter()
            .chain(node.labels().map(|l| arg("node-labels", &l)))
            .chain(node.taint().map(|t| arg("register-with-taints", &t)))
            .chain(if legacy_kubelet {
                vec![
                    arg(
                        "container-runtime-endpoint",
                        &format!("unix://{}", socket.display()),
                    ),
                    arg("container-runtime", "remote"),
                    arg("pod-infra-container-image", &pause_image()),
                ]
            } else {
                Vec::new()
            })
            .collect(),
        },
        health: Health::Http {
            addr: health_addr(10248),
            path: "/healthz",
            body: "ok",
        },
        ports: vec![
            (health_addr(10248), "kubelet healthz"),
            (format!("{ip}:10250"), "kubelet"),
        ],
    };

    let proxy = Component {
        daemon: Daemon {
            name: "kube-proxy",
            program: bins.kube("kube-proxy"),
            prefix,
            args: vec![
                arg("kubeconfig", proxy_kubeconfig),
                arg("proxy-mode", "iptables"),
                arg("cluster-cidr", POD_CIDR),
                arg("hostname-override", &node.name),
                arg("bind-address", &ip),
                arg("healthz-bind-address", &health_addr(10256)),
                // Loopback only: it serves /metrics and /configz without
                // credentials, and 1.20 refuses to run without it (an empty address
                // or --metrics-port=0 fails validation).
                arg("metrics-bind-address", &loopback(10249)),
                // 0 = leave conntrack sysctls as they are (they cannot be written here).
                arg("conntrack-max-per-core", "0"),
                arg("conntrack-tcp-timeout-established", "0"),
                arg("conntrack-tcp-timeout-close-wait", "0"),
                arg("v", "1"),
            ],
        },
        health: Health::Http {
            addr: health_addr(10256),
            path: "/healthz",
            body: "{",
        },
        ports: if node.is_first() {
            vec![
                (loopback(10256), "kube-proxy healthz"),
                (loopback(10249), "kube-proxy metrics"),
            ]
        } else {
            // In a network namespace made at `up`: nothing else can hold them.
            Vec::new()
        },
    };

    [containerd, kubelet, proxy]
}

/// `true` if `path` is an executable file.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binaries::parse_minor;

    #[test]
    fn versions_select_the_flags_of_their_release() {
        assert_eq!(parse_minor("Kubernetes v1.20.2"), Some(20));
        assert_eq!(parse_minor("Kubernetes v1.31.0-rc.1"), Some(31));
        assert_eq!(parse_minor("garbage"), None);
        let layout = Layout {
            root: PathBuf::from("/tmp/x"),
        };
        let args_of = |minor: u32, name: &str| {
            let bins = Binaries {
                kube: PathBuf::from("/bin"),
                etcd: PathBuf::from("/bin/etcd"),
                minor,
            };
            start_order(&layout, &bins, &Shape::single())
                .into_iter()
                .find(|c| c.daemon.name == name)
                .map(|c| c.daemon.args)
                .unwrap_or_default()
        };
        assert!(args_of(20, "kube-apiserver").contains(&"--insecure-port=0".to_owned()));
        assert!(!args_of(28, "kube-apiserver")
            .iter()
            .any(|a| a.starts_with("--insecure-port")));
        assert!(args_of(20, "kubelet").contains(&"--container-runtime=remote".to_owned()));
        assert!(!args_of(28, "kubelet")
            .iter()
            .any(|a| a == "--container-runtime=remote"));
        assert!(!args_of(28, "kube-scheduler")
            .iter()
            .any(|a| a.starts_with("--port=")));
        for name in ["kube-scheduler", "kube-controller-manager"] {
            assert!(args_of(20, name).contains(&"--port=0".to_owned()), "{name}");
        }
        let etcd = args_of(20, "etcd");
        assert!(etcd.contains(&"--client-cert-auth=true".to_owned()));
        assert!(etcd.contains(&"--peer-client-cert-auth=true".to_owned()));
        assert!(!etcd.iter().any(|a| a.contains("http://")), "{etcd:?}");
    }
}
