//! Daemons that outlive the `up` command: started in their own process group
//! with output to a log file, tracked by pid files, stopped with SIGTERM and then
//! SIGKILL. Also the `/proc` scanning that teardown uses to find every process
//! the cluster started (containerd shims and their containers included).

use std::collections::HashMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// A long-running component.
#[derive(Debug, Clone)]
pub struct Daemon {
    /// Component name (pid and log file names).
    pub name: &'static str,
    /// The binary.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// A command that runs it (`nsenter … --` into a node's namespaces), or empty.
    /// It must exec the program, so the pid stays the daemon's.
    pub prefix: Vec<String>,
}

/// Starts, finds and stops daemons; pid files in `run_dir`, logs in `log_dir`.
#[derive(Debug, Clone)]
pub struct Supervisor {
    run_dir: PathBuf,
    log_dir: PathBuf,
}

impl Supervisor {
    /// A supervisor over the given directories.
    pub fn new(run_dir: PathBuf, log_dir: PathBuf) -> Self {
        Self { run_dir, log_dir }
    }

    /// The log file of `name`.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    fn pid_path(&self, name: &str) -> PathBuf {
        self.run_dir.join(format!("{name}.pid"))
    }

    /// Starts `daemon` detached (own process group, stdin closed, output to its log).
    ///
    /// # Errors
    /// The binary does not exist or cannot be started, or a file cannot be written.
    /// Returns the child, so the caller can see it exit while it waits for health;
    /// dropping it does not stop the daemon.
    pub fn start(&self, daemon: &Daemon) -> anyhow::Result<std::process::Child> {
        std::fs::create_dir_all(&self.run_dir)?;
        std::fs::create_dir_all(&self.log_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(daemon.name))
            .with_context(|| format!("opening the log of {}", daemon.name))?;
        let mut command = match daemon.prefix.split_first() {
            Some((runner, runner_args)) => {
                let mut c = Command::new(runner);
                c.args(runner_args).arg(&daemon.program);
                c
            }
            None => Command::new(&daemon.program),
        };
        let child = command
            .args(&daemon.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| {
                format!(
                    "failed to start {} ({})",
                    daemon.name,
                    daemon.program.display()
                )
            })?;
        let pid = child.id();
        // /proc/<pid>/exe shows the resolved binary; record that (the program may be a symlink).
        let program =
            std::fs::canonicalize(&daemon.program).unwrap_or_else(|_| daemon.program.clone());
        std::fs::write(
            self.pid_path(daemon.name),
            format!(
                "{pid}
{}
",
                program.display()
            ),
        )?;
        Ok(child)
    }

    /// The pid of `name` if it runs (the pid file names a live process running the
    /// recorded binary, so a reused pid is not mistaken for it).
    pub fn running(&self, name: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.pid_path(name)).ok()?;
        let mut lines = text.lines();
        let pid: u32 = lines.next()?.trim().parse().ok()?;
        let program = lines.next()?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
        let alive = !is_zombie(pid);
        (alive && exe.to_string_lossy().trim_end_matches(" (deleted)") == program).then_some(pid)
    }

    /// Stops `name`: SIGTERM to its process group, SIGKILL after `grace`.
    /// Returns whether it was running.
    pub fn stop(&self, name: &str, grace: Duration) -> bool {
        let was_running = match self.running(name) {
            Some(pid) => {
                terminate_group(pid, grace);
                true
            }
            None => false,
        };
        let _ = std::fs::remove_file(self.pid_path(name));
        was_running
    }

    /// The last `n` lines of the log of `name`.
    pub fn log_tail(&self, name: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// SIGTERM to the group led by `pid`, then SIGKILL to what is left after `grace`.
pub fn terminate_group(pid: u32, grace: Duration) {
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && alive(pid) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = killpg(group, Signal::SIGKILL);
    let _ = kill(group, Signal::SIGKILL);
    // The leader and every member of its group, until the kernel has ended them
    // (a loaded machine can take a moment after SIGKILL).
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && (alive(pid) || !group_members(pid).is_empty()) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The live (not zombie) processes of process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                return false;
            };
            let mut fields = after.split_whitespace();
            let state = fields.next().and_then(|s| s.chars().next());
            let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
            group == Some(pgid) && !matches!(state, Some('Z' | 'X'))
        })
        .collect()
}

/// `true` if `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|(state, _)| state == 'Z')
}

/// State and parent pid from `/proc/<pid>/stat`.
fn stat_fields(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// One process seen in `/proc`.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// Its command line, arguments joined by spaces.
    pub cmdline: String,
}

/// Every process on the machine.
pub fn processes() -> Vec<ProcessInfo> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let (_, ppid) = stat_fields(pid)?;
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = raw
                .split(|b| *b == 0)
                .map(String::from_utf8_lossy)
                .collect::<Vec<_>>()
                .join(" ");
            Some(ProcessInfo {
                pid,
                ppid,
                cmdline: cmdline.trim().to_owned(),
            })
        })
        .collect()
}

/// `roots` and all their descendants, children first.
pub fn with_descendants(all: &[ProcessInfo], roots: &[u32]) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in all {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut order = Vec::new();
    fn visit(pid: u32, children: &HashMap<u32, Vec<u32>>, order: &mut Vec<u32>) {
        for child in children.get(&pid).into_iter().flatten() {
            visit(*child, children, order);
        }
        order.push(pid);
    }
    for root in roots {
        visit(*root, &children, &mut order);
    }
    order.dedup();
    order
}

/// SIGKILLs every pid and waits (briefly) until they are gone.
pub fn kill_all(pids: &[u32]) {
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && pids.iter().any(|p| alive(*p)) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_is_started_found_and_stopped_with_its_children() {
        let dir = std::env::temp_dir().join(format!("supervisor-test-{}", std::process::id()));
        let sup = Supervisor::new(dir.join("run"), dir.join("log"));
        let daemon = Daemon {
            name: "sleeper",
            program: PathBuf::from("/bin/sh"),
            args: vec!["-c".into(), "echo started; sleep 300 & wait".into()],
            prefix: Vec::new(),
        };
        let pid = sup.start(&daemon).unwrap().id();
        assert_eq!(sup.running("sleeper"), Some(pid));
        let deadline = Instant::now() + Duration::from_secs(5);
        while sup.log_tail("sleeper", 1) != "started" && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(sup.log_tail("sleeper", 1), "started");
        let family = with_descendants(&processes(), &[pid]);
        assert!(family.len() >= 2, "{family:?}");
        assert!(sup.stop("sleeper", Duration::from_secs(2)));
        assert!(family.iter().all(|p| !alive(*p)), "left over: {family:?}");
        assert_eq!(sup.running("sleeper"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
