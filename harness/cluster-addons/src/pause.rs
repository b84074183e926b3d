//! The pod sandbox process (the "pause" image): holds the pod's namespaces,
//! reaps orphaned children, and exits on SIGTERM or SIGINT.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Runs the sandbox process until SIGTERM or SIGINT.
pub fn main() -> std::process::ExitCode {
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        signals.add(s);
    }
    if let Err(e) = signals.thread_block() {
        eprintln!("error: failed to block signals: {e}");
        return std::process::ExitCode::FAILURE;
    }
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => reap(),
            Ok(_) => return std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: sigwait failed: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
}

/// Collects every exited child.
fn reap() {
    while let Ok(status) = waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
        if matches!(status, WaitStatus::StillAlive) {
            break;
        }
    }
}
