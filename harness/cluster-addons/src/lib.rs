//! The local cluster's in-cluster addons, each a static binary in a `FROM
//! scratch` image: `cluster-dns` (answers `cluster.local` from the API),
//! `local-path-provisioner` (hostPath volumes), `testware-pause` (the sandbox
//! image) and `testware-toolbox` (names, URLs and files from inside pods). The
//! host side that starts the cluster and installs them is the crate
//! `local-cluster`.

pub mod dns;
pub mod health;

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
