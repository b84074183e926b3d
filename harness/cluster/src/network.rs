//! Host network set-up for the cluster and its complete removal: the node address
//! on `lo`, the sysctls kube-proxy and the CNI bridge need, and at teardown the
//! bridge, network namespaces, iptables chains and mounts the cluster created.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::layout::{BRIDGE, NODE_IP, SERVICE_CIDR};

/// Sysctls set at `up` and restored at `down`.
const SYSCTLS: [(&str, &str); 2] = [
    ("/proc/sys/net/ipv4/ip_forward", "1"),
    ("/proc/sys/net/bridge/bridge-nf-call-iptables", "1"),
];

/// What existed before `up`, so `down` removes only what the cluster made.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BeforeUp {
    /// Sysctl values before `up`.
    pub sysctls: Vec<(String, String)>,
    /// `cni-*` network namespaces that already existed.
    pub netns: Vec<String>,
    /// Whether the node address was already on `lo`.
    pub node_ip_present: bool,
    /// Entries of `/var/log/pods` and `/var/log/containers` that already existed.
    pub pod_logs: Vec<PathBuf>,
    /// Which of [`CREATED_DIRS`] already existed.
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
}

/// Directories the kubelet and CNI create outside the state directory.
const CREATED_DIRS: [&str; 4] = [
    "/var/log/pods",
    "/var/log/containers",
    "/var/run/netns",
    "/run/netns",
];

impl BeforeUp {
    /// Records the current state.
    pub fn capture() -> Self {
        Self {
            sysctls: SYSCTLS
                .iter()
                .filter_map(|(path, _)| {
                    Some((
                        path.to_string(),
                        std::fs::read_to_string(path).ok()?.trim().to_owned(),
                    ))
                })
                .collect(),
            netns: cni_netns(),
            node_ip_present: node_ip_present(),
            pod_logs: pod_log_entries(),
            dirs: CREATED_DIRS
                .iter()
                .map(PathBuf::from)
                .filter(|d| d.exists())
                .collect(),
        }
    }

    /// Reads the record written at `up`.
    pub fn load(path: &Path) -> Option<Self> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    }

    /// Writes the record.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// Adds the node address to `lo`, makes the service range unreachable outside
/// kube-proxy's rules, and sets the sysctls.
///
/// # Errors
/// `ip` fails or a sysctl cannot be written.
pub fn set_up() -> anyhow::Result<()> {
    if !node_ip_present() {
        run(
            "ip",
            &["addr", "add", &format!("{NODE_IP}/32"), "dev", "lo"],
        )?;
    }
    // A pod that connects to a Service IP before kube-proxy has written its rules
    // (a Service created a moment ago) would otherwise be forwarded off this
    // machine by the default route — seen answered with HTTP 404 by something
    // upstream, on a keep-alive connection a client then kept for minutes.
    // Rejected: the connection fails at once and the client retries. (Packets
    // kube-proxy translated carry a pod address by then and are not matched.)
    // The same for this machine's own connections (a test's client): what the
    // nat table did not translate would leave by the default route — seen
    // answered with HTTP 404 by something upstream while a Service briefly
    // had no rules at all.
    for chain in SERVICE_REJECT_CHAINS {
        if !service_reject_in(chain) {
            run("iptables", &service_reject_rule(chain, "-I"))?;
        }
    }
    for (path, value) in SYSCTLS {
        std::fs::write(path, value).with_context(|| {
            format!("failed to set {path} to {value} (hint: the bridge sysctl needs the br_netfilter module)")
        })?;
    }
    Ok(())
}

/// The chains with a rule rejecting traffic to the service range that
/// kube-proxy did not translate: pods' (FORWARD) and this machine's (OUTPUT).
const SERVICE_REJECT_CHAINS: [&str; 2] = ["FORWARD", "OUTPUT"];

/// The rule in `chain` rejecting traffic to the service range that kube-proxy
/// did not translate, with `action` (`-I`, `-D`, `-C`).
fn service_reject_rule<'a>(chain: &'a str, action: &'a str) -> Vec<&'a str> {
    vec![
        "-w",
        action,
        chain,
        "-d",
        SERVICE_CIDR,
        "-m",
        "comment",
        "--comment",
        "testware: service IP not translated by kube-proxy",
        "-j",
        "REJECT",
    ]
}

/// `true` when a rule of the cluster rejecting untranslated traffic to the service range exists.
pub fn service_reject_present() -> bool {
    SERVICE_REJECT_CHAINS
        .iter()
        .any(|chain| service_reject_in(chain))
}

fn service_reject_in(chain: &str) -> bool {
    Command::new("iptables")
        .args(service_reject_rule(chain, "-C"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `true` when the node address is on `lo`.
pub fn node_ip_present() -> bool {
    output("ip", &["-4", "-o", "addr", "show", "dev", "lo"])
        .is_some_and(|o| o.contains(&format!(" {NODE_IP}/")))
}

/// `cni-*` network namespaces (what containerd's CRI creates for pods).
pub fn cni_netns() -> Vec<String> {
    let mut names: Vec<String> = ["/var/run/netns", "/run/netns"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.starts_with("cni-"))
        .collect();
    names.sort();
    names.dedup();
    names
}

fn pod_log_entries() -> Vec<PathBuf> {
    ["/var/log/pods", "/var/log/containers"]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect()
}

/// `true` if the cluster's bridge exists.
pub fn bridge_present() -> bool {
    Path::new(&format!("/sys/class/net/{BRIDGE}")).exists()
}

/// iptables chains named `KUBE-*` or `CNI-*`, as `table/chain`.
pub fn cluster_chains() -> Vec<String> {
    let mut found = Vec::new();
    for tool in ["iptables", "ip6tables"] {
        for table in ["filter", "nat", "mangle"] {
            let Some(rules) = output(tool, &["-t", table, "-S"]) else {
                continue;
            };
            for line in rules.lines() {
                if let Some(chain) = line.strip_prefix("-N ") {
                    if is_cluster_chain(chain) {
                        found.push(format!("{tool}:{table}/{chain}"));
                    }
                }
            }
        }
    }
    found
}

fn is_cluster_chain(chain: &str) -> bool {
    chain.starts_with("KUBE-") || chain.starts_with("CNI-")
}

/// Removes every `KUBE-*`/`CNI-*` chain and every rule that jumps to one, table by
/// table, with one `iptables-restore` per table (other rules stay as they were).
///
/// # Errors
/// `iptables-save`/`iptables-restore` fail.
pub fn remove_cluster_chains() -> anyhow::Result<()> {
    for (save, restore) in [
        ("iptables-save", "iptables-restore"),
        ("ip6tables-save", "ip6tables-restore"),
    ] {
        for table in ["filter", "nat", "mangle"] {
            let Some(dump) = output(save, &["-t", table]) else {
                continue;
            };
            if !dump.lines().any(mentions_cluster_chain) {
                continue;
            }
            let kept: String = dump
                .lines()
                .filter(|l| !mentions_cluster_chain(l))
                .map(|l| format!("{l}\n"))
                .collect();
            let mut child = Command::new(restore)
                .args(["-T", table])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .with_context(|| format!("failed to run {restore}"))?;
            if let Some(stdin) = child.stdin.as_mut() {
                use std::io::Write;
                stdin.write_all(kept.as_bytes())?;
            }
            drop(child.stdin.take());
            let status = child.wait()?;
            anyhow::ensure!(
                status.success(),
                "{restore} -T {table} failed with {status}"
            );
        }
    }
    Ok(())
}

/// `:KUBE-X …` chain declarations and rules with `-j KUBE-X` / `-A KUBE-X`.
fn mentions_cluster_chain(line: &str) -> bool {
    if let Some(decl) = line.strip_prefix(':') {
        return is_cluster_chain(decl);
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .windows(2)
        .any(|w| matches!(w[0], "-A" | "-j" | "-g") && is_cluster_chain(w[1]))
}

/// Deletes the bridge, the network namespaces the cluster created, the node
/// address, and restores the sysctls; pod log entries made by the kubelet go too.
pub fn tear_down(before: &BeforeUp) -> Vec<String> {
    let mut problems = Vec::new();
    for ns in cni_netns()
        .into_iter()
        .filter(|n| !before.netns.contains(n))
    {
        for dir in ["/var/run/netns", "/run/netns"] {
            let path = Path::new(dir).join(&ns);
            let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Err(e) = run("ip", &["netns", "delete", &ns]) {
            if cni_netns().contains(&ns) {
                problems.push(format!("network namespace {ns}: {e:#}"));
            }
        }
    }
    if bridge_present() {
        if let Err(e) = run("ip", &["link", "delete", BRIDGE]) {
            problems.push(format!("bridge {BRIDGE}: {e:#}"));
        }
    }
    if let Err(e) = remove_cluster_chains() {
        problems.push(format!("iptables: {e:#}"));
    }
    for chain in SERVICE_REJECT_CHAINS {
        while service_reject_in(chain) {
            if let Err(e) = run("iptables", &service_reject_rule(chain, "-D")) {
                problems.push(format!("iptables {chain} rule for {SERVICE_CIDR}: {e:#}"));
                break;
            }
        }
    }
    if !before.node_ip_present && node_ip_present() {
        if let Err(e) = run(
            "ip",
            &["addr", "del", &format!("{NODE_IP}/32"), "dev", "lo"],
        ) {
            problems.push(format!("node address: {e:#}"));
        }
    }
    for (path, value) in &before.sysctls {
        let _ = std::fs::write(path, value);
    }
    for entry in pod_log_entries()
        .into_iter()
        .filter(|e| !before.pod_logs.contains(e))
    {
        let removed = if entry.is_dir() && !entry.is_symlink() {
            std::fs::remove_dir_all(&entry)
        } else {
            std::fs::remove_file(&entry)
        };
        if let Err(e) = removed {
            problems.push(format!("{}: {e}", entry.display()));
        }
    }
    for dir in CREATED_DIRS
        .iter()
        .map(PathBuf::from)
        .filter(|d| !before.dirs.contains(d))
    {
        // Only if empty: anything inside belongs to someone else.
        let _ = std::fs::remove_dir(&dir);
    }
    problems
}

/// Runs a command; an error carries its stderr.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("failed to run {program}"))?;
    anyhow::ensure!(
        out.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// stdout of a successful command.
pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_cluster_chains_and_their_jumps_are_selected() {
        assert!(mentions_cluster_chain(":KUBE-SERVICES - [0:0]"));
        assert!(mentions_cluster_chain(
            "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES"
        ));
        assert!(mentions_cluster_chain(
            "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"
        ));
        assert!(mentions_cluster_chain(
            "-A POSTROUTING -s 10.244.0.5/32 -m comment --comment x -j CNI-abc123"
        ));
        assert!(!mentions_cluster_chain(":PREROUTING ACCEPT [0:0]"));
        assert!(!mentions_cluster_chain(
            "-A POSTROUTING -o eth0 -j MASQUERADE"
        ));
        assert!(!mentions_cluster_chain(
            "-A INPUT -m comment --comment KUBE-like -j ACCEPT"
        ));
    }
}
