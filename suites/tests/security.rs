//! Nothing of the cluster is open on the network: every socket its processes
//! listen on is local to this machine, none answers without credentials (the
//! exemptions are listed, with why), every file holding a key is root's alone,
//! and RBAC denies a plain ServiceAccount the Secrets of another namespace.
//!
//! The host checks look at this machine's processes, so they carry the mark
//! `local_cluster` (the local provider); on kind or k3d select
//! `--mark "not local_cluster"`. The RBAC case runs on any cluster.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use testware::namespace::TestNamespace;
use testware::{cases, check, CaseResult, Ctx, Suite};

fn main() -> std::process::ExitCode {
    Suite::new("security")
        .cases(cases![chart_deploy(local_cluster):
            every_listening_socket_of_the_cluster_is_local,
            no_port_answers_without_credentials,
            key_files_and_sockets_are_roots_alone,
        ])
        .cases(cases![chart_deploy: plain_service_account_is_denied_other_namespaces_secrets])
        .run()
}

/// The node address of the local provider (on `lo`, so local too).
const NODE_IP: Ipv4Addr = Ipv4Addr::new(172, 31, 255, 254);

/// Process names (`comm`, at most 15 characters) of the local provider.
const CLUSTER_PROCESSES: [&str; 7] = [
    "etcd",
    "kube-apiserver",
    "kube-controller",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "containerd",
];

/// A listening TCP socket and the cluster process that owns it.
#[derive(Debug, Clone)]
struct Listener {
    addr: SocketAddr,
    process: String,
}

/// The listening TCP sockets of the cluster's processes in this network
/// namespace, from `/proc/net/tcp{,6}` and the processes' open files.
fn cluster_listeners() -> anyhow::Result<Vec<Listener>> {
    let mut inodes: BTreeMap<u64, SocketAddr> = BTreeMap::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let text = std::fs::read_to_string(file)?;
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "0A" {
                continue; // not LISTEN
            }
            if let (Some(addr), Ok(inode)) = (parse_addr(fields[1], v6), fields[9].parse()) {
                inodes.insert(inode, addr);
            }
        }
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let pid_dir = entry.path();
        let Ok(comm) = std::fs::read_to_string(pid_dir.join("comm")) else {
            continue;
        };
        let comm = comm.trim().to_owned();
        if !CLUSTER_PROCESSES.iter().any(|p| comm.starts_with(p)) {
            continue;
        }
        for fd in std::fs::read_dir(pid_dir.join("fd"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            let inode = target
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(addr) = inode.and_then(|i| inodes.get(&i)) {
                found.push(Listener {
                    addr: *addr,
                    process: comm.clone(),
                });
            }
        }
    }
    found.sort_by_key(|l| (l.addr, l.process.clone()));
    found.dedup_by_key(|l| (l.addr, l.process.clone()));
    Ok(found)
}

/// `0100007F:2A6B` (little-endian words) to an address.
fn parse_addr(text: &str, v6: bool) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<u32> = (0..ip.len() / 8)
        .map(|i| u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16).map(u32::from_be))
        .collect::<Result<_, _>>()
        .ok()?;
    let ip = if v6 {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        let octets: [u8; 16] = bytes.try_into().ok()?;
        IpAddr::V6(Ipv6Addr::from(octets))
    } else {
        IpAddr::V4(Ipv4Addr::from(words.first()?.to_be_bytes()))
    };
    Some(SocketAddr::new(ip, port))
}

fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4 == NODE_IP,
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4 == NODE_IP)
        }
    }
}

/// The listeners, or an error saying this is not the local provider.
fn local_provider_listeners() -> anyhow::Result<Vec<Listener>> {
    let listeners = cluster_listeners()?;
    check!(
        listeners.iter().any(|l| l.process == "kube-apiserver"),
        "no kube-apiserver process listens on this machine: these checks are for the local provider (on kind or k3d select --mark \"not local_cluster\")"
    );
    Ok(listeners)
}

async fn every_listening_socket_of_the_cluster_is_local() -> CaseResult {
    let listeners = local_provider_listeners()?;
    let open: Vec<String> = listeners
        .iter()
        .filter(|l| !is_local(l.addr.ip()))
        .map(|l| format!("{} ({})", l.addr, l.process))
        .collect();
    check!(
        open.is_empty(),
        "listening beyond this machine: {open:?} (all: {listeners:?})"
    );
    Ok(())
}

/// Plain-HTTP endpoints that answer without credentials by design, and why
/// that is acceptable; every other path on them must not answer 200.
const EXEMPT: [(u16, &str, &str); 4] = [
    (10248, "/healthz", "kubelet health, loopback, says ok and nothing else"),
    (10256, "/healthz", "kube-proxy health, loopback, a timestamp"),
    (10249, "/metrics", "kube-proxy metrics, loopback; kube-proxy 1.20 can neither authenticate nor turn off this server"),
    (10249, "/configz", "kube-proxy's own configuration (CIDRs, modes, no credentials), same server"),
];

/// Paths that give something away if they answer without credentials.
const PROBES: [&str; 6] = [
    "/api/v1/secrets",
    "/pods",
    "/configz",
    "/metrics",
    "/v2/keys",
    "/debug/pprof/",
];

async fn no_port_answers_without_credentials() -> CaseResult {
    let listeners = local_provider_listeners()?;
    // The prober itself works: the API server answers it, and says 401.
    let apiserver = listeners
        .iter()
        .find(|l| l.process == "kube-apiserver")
        .map(|l| l.addr)
        .ok_or_else(|| anyhow::anyhow!("no kube-apiserver listener"))?;
    let status = get_without_credentials(apiserver, "/api/v1/secrets").await;
    check!(
        status == Some(401),
        "the API server should refuse an anonymous request with 401, got {status:?}"
    );
    let mut answered = Vec::new();
    for listener in &listeners {
        if listener.process == "containerd" {
            // Its streaming server (exec, attach, port-forward for the kubelet)
            // serves only URLs with one-time tokens the kubelet hands out.
            let (status, _) = get_plain(listener.addr, "/exec/not-a-token").await;
            if status == Some(200) {
                answered.push(format!(
                    "{} ({}) GET /exec/…: 200",
                    listener.addr, listener.process
                ));
            }
            continue;
        }
        for path in PROBES {
            let exempt = EXEMPT
                .iter()
                .any(|(port, p, _)| *port == listener.addr.port() && *p == path);
            if exempt {
                continue;
            }
            let outcome = get_without_credentials(listener.addr, path).await;
            if let Some(status @ 200..=299) = outcome {
                answered.push(format!(
                    "{} ({}) GET {path}: {status}",
                    listener.addr, listener.process
                ));
            }
        }
    }
    check!(
        answered.is_empty(),
        "answered without credentials: {answered:?} (exempt by design: {EXEMPT:?})"
    );
    Ok(())
}

/// The HTTP status of `GET path` with no credentials, over TLS (any server
/// certificate accepted) or else plain HTTP; `None` when nothing answered
/// (e.g. a TLS handshake that demands a client certificate).
async fn get_without_credentials(addr: SocketAddr, path: &str) -> Option<u16> {
    match get_tls(addr, path).await {
        Some(status) => Some(status),
        None => get_plain(addr, path).await.0,
    }
}

async fn get_tls(addr: SocketAddr, path: &str) -> Option<u16> {
    let url = format!("https://{addr}").parse().ok()?;
    let mut config = testware::kube::Config::new(url);
    config.accept_invalid_certs = true;
    config.connect_timeout = Some(Duration::from_secs(2));
    config.read_timeout = Some(Duration::from_secs(2));
    let client = testware::kube::Client::try_from(config).ok()?;
    let request = http::Request::get(path).body(Vec::new()).ok()?;
    match tokio::time::timeout(Duration::from_secs(5), client.request_text(request)).await {
        Ok(Ok(_)) => Some(200),
        Ok(Err(testware::kube::Error::Api(status))) => Some(status.code),
        _ => None,
    }
}

async fn get_plain(addr: SocketAddr, path: &str) -> (Option<u16>, String) {
    match tokio::time::timeout(
        Duration::from_secs(3),
        testware::net::http_request(addr, "GET", path, b""),
    )
    .await
    {
        Ok(Ok((status, body))) => (Some(status), body),
        _ => (None, String::new()),
    }
}

/// `$HARNESS_CLUSTER_DIR`, else `/var/lib/testware-cluster`.
fn cluster_dir() -> PathBuf {
    std::env::var_os("HARNESS_CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/testware-cluster"))
}

async fn key_files_and_sockets_are_roots_alone() -> CaseResult {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    local_provider_listeners()?;
    let dir = cluster_dir();
    let mut checked = Vec::new();
    let mut open = Vec::new();
    let mut look = |path: &Path, forbidden: u32| -> anyhow::Result<()> {
        let meta = std::fs::metadata(path)?;
        let mode = meta.permissions().mode() & 0o777;
        checked.push(path.display().to_string());
        if mode & forbidden != 0 || meta.uid() != 0 {
            open.push(format!(
                "{} (mode {mode:o}, uid {})",
                path.display(),
                meta.uid()
            ));
        }
        Ok(())
    };
    for entry in std::fs::read_dir(dir.join("pki"))?.flatten() {
        if entry.path().extension().is_some_and(|x| x == "key") {
            look(&entry.path(), 0o077)?;
        }
    }
    for entry in std::fs::read_dir(dir.join("kubeconfigs"))?.flatten() {
        look(&entry.path(), 0o077)?;
    }
    // containerd's API socket: whoever can write to it runs containers as root.
    let socket = dir.join("run/containerd.sock");
    if socket.exists() {
        look(&socket, 0o007)?;
    } else {
        for entry in std::fs::read_dir(dir.join("run"))?.flatten() {
            if entry.path().extension().is_some_and(|x| x == "sock") {
                look(&entry.path(), 0o007)?;
            }
        }
    }
    check!(
        checked.len() >= 10,
        "expected the PKI keys and kubeconfigs under {}: {checked:?}",
        dir.display()
    );
    check!(open.is_empty(), "readable beyond root: {open:?}");
    Ok(())
}

/// A ServiceAccount with no roles, in its own namespace, asks for a Secret of
/// another namespace (and its own): RBAC says no to both.
async fn plain_service_account_is_denied_other_namespaces_secrets(
    ctx: Ctx,
    theirs: Arc<TestNamespace>,
) -> CaseResult {
    let ours = ctx.create_namespace().await?;
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "theirs"},
        "stringData": {"password": "not for others"}
    }))?;
    theirs
        .api::<Secret>()
        .create(&Default::default(), &secret)
        .await?;
    let account: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "plain"}}))?;
    ours.api::<ServiceAccount>()
        .create(&Default::default(), &account)
        .await?;
    let token = service_account_token(&ours, "plain").await?;

    let mut config = testware::cluster::client_config(&ctx.config).await?;
    config.auth_info = Default::default();
    config.auth_info.token = Some(token.into());
    let client = testware::kube::Client::try_from(config)?;
    for (namespace, name) in [(theirs.name(), "theirs"), (ours.name(), "plain")] {
        let api: testware::kube::Api<Secret> =
            testware::kube::Api::namespaced(client.clone(), namespace);
        let denied = match api.get_opt(name).await {
            Err(testware::kube::Error::Api(status)) => status.code == 403,
            _ => false,
        };
        check!(
            denied,
            "ServiceAccount plain of {} should get 403 reading Secret {name} of {namespace}",
            ours.name()
        );
    }
    Ok(())
}

/// A token of ServiceAccount `name` through the TokenRequest API.
async fn service_account_token(ns: &TestNamespace, name: &str) -> anyhow::Result<String> {
    let request = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 600}
    });
    let answer: serde_json::Value = ns
        .api::<ServiceAccount>()
        .create_subresource("token", name, &Default::default(), &request)
        .await?;
    answer["status"]["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no token in the TokenRequest answer: {answer}"))
}
