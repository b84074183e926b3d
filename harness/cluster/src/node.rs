//! The nodes after the first, each a host of its own on this machine: a network
//! namespace joined to this machine by a veth pair (its pod range routed through
//! it), a mount namespace in which `/var/log/pods` and `/var/log/containers` are
//! the node's own (a kubelet removes the log directories of every pod it does
//! not run), and its containerd, kubelet and kube-proxy entered into both.
//!
//! Also the faults a test injects: a node *lost* (kubelet, kube-proxy,
//! containerd and every container stopped, as a reclaimed spot instance) and a
//! node *cut off* (its link down while its pods keep running), each undone by
//! [`restore`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

use crate::binaries::Binaries;
use crate::components::{self, Component};
use crate::layout::{Layout, POD_CIDR};
use crate::network::{output, run};
use crate::process::{self, Supervisor};
use crate::shape::{NodeSpec, Shape};

/// Prefix of the network namespaces of the nodes (`ip netns`).
pub const NETNS_PREFIX: &str = "testware-node-";
/// Prefix of this machine's ends of the nodes' veth pairs.
pub const VETH_PREFIX: &str = "testware-n";

/// The daemons of `node` (a node after the first), entered into its namespaces.
pub fn components(layout: &Layout, bins: &Binaries, node: &NodeSpec) -> Vec<Component> {
    let dir = layout.node_dir(&node.name);
    let prefix = vec![
        "/usr/bin/nsenter".to_owned(),
        format!("--net=/run/netns/{}", node.netns()),
        format!("--mount={}", mount_ns(layout, node).display()),
        "--".to_owned(),
    ];
    let proxy_kubeconfig = layout.path("kubeconfigs/kube-proxy.conf");
    components::node_services(
        bins,
        node,
        &dir,
        &proxy_kubeconfig.display().to_string(),
        prefix,
    )
    .into()
}

/// The supervisor of `node`'s daemons: pid files in its directory, logs in
/// `logs/<node>/`.
pub fn supervisor(layout: &Layout, node: &NodeSpec) -> Supervisor {
    Supervisor::new(
        layout.node_dir(&node.name).join("run"),
        layout.logs().join(&node.name),
    )
}

/// The file holding `node`'s mount namespace.
fn mount_ns(layout: &Layout, node: &NodeSpec) -> PathBuf {
    layout.node_dir(&node.name).join("ns/mnt")
}

/// Makes `node`'s network namespace, veth pair, addresses and routes, and its
/// mount namespace.
///
/// # Errors
/// `ip`, `mount` or `unshare` fail (with their message).
pub fn set_up(layout: &Layout, shape: &Shape, node: &NodeSpec) -> anyhow::Result<()> {
    let ns = node.netns();
    let veth = node.veth();
    let gateway = node.gateway().to_string();
    run("ip", &["netns", "add", &ns])?;
    run(
        "ip",
        &[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ],
    )?;
    run(
        "ip",
        &["addr", "add", &format!("{gateway}/30"), "dev", &veth],
    )?;
    run("ip", &["link", "set", &veth, "up"])?;
    let in_ns = |args: &[&str]| {
        let mut all = vec!["-n", ns.as_str()];
        all.extend_from_slice(args);
        run("ip", &all)
    };
    in_ns(&["addr", "add", &format!("{}/30", node.ip()), "dev", "eth0"])?;
    in_ns(&["link", "set", "eth0", "up"])?;
    in_ns(&["link", "set", "lo", "up"])?;
    in_ns(&["route", "add", "default", "via", &gateway])?;
    route_pods(shape, node)?;
    // Per network namespace: forwarding for the pods, bridged traffic through
    // iptables for kube-proxy, and pod-to-pod traffic across nodes not masqueraded.
    run(
        "ip",
        &[
            "netns",
            "exec",
            &ns,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables",
        ],
    )?;
    let mut rule = vec!["netns", "exec", &ns, "iptables"];
    rule.extend(pod_to_pod_rule("-I"));
    run("ip", &rule)?;

    let dir = layout.node_dir(&node.name);
    let ns_dir = dir.join("ns");
    let logs = [dir.join("log/pods"), dir.join("log/containers")];
    for d in logs.iter().chain([&ns_dir]) {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    for d in ["/var/log/pods", "/var/log/containers"] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {d}"))?;
    }
    // A mount namespace is kept by a bind mount of its file, which must not be
    // on a shared mount: a private bind of the directory onto itself.
    let ns_dir_text = ns_dir.display().to_string();
    run("mount", &["--bind", &ns_dir_text, &ns_dir_text])?;
    run("mount", &["--make-private", &ns_dir_text])?;
    let file = mount_ns(layout, node);
    std::fs::write(&file, "").with_context(|| format!("creating {}", file.display()))?;
    let script = format!(
        "mount --bind {} /var/log/pods && mount --bind {} /var/log/containers",
        logs[0].display(),
        logs[1].display()
    );
    run(
        "unshare",
        &[
            &format!("--mount={}", file.display()),
            "--propagation",
            "slave",
            "sh",
            "-c",
            &script,
        ],
    )
}

/// The route on this machine to `node`'s pods (again after the link was down).
fn route_pods(shape: &Shape, node: &NodeSpec) -> anyhow::Result<()> {
    run(
        "ip",
        &[
            "route",
            "replace",
            &shape.pod_cidr(node),
            "via",
            &node.ip().to_string(),
            "dev",
            &node.veth(),
        ],
    )
}

/// The NAT rule, with `action` (`-I`, `-D`, `-C`), that keeps traffic between
/// pods of different nodes unmasqueraded (the CNI bridge masquerades what leaves
/// its node's range).
pub fn pod_to_pod_rule(action: &str) -> Vec<&str> {
    vec![
        "-w",
        "-t",
        "nat",
        action,
        "POSTROUTING",
        "-s",
        POD_CIDR,
        "-d",
        POD_CIDR,
        "-m",
        "comment",
        "--comment",
        "testware: pod to pod across nodes",
        "-j",
        "RETURN",
    ]
}

/// Whether this machine has the rule of [`pod_to_pod_rule`].
pub fn pod_to_pod_rule_present() -> bool {
    std::process::Command::new("iptables")
        .args(pod_to_pod_rule("-C"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Stops `node`'s daemons and everything its containerd started.
pub fn stop(layout: &Layout, bins: &Binaries, node: &NodeSpec) {
    let supervisor = supervisor(layout, node);
    for name in ["kube-proxy", "kubelet"] {
        supervisor.stop(name, Duration::from_secs(10));
    }
    let socket = layout
        .node_dir(&node.name)
        .join("run/containerd.sock")
        .display()
        .to_string();
    let all = process::processes();
    let shims: Vec<u32> = all
        .iter()
        .filter(|p| p.cmdline.contains("containerd-shim") && p.cmdline.contains(&socket))
        .map(|p| p.pid)
        .collect();
    process::kill_all(&process::with_descendants(&all, &shims));
    for c in components(layout, bins, node).iter().rev() {
        supervisor.stop(c.daemon.name, Duration::from_secs(10));
    }
}

/// Removes `node`'s network namespace (its veth pair and routes go with it)
/// and unmounts its mount namespace; returns what could not be removed.
pub fn tear_down(layout: &Layout, node: &NodeSpec) -> Vec<String> {
    let mut problems = Vec::new();
    for path in [
        mount_ns(layout, node),
        layout.node_dir(&node.name).join("ns"),
    ] {
        if crate::layout::mounts_under(&path).contains(&path) {
            if let Err(e) = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH) {
                problems.push(format!("unmount {}: {e}", path.display()));
            }
        }
    }
    if node_netns().contains(&node.netns()) {
        if let Err(e) = run("ip", &["netns", "delete", &node.netns()]) {
            problems.push(format!("network namespace {}: {e:#}", node.netns()));
        }
    }
    if link_exists(&node.veth()) {
        if let Err(e) = run("ip", &["link", "delete", &node.veth()]) {
            problems.push(format!("veth {}: {e:#}", node.veth()));
        }
    }
    problems
}

/// The nodes' network namespaces on this machine.
pub fn node_netns() -> Vec<String> {
    output("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NETNS_PREFIX))
        .map(str::to_owned)
        .collect()
}

/// This machine's ends of the nodes' veth pairs.
pub fn node_veths() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.starts_with(VETH_PREFIX))
        .collect()
}

fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// A fault on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Kubelet, kube-proxy, containerd and every container stopped.
    Lost,
    /// Its link to the rest of the cluster down; its pods keep running.
    CutOff,
}

/// Injects `fault` on `node` (not the control-plane node: the cluster would go with it).
///
/// # Errors
/// The node is the first, or `ip` fails.
pub fn inject(
    layout: &Layout,
    bins: &Binaries,
    shape: &Shape,
    node: &NodeSpec,
    fault: Fault,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !node.is_first(),
        "node {} runs the control plane and cannot be lost or cut off (hint: pick another node: {})",
        node.name,
        shape
            .extra()
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    match fault {
        Fault::Lost => {
            stop(layout, bins, node);
            Ok(())
        }
        Fault::CutOff => run("ip", &["link", "set", &node.veth(), "down"]),
    }
}

/// Brings `node`'s link up again and its pod route back (a cut-off undone).
///
/// # Errors
/// `ip` fails.
pub fn reconnect(shape: &Shape, node: &NodeSpec) -> anyhow::Result<()> {
    if node.is_first() {
        return Ok(());
    }
    run("ip", &["link", "set", &node.veth(), "up"])?;
    route_pods(shape, node)
}
