//! Deleting a run's namespaces and claimed cluster-scoped objects when the run is interrupted (SIGINT, SIGTERM).

use std::time::Duration;

use crate::cluster;
use crate::config::RunConfig;

/// On SIGINT or SIGTERM (Ctrl-C; nextest stopping a run or a slow case), deletes
/// every namespace of this run and awaits it, then exits 130 or 143. Runs on its
/// own thread and runtime, so it works while cases block theirs.
pub(crate) fn clean_up_on_signal(config: RunConfig) {
    let spawned = std::thread::Builder::new()
        .name("signal-cleanup".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut interrupt), Ok(mut terminate)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    eprintln!("warning: cannot handle SIGINT/SIGTERM; a killed run leaves its namespaces to the janitor");
                    return;
                };
                let (name, code) = tokio::select! {
                    _ = interrupt.recv() => ("SIGINT", 130),
                    _ = terminate.recv() => ("SIGTERM", 143),
                };
                eprintln!(
                    "\n{name}: deleting the namespaces of run {} before exiting",
                    config.run_id
                );
                let deleted = match cluster::client(&config).await {
                    Ok(client) => {
                        let deleted = crate::cluster::namespace::delete_run_namespaces(
                            &client,
                            &config.run_id,
                            SIGNAL_CLEANUP,
                        )
                        .await;
                        // Then the cluster-scoped objects its releases claimed.
                        if let Ok(objects) = crate::cluster::claims::reap_run(&client, &config.run_id).await {
                            if !objects.is_empty() {
                                eprintln!("{name}: deleted cluster-scoped objects: {}", objects.join(", "));
                            }
                        }
                        deleted
                    }
                    Err(e) => {
                        eprintln!("error: {}", crate::error_chain(&e));
                        std::process::exit(code);
                    }
                };
                match deleted {
                    Ok(names) => eprintln!("{name}: deleted {} namespace(s): {}", names.len(), names.join(", ")),
                    Err(e) => eprintln!(
                        "{name}: cleanup failed ({}); the janitor of a later run deletes what is left",
                        crate::error_chain(&e)
                    ),
                }
                std::process::exit(code);
            });
        });
    if let Err(e) = spawned {
        eprintln!("warning: cannot start the signal handler thread: {e}");
    }
}

/// How long the signal handler waits for the run's namespaces to go (nextest
/// sends SIGKILL 10 s after SIGTERM by default).
const SIGNAL_CLEANUP: Duration = Duration::from_secs(8);
