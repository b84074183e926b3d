//! The local cluster's in-cluster addons: `cluster-dns` (answers
//! `cluster.local` from the API), `local-path-provisioner` (hostPath volumes),
//! `testware-pause` (the sandbox image) and `testware-toolbox` (names, URLs and
//! files from inside pods). The host side that starts the cluster and installs
//! them is the crate `local-cluster`.
//!
//! They are not programs of their own: the `testware` command is a multi-call
//! binary that runs an addon when it is started under the addon's name (as
//! busybox does), so an installed `testware` can make the addons' images from
//! itself — no source tree, no second toolchain run at `cluster up`.

use std::ffi::OsString;
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;

mod cluster_dns;
pub mod dns;
pub mod health;
mod local_path_provisioner;
mod pause;
pub mod toolbox;

/// The addons' program names: each is an image `localhost/<name>` whose
/// entrypoint is `/<name>`, a link to the multi-call binary.
pub const ADDONS: [&str; 4] = [
    "testware-pause",
    "cluster-dns",
    "local-path-provisioner",
    "testware-toolbox",
];

/// Runs the addon that `args[0]` names (its file name), or `None` when the
/// program was started under another name.
pub fn run_if_invoked_as_addon(args: Vec<OsString>) -> Option<ExitCode> {
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())?
        .to_owned();
    Some(match name.as_str() {
        "testware-pause" => pause::main(),
        "cluster-dns" => cluster_dns::main(args),
        "local-path-provisioner" => local_path_provisioner::main(args),
        "testware-toolbox" => toolbox::main(args),
        _ => return None,
    })
}

/// Runs `work` on a current-thread runtime; the error chain is printed on failure.
fn run_current_thread(work: impl Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: failed to start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Prints clap's usage error (or help) and returns its exit code.
fn usage_error(error: clap::Error) -> ExitCode {
    let _ = error.print();
    ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_program_names_are_not_addons() {
        assert!(run_if_invoked_as_addon(vec!["/usr/bin/testware".into()]).is_none());
        assert!(run_if_invoked_as_addon(Vec::new()).is_none());
    }

    #[test]
    fn addons_parse_their_options_with_clap() {
        // --help is answered by clap and exits successfully without running anything.
        for addon in ["cluster-dns", "local-path-provisioner", "testware-toolbox"] {
            let code = run_if_invoked_as_addon(vec![format!("/{addon}").into(), "--help".into()]);
            assert_eq!(code, Some(ExitCode::SUCCESS), "{addon}");
        }
        let code = run_if_invoked_as_addon(vec!["/cluster-dns".into(), "--nope".into()]);
        assert_eq!(code, Some(ExitCode::from(2)));
    }
}
