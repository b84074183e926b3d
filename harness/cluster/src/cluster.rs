//! `up`, `down`, `status` and the leftover check of the local cluster.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::binaries::Binaries;
use crate::components::{self, Component, Health, ADMIN, IDENTITIES};
use crate::layout::{self, Layout, NODE_IP, NODE_NAME, SERVICE_IP};
use crate::network::{self, BeforeUp};
use crate::node::{self, Fault};
use crate::pki::Pki;
use crate::process::{self, Supervisor};
use crate::shape::{NodeSpec, Shape, GROUP_LABEL};

/// How long one component may take to become healthy.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The local cluster on this machine.
pub struct LocalCluster {
    /// Its state directory.
    pub layout: Layout,
    /// Its binaries.
    pub bins: Binaries,
    /// Its nodes: as recorded at `up`, or as [`LocalCluster::with_shape`] asks.
    pub shape: Shape,
    supervisor: Supervisor,
}

/// One component's state, for `status`.
#[derive(Debug)]
pub struct ComponentStatus {
    /// Component name (with its node's after the first: `kubelet@testware-2`).
    pub name: String,
    /// `Ok(detail)` when healthy, `Err(reason)` otherwise.
    pub state: Result<String, String>,
}

impl LocalCluster {
    /// The cluster described by `layout`, using `bins`.
    pub fn new(layout: Layout, bins: Binaries) -> Self {
        let supervisor = Supervisor::new(layout.run(), layout.logs());
        let shape = Shape::load(&layout);
        Self {
            layout,
            bins,
            shape,
            supervisor,
        }
    }

    /// The same cluster with the nodes of `shape` (what `up` starts).
    pub fn with_shape(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }

    fn components(&self) -> Vec<Component> {
        components::start_order(&self.layout, &self.bins, &self.shape)
    }

    /// Checks that everything `up` needs is installed, naming what is missing.
    ///
    /// # Errors
    /// Not root, or a binary is missing (with the command that installs it).
    pub fn check_prerequisites(&self) -> anyhow::Result<()> {
        if !nix::unistd::Uid::effective().is_root() {
            bail!("the local cluster needs root (mounts, iptables, network namespaces) (hint: run as root)");
        }
        let mut missing = Vec::new();
        for c in self.components() {
            if !components::is_executable(&c.daemon.program) {
                missing.push(c.daemon.program.display().to_string());
            }
        }
        for tool in [
            "/usr/sbin/runc",
            "/usr/bin/ctr",
            "/usr/lib/cni/bridge",
            "/usr/lib/cni/host-local",
            "/usr/lib/cni/portmap",
            "/usr/lib/cni/loopback",
        ] {
            if !components::is_executable(Path::new(tool)) {
                missing.push(tool.to_owned());
            }
        }
        for tool in ["ip", "iptables", "iptables-save", "iptables-restore"] {
            if network::output("which", &[tool]).is_none() {
                missing.push(tool.to_owned());
            }
        }
        if !missing.is_empty() {
            bail!(
                "missing prerequisites: {} (hint: `testware cluster up` installs the Debian packages and builds the Kubernetes binaries unless --bin-dir names official release binaries)",
                missing.join(", ")
            );
        }
        self.check_free_disk()?;
        if !Path::new("/proc/sys/net/bridge").exists() {
            bail!("the br_netfilter kernel module is not loaded (hint: modprobe br_netfilter)");
        }
        Ok(())
    }

    /// Refuses to start on a nearly full disk, where the kubelet would taint the node
    /// `disk-pressure` and every case would wait for pods that are never scheduled.
    fn check_free_disk(&self) -> anyhow::Result<()> {
        let existing = self
            .layout
            .root
            .ancestors()
            .find(|p| p.exists())
            .unwrap_or(Path::new("/"));
        let stat = nix::sys::statvfs::statvfs(existing)
            .with_context(|| format!("failed to read the free space of {}", existing.display()))?;
        let free = stat.blocks_available() * stat.fragment_size();
        if free < components::MIN_FREE_DISK {
            bail!(
                "only {} MiB free on the disk of {} (the local cluster needs {} MiB: images, pod data, logs; below {} the kubelet stops scheduling pods) (hint: free disk space, e.g. `cargo clean` in old checkouts)",
                free >> 20,
                existing.display(),
                components::MIN_FREE_DISK >> 20,
                components::EVICTION_FLOOR
            );
        }
        Ok(())
    }

    /// Starts the cluster unless it already runs healthy, loads the addons'
    /// images (`addon_images`: archives of [`crate::images::addon_images`]),
    /// installs the addons and waits until they serve, then writes the admin
    /// kubeconfig to `kubeconfig`. Returns whether it started the cluster.
    ///
    /// # Errors
    /// As [`LocalCluster::up`], or an addon does not come up (naming it).
    pub async fn up_serving(
        &self,
        addon_images: &[PathBuf],
        kubeconfig: &Path,
    ) -> anyhow::Result<bool> {
        let fresh = self.up(addon_images).await?;
        if !fresh {
            // A running cluster may have older addons' images: the import is idempotent.
            for archive in addon_images {
                crate::images::import(&self.layout, archive)?;
            }
        }
        let client = self.admin_client().await?;
        if fresh {
            // Addons applied before the new node takes pods would wait out the
            // scheduler's back-off after their first refusal.
            let started = Instant::now();
            for n in &self.shape.nodes {
                wait_schedulable(&client, &n.name, Duration::from_secs(60)).await?;
            }
            eprintln!(
                "  node(s) taking pods after {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
        let started = Instant::now();
        crate::addons::install(&client, &self.layout)
            .await
            .context("installing the addons")?;
        crate::addons::wait_serving(&client).await?;
        eprintln!(
            "  addons serving after {:.1} s",
            started.elapsed().as_secs_f64()
        );
        self.export_kubeconfig(kubeconfig)?;
        Ok(fresh)
    }

    /// Starts the cluster unless it already runs healthy; returns whether it started it.
    ///
    /// # Errors
    /// A prerequisite is missing, a port is taken, or a component fails to start
    /// (then everything started is stopped again and the error carries its log).
    pub async fn up(&self, images: &[PathBuf]) -> anyhow::Result<bool> {
        self.check_prerequisites()?;
        let recorded = Shape::load(&self.layout);
        let status = self.status().await;
        if status.iter().all(|s| s.state.is_ok()) && self.layout.shape().exists() {
            if recorded != self.shape {
                bail!(
                    "the local cluster runs with {} node(s) ({}), not the {} asked for (hint: `testware cluster down` first)",
                    recorded.nodes.len(),
                    describe(&recorded),
                    describe(&self.shape)
                );
            }
            let running = Binaries::recorded(&self.layout);
            if let Some(running) = running.filter(|r| r.kube != self.bins.kube) {
                bail!(
                    "the local cluster runs the Kubernetes binaries in {}, not those asked for in {} (hint: `testware cluster down` first)",
                    running.kube.display(),
                    self.bins.kube.display()
                );
            }
            return Ok(false);
        }
        if status.iter().any(|s| s.state.is_ok()) || self.layout.root.exists() {
            eprintln!("a partial cluster is present; cleaning it up before starting");
            self.down()?;
        }
        for c in self.components() {
            for (addr, what) in &c.ports {
                check_port_free(addr, what)?;
            }
        }
        match self.start(images).await {
            Ok(()) => Ok(true),
            Err(e) => {
                let saved = self.save_logs();
                let cleanup = self
                    .down()
                    .err()
                    .map(|e| format!("; cleanup also failed: {e:#}"))
                    .unwrap_or_default();
                Err(e.context(format!(
                    "the local cluster did not start (component logs saved in {}){cleanup}",
                    saved.display()
                )))
            }
        }
    }

    async fn start(&self, images: &[PathBuf]) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.layout.root)?;
        BeforeUp::capture().save(&self.layout.before_up())?;
        self.shape.save(&self.layout)?;
        let pki = Pki::new(self.layout.pki());
        let extra: Vec<(String, std::net::IpAddr)> = self
            .shape
            .extra()
            .iter()
            .map(|n| (n.name.clone(), n.ip()))
            .collect();
        pki.generate(NODE_IP, NODE_NAME, SERVICE_IP, &IDENTITIES, &extra)?;
        components::write_configs(&self.layout, &pki, &self.shape, &self.bins)?;
        self.bins.record(&self.layout)?;
        std::fs::create_dir_all(self.layout.volumes())?;
        network::set_up()?;
        if self.shape.is_multi_node() && !node::pod_to_pod_rule_present() {
            network::run("iptables", &node::pod_to_pod_rule("-I"))?;
        }
        for n in self.shape.extra() {
            node::set_up(&self.layout, &self.shape, n)
                .with_context(|| format!("setting up the network of node {}", n.name))?;
        }
        // What waits for nothing but its own start runs at once: etcd and
        // containerd first; then the API server with the kubelet, whose own
        // start (cAdvisor, the runtime: about 6 s) needs no API server until it
        // registers the node, and the addons' images imported meanwhile; then
        // the rest, which read from the API server as they start.
        let mut components = self.components();
        let mut phase = |names: &[&str]| {
            let (now, later) = components
                .drain(..)
                .partition::<Vec<_>, _>(|c| names.contains(&c.daemon.name));
            components = later;
            now
        };
        let storage_and_runtime = phase(&["etcd", "containerd"]);
        let api_server_and_kubelet = phase(&["kube-apiserver", "kubelet"]);
        let rest = std::mem::take(&mut components);
        self.start_together(storage_and_runtime).await?;
        let layout = self.layout.clone();
        let archives = images.to_vec();
        let import = tokio::task::spawn_blocking(move || {
            archives.iter().try_for_each(|archive| {
                crate::images::import_at(&layout.containerd_socket(), archive)
            })
        });
        self.start_together(api_server_and_kubelet).await?;
        import.await.context("importing the addons' images")??;
        self.start_together(rest).await?;
        // The other nodes at once: each is its own containerd, kubelet and kube-proxy.
        futures::future::try_join_all(
            self.shape
                .extra()
                .iter()
                .map(|n| self.start_node(n, images)),
        )
        .await?;
        Ok(())
    }

    /// Starts the daemons of `node` (after the first) that are not running:
    /// containerd first, then the kubelet and kube-proxy.
    async fn start_node(&self, n: &NodeSpec, images: &[PathBuf]) -> anyhow::Result<()> {
        let supervisor = node::supervisor(&self.layout, n);
        let (runtime, rest): (Vec<_>, Vec<_>) = node::components(&self.layout, &self.bins, n)
            .into_iter()
            .filter(|c| supervisor.running(c.daemon.name).is_none())
            .partition(|c| c.daemon.name == "containerd");
        self.start_on(&supervisor, &n.name, runtime).await?;
        let socket = self.layout.node_dir(&n.name).join("run/containerd.sock");
        for archive in images {
            crate::images::import_at(&socket, archive)?;
        }
        self.start_on(&supervisor, &n.name, rest).await
    }

    /// Injects `fault` on node `name`.
    ///
    /// # Errors
    /// No such node, it is the control-plane node, or `ip` fails.
    pub fn inject(&self, name: &str, fault: Fault) -> anyhow::Result<()> {
        let n = self.shape.node(name)?;
        node::inject(&self.layout, &self.bins, &self.shape, n, fault)
    }

    /// Undoes every fault on node `name` (link up, daemons started and healthy).
    ///
    /// # Errors
    /// No such node, or a daemon does not come up.
    pub async fn restore(&self, name: &str) -> anyhow::Result<()> {
        let n = self.shape.node(name)?;
        node::reconnect(&self.shape, n)?;
        if n.is_first() {
            return Ok(());
        }
        self.start_node(n, &[]).await
    }

    /// Starts `components` at once and waits until each is healthy, saying how long each took.
    async fn start_together(&self, components: Vec<Component>) -> anyhow::Result<()> {
        self.start_on(&self.supervisor, "", components).await
    }

    /// [`Self::start_together`] with `supervisor`, on node `node` (empty: the first).
    async fn start_on(
        &self,
        supervisor: &Supervisor,
        node: &str,
        components: Vec<Component>,
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut children = Vec::new();
        for component in components {
            let child = supervisor.start(&component.daemon)?;
            children.push((component, child));
        }
        let at = if node.is_empty() {
            String::new()
        } else {
            format!("@{node}")
        };
        futures::future::try_join_all(children.iter_mut().map(|(component, child)| async {
            self.wait_healthy(supervisor, component, child)
                .await
                .with_context(|| format!("{}{at}", component.daemon.name))?;
            eprintln!(
                "  {}{at} healthy after {:.1} s",
                component.daemon.name,
                started.elapsed().as_secs_f64()
            );
            anyhow::Ok(())
        }))
        .await?;
        Ok(())
    }

    async fn wait_healthy(
        &self,
        supervisor: &Supervisor,
        component: &Component,
        child: &mut std::process::Child,
    ) -> anyhow::Result<()> {
        let name = component.daemon.name;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let result = self.check_health(&component.health).await;
            if result.is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "{name} exited during start ({status}); last log lines:\n{}",
                    supervisor.log_tail(name, 15)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} did not become healthy within {START_TIMEOUT:?} ({}); last log lines:\n{}",
                    result.err().map(|e| format!("{e:#}")).unwrap_or_default(),
                    supervisor.log_tail(name, 15)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn check_health(&self, health: &Health) -> anyhow::Result<String> {
        match health {
            Health::Http { addr, path, body } => {
                let (status, text) = http_get(addr, path).await?;
                if status == 200 && text.trim_start().starts_with(body) {
                    Ok(format!("GET {path}: 200"))
                } else {
                    bail!("GET http://{addr}{path} answered {status}: {}", text.trim())
                }
            }
            Health::Https {
                url,
                identity,
                path,
                body,
            } => {
                let client = self.client_for(identity, Some(url)).await?;
                let request = http::Request::get(*path).body(Vec::new())?;
                let text =
                    tokio::time::timeout(Duration::from_secs(3), client.request_text(request))
                        .await
                        .with_context(|| format!("GET {url}{path} timed out"))?
                        .with_context(|| format!("GET {url}{path}"))?;
                anyhow::ensure!(
                    text.trim_start().starts_with(body),
                    "GET {url}{path}: {text}"
                );
                Ok(format!("GET {path} (TLS, client certificate): ok"))
            }
            Health::ApiServer => {
                let client = self.admin_client().await?;
                let request = http::Request::get("/readyz").body(Vec::new())?;
                let text =
                    tokio::time::timeout(Duration::from_secs(3), client.request_text(request))
                        .await
                        .context("GET /readyz timed out")??;
                anyhow::ensure!(text.trim() == "ok", "GET /readyz: {text}");
                Ok("/readyz ok".into())
            }
            Health::Alive => Ok("running".into()),
            Health::Containerd { socket } => {
                let out = tokio::process::Command::new("ctr")
                    .args(["--address", &socket.display().to_string(), "version"])
                    .kill_on_drop(true)
                    .output();
                let out = tokio::time::timeout(Duration::from_secs(3), out)
                    .await
                    .context("ctr version timed out")??;
                anyhow::ensure!(
                    out.status.success(),
                    "ctr version: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                Ok("answers on its socket".into())
            }
        }
    }

    /// A client with the credentials (and CA) of `kubeconfigs/<identity>.conf`,
    /// talking to `url` instead of the kubeconfig's server when given.
    async fn client_for(&self, identity: &str, url: Option<&str>) -> anyhow::Result<kube::Client> {
        let path = self.layout.path(&format!("kubeconfigs/{identity}.conf"));
        let kubeconfig = kube::config::Kubeconfig::read_from(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        if let Some(url) = url {
            config.cluster_url = url.parse()?;
        }
        Ok(kube::Client::try_from(config)?)
    }

    /// A client with the admin credentials.
    ///
    /// # Errors
    /// The admin kubeconfig is missing or unusable.
    pub async fn admin_client(&self) -> anyhow::Result<kube::Client> {
        let path = self.layout.admin_kubeconfig();
        let kubeconfig = kube::config::Kubeconfig::read_from(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// Every component's state, with the reason for anything unhealthy.
    pub async fn status(&self) -> Vec<ComponentStatus> {
        let mut all: Vec<(Supervisor, String, Component)> = self
            .components()
            .into_iter()
            .map(|c| (self.supervisor.clone(), c.daemon.name.to_owned(), c))
            .collect();
        for n in self.shape.extra() {
            let supervisor = node::supervisor(&self.layout, n);
            for c in node::components(&self.layout, &self.bins, n) {
                let name = format!("{}@{}", c.daemon.name, n.name);
                all.push((supervisor.clone(), name, c));
            }
        }
        let mut out = Vec::new();
        for (supervisor, name, c) in all {
            let daemon = c.daemon.name;
            let state = match supervisor.running(daemon) {
                None if supervisor.log_path(daemon).exists() => Err(format!(
                    "not running; last log lines:\n{}",
                    indent(&supervisor.log_tail(daemon, 8))
                )),
                None => Err("not running".into()),
                Some(pid) => match self.check_health(&c.health).await {
                    Ok(detail) => Ok(format!("pid {pid}, {detail}")),
                    Err(e) => Err(format!("pid {pid} runs but is unhealthy: {e:#}")),
                },
            };
            out.push(ComponentStatus { name, state });
        }
        out
    }

    /// Stops everything `up` started and removes what it created.
    ///
    /// # Errors
    /// Something could not be removed; the message lists what is left.
    pub fn down(&self) -> anyhow::Result<()> {
        for n in self.shape.extra() {
            node::stop(&self.layout, &self.bins, n);
        }
        let socket = self.layout.containerd_socket().display().to_string();
        for name in ["kube-proxy", "kubelet"] {
            self.supervisor.stop(name, Duration::from_secs(10));
        }
        // Pods: every containerd shim of this cluster, and all they started.
        let all = process::processes();
        let shims: Vec<u32> = all
            .iter()
            .filter(|p| p.cmdline.contains("containerd-shim") && p.cmdline.contains(&socket))
            .map(|p| p.pid)
            .collect();
        process::kill_all(&process::with_descendants(&all, &shims));
        for c in self.components().iter().rev() {
            self.supervisor.stop(c.daemon.name, Duration::from_secs(10));
        }
        // Safety net: anything else still running from the state directory.
        let root = self.layout.root.display().to_string();
        let strays: Vec<u32> = process::processes()
            .iter()
            .filter(|p| p.cmdline.contains(&root))
            .map(|p| p.pid)
            .collect();
        process::kill_all(&strays);

        let before = BeforeUp::load(&self.layout.before_up()).unwrap_or_default();
        let mut problems = Vec::new();
        for n in self.shape.extra() {
            problems.extend(node::tear_down(&self.layout, n));
        }
        // Nodes of a shape no record names any more (a state directory removed by hand).
        for ns in node::node_netns() {
            if let Err(e) = network::run("ip", &["netns", "delete", &ns]) {
                problems.push(format!("network namespace {ns}: {e:#}"));
            }
        }
        while node::pod_to_pod_rule_present() {
            if let Err(e) = network::run("iptables", &node::pod_to_pod_rule("-D")) {
                problems.push(format!("iptables pod-to-pod rule: {e:#}"));
                break;
            }
        }
        for mount in layout::mounts_under(&self.layout.root) {
            if let Err(e) = nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH) {
                problems.push(format!("unmount {}: {e}", mount.display()));
            }
        }
        problems.extend(network::tear_down(&before));
        if self.layout.root.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.layout.root) {
                problems.push(format!("remove {}: {e}", self.layout.root.display()));
            }
        }
        let left = self.leftovers();
        problems.extend(left);
        if problems.is_empty() {
            Ok(())
        } else {
            bail!(
                "the cluster was stopped but not everything was removed:\n  - {}",
                problems.join("\n  - ")
            )
        }
    }

    /// What of a cluster is still on the machine: processes, mounts, the bridge,
    /// network namespaces, iptables chains, the node address, the state directory.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        let root = self.layout.root.display().to_string();
        let names: Vec<String> = self
            .components()
            .iter()
            .map(|c| c.daemon.program.display().to_string())
            .collect();
        for p in process::processes() {
            let ours = p.cmdline.contains(&root)
                || names
                    .iter()
                    .any(|n| p.cmdline.starts_with(n.as_str()) && p.cmdline.contains(&root));
            if ours {
                left.push(format!(
                    "process {} ({})",
                    p.pid,
                    p.cmdline.chars().take(120).collect::<String>()
                ));
            }
        }
        left.extend(
            layout::mounts_under(&self.layout.root)
                .into_iter()
                .map(|m| format!("mount {}", m.display())),
        );
        if network::bridge_present() {
            left.push(format!("bridge {}", layout::BRIDGE));
        }
        if network::service_reject_present() {
            left.push(format!(
                "iptables FORWARD or OUTPUT rule rejecting {}",
                layout::SERVICE_CIDR
            ));
        }
        if node::pod_to_pod_rule_present() {
            left.push("iptables nat rule for pod-to-pod traffic across nodes".to_owned());
        }
        left.extend(
            node::node_netns()
                .into_iter()
                .map(|n| format!("network namespace {n} (a node)")),
        );
        left.extend(
            node::node_veths()
                .into_iter()
                .map(|n| format!("veth {n} (a node's link)")),
        );
        let before = BeforeUp::load(&self.layout.before_up()).unwrap_or_default();
        left.extend(
            network::cni_netns()
                .into_iter()
                .filter(|n| !before.netns.contains(n))
                .map(|n| format!("network namespace {n}")),
        );
        left.extend(
            network::cluster_chains()
                .into_iter()
                .map(|c| format!("iptables chain {c}")),
        );
        if network::node_ip_present() && !before.node_ip_present {
            left.push(format!("address {NODE_IP} on lo"));
        }
        if self.layout.root.exists() && !self.layout.before_up().exists() {
            left.push(format!("state directory {}", self.layout.root.display()));
        }
        left
    }

    /// Copies the component logs out of the state directory (which `down` removes).
    fn save_logs(&self) -> PathBuf {
        let target =
            std::env::temp_dir().join(format!("testware-cluster-logs-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&target);
        if let Ok(entries) = std::fs::read_dir(self.layout.logs()) {
            for e in entries.filter_map(Result::ok) {
                let _ = std::fs::copy(e.path(), target.join(e.file_name()));
            }
        }
        target
    }

    /// Writes the admin kubeconfig to `path` (the well-known copy under `target/`).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn export_kubeconfig(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let pki = Pki::new(self.layout.pki());
        let text = pki.kubeconfig(&ADMIN, &layout::apiserver_url())?;
        let mut text = crate::kubeconfig::with_image_import(
            &text,
            &crate::images::node_sockets(&self.layout),
        )?;
        if self.shape.is_multi_node() {
            text = crate::kubeconfig::with_node_control(&text, &self.layout)?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        // It holds the admin key: readable by the owner only.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        Ok(())
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("      {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fails when something already listens on `addr`, naming it if `ss` can.
fn check_port_free(addr: &str, what: &str) -> anyhow::Result<()> {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Ok(()),
        Err(e) => {
            let port = addr.rsplit(':').next().unwrap_or_default();
            let owner = network::output("ss", &["-Hltnp", &format!("sport = :{port}")])
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .map(|o| format!(" (held by: {o})"))
                .unwrap_or_default();
            bail!("port {addr} for {what} is not free: {e}{owner} (hint: stop what holds it, or `testware cluster down` if it is an old cluster)")
        }
    }
}

/// A plain HTTP/1.0 GET on loopback, at most 3 s; returns status and body.
async fn http_get(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let socket: std::net::SocketAddr = addr
        .parse()
        .with_context(|| format!("health address {addr:?} is not ip:port"))?;
    tokio::time::timeout(
        Duration::from_secs(3),
        testware::net::http_request(socket, "GET", path, b""),
    )
    .await
    .with_context(|| format!("GET http://{addr}{path} timed out"))?
    .with_context(|| format!("GET http://{addr}{path}"))
}

/// `3 nodes: testware (system, tainted), testware-2 (processing), …`.
fn describe(shape: &Shape) -> String {
    let nodes: Vec<String> = shape
        .nodes
        .iter()
        .map(|n| match (&n.group, n.tainted) {
            (Some(g), true) => format!("{} ({g}, tainted)", n.name),
            (Some(g), false) => format!("{} ({g})", n.name),
            (None, _) => n.name.clone(),
        })
        .collect();
    nodes.join(", ")
}

/// Waits until node `name` is Ready and carries no taint that keeps new pods
/// off it (the node controller removes `node.kubernetes.io/not-ready` once it
/// sees it Ready) but its group's own.
///
/// # Errors
/// The node is not schedulable within `timeout` (with its conditions and taints).
pub async fn wait_schedulable(
    client: &kube::Client,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
    let takes_pods = |node: Option<&k8s_openapi::api::core::v1::Node>| {
        node.is_some_and(|n| node_schedulable(n).is_ok())
    };
    let watched = tokio::time::timeout(
        timeout,
        kube::runtime::wait::await_condition(nodes.clone(), name, takes_pods),
    )
    .await;
    if let Ok(Ok(_)) = watched {
        return Ok(());
    }
    let why = match nodes.get_opt(name).await {
        Ok(Some(node)) => node_schedulable(&node).err().unwrap_or_default(),
        Ok(None) => "not registered".to_owned(),
        Err(e) => format!("cannot be read: {e}"),
    };
    bail!(
        "node {name} takes no pods after {timeout:?}: {why} (hint: the kubelet's log, `testware cluster status`)"
    )
}

/// Whether `node` takes new pods: Ready, and no `NoSchedule` or `NoExecute` taint.
fn node_schedulable(node: &k8s_openapi::api::core::v1::Node) -> Result<(), String> {
    let status = node.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
    match ready {
        Some(c) if c.status == "True" => {}
        Some(c) => {
            return Err(format!(
                "Ready={} ({})",
                c.status,
                c.message.clone().unwrap_or_default()
            ))
        }
        None => return Err("no Ready condition yet".to_owned()),
    }
    let taints: Vec<String> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .filter(|t| t.key != GROUP_LABEL)
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect();
    if taints.is_empty() {
        Ok(())
    } else {
        Err(format!("tainted {}", taints.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_takes_pods_once_ready_and_untainted() {
        let node = |ready: &str, taints: &str| -> k8s_openapi::api::core::v1::Node {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "testware"},
                "spec": {"taints": serde_json::from_str::<serde_json::Value>(taints).unwrap()},
                "status": {"conditions": [{"type": "Ready", "status": ready, "message": "PLEG is not healthy"}]}
            }))
            .unwrap()
        };
        let not_ready = r#"[{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]"#;
        assert_eq!(
            node_schedulable(&node("False", "[]")),
            Err("Ready=False (PLEG is not healthy)".to_owned())
        );
        assert_eq!(
            node_schedulable(&node("True", not_ready)),
            Err("tainted node.kubernetes.io/not-ready:NoSchedule".to_owned())
        );
        let prefer = r#"[{"key": "x", "effect": "PreferNoSchedule"}]"#;
        assert_eq!(node_schedulable(&node("True", prefer)), Ok(()));
        assert!(node_schedulable(&Default::default()).is_err());
    }
}
