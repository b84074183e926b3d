//! The local provider: a real single-node Kubernetes from host binaries (etcd,
//! the Kubernetes components built from Debian's source package, containerd +
//! runc, the CNI bridge), its addons, and the pipeline that builds the images of
//! the charts under test and loads them into a cluster.
//!
//! The `testware-cluster` binary is the interface; `ci/cluster` and `ci/images`
//! are thin wrappers around it.

pub mod addons;
pub mod cluster;
pub mod components;
pub mod dns;
pub mod health;
pub mod images;
pub mod layout;
pub mod network;
pub mod pki;
pub mod process;

/// The exit code for a binary's `main`: the error chain printed on failure.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
