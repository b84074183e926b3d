//! The small kit the charts' components share: settings from the environment,
//! SIGTERM, the health and metrics endpoints, and `main`'s exit code. Each
//! component keeps only what is its own (what makes it healthy, its counters).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::watch;

/// A required environment variable.
///
/// # Errors
/// It is unset or empty (named in the error).
pub fn env(name: &str) -> anyhow::Result<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .with_context(|| format!("environment variable {name} is not set"))
}

/// An optional environment variable parsed as `T`, or `default`.
///
/// # Errors
/// The variable is set but does not parse.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name).ok().filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("environment variable {name}={v:?} is not valid")),
    }
}

/// Exits the process (status 0) on SIGTERM: for components with nothing in
/// flight worth finishing.
pub fn exit_on_sigterm() {
    tokio::spawn(async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
            eprintln!("SIGTERM: exiting");
            std::process::exit(0);
        }
    });
}

/// A flag that turns `true` on SIGTERM: for components that finish what is in
/// flight first (`changed()` resolves at the signal).
pub fn stop_on_sigterm() -> watch::Receiver<bool> {
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
                let _ = stop_tx.send(true);
            }
            Err(e) => eprintln!("warning: no SIGTERM handler: {e}"),
        }
        // Keep the sender: a closed channel would read as a stop.
        std::future::pending::<()>().await;
    });
    stop
}

/// `GET /healthz` (200 while `healthy`, else 503 with `why_not`: the readiness
/// probe) and `GET /livez` (200 while the process answers: the liveness probe,
/// which must not depend on anything outside, or an outage of a dependency
/// would restart every component). Components add their own routes
/// (`/metrics`).
pub fn health_router(healthy: Arc<AtomicBool>, why_not: &'static str) -> axum::Router {
    axum::Router::new()
        .route(
            "/healthz",
            get(move || {
                let healthy = healthy.clone();
                async move {
                    if healthy.load(Ordering::Relaxed) {
                        (StatusCode::OK, "ok\n")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, why_not)
                    }
                }
            }),
        )
        .route("/livez", get(|| async { "alive\n" }))
}

/// `/metrics` answering the JSON `metrics` makes.
pub fn with_metrics(
    router: axum::Router,
    metrics: impl Fn() -> serde_json::Value + Clone + Send + Sync + 'static,
) -> axum::Router {
    router.route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move { axum::Json(metrics()) }
        }),
    )
}

/// Serves `router` on `addr` in the background; a failure is printed.
pub fn spawn_serve(addr: String, router: axum::Router) {
    tokio::spawn(async move {
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(listener) => {
                if let Err(e) = axum::serve(listener, router).await {
                    eprintln!("error: the HTTP endpoint {addr} stopped: {e}");
                }
            }
            Err(e) => eprintln!("error: cannot bind the HTTP endpoint {addr}: {e}"),
        }
    });
}

/// The exit code for `main`: the error chain printed on failure.
pub fn exit_code(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_settings_parse_or_say_which_is_wrong() {
        assert_eq!(env_or("COMPONENT_KIT_TEST_UNSET", 7u32).unwrap(), 7);
        std::env::set_var("COMPONENT_KIT_TEST_BAD", "seven");
        let e = env_or("COMPONENT_KIT_TEST_BAD", 7u32).unwrap_err();
        assert!(
            e.to_string().contains("COMPONENT_KIT_TEST_BAD=\"seven\""),
            "{e}"
        );
        assert!(env("COMPONENT_KIT_TEST_UNSET").is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn health_answers_from_the_flag_and_liveness_always() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let healthy = Arc::new(AtomicBool::new(false));
        let router = with_metrics(
            health_router(healthy.clone(), "not yet\n"),
            || serde_json::json!({"n": 1}),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let get = |path: &'static str| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        };
        assert!(get("/healthz").await.starts_with("HTTP/1.1 503"));
        assert!(get("/livez").await.starts_with("HTTP/1.1 200"));
        healthy.store(true, Ordering::Relaxed);
        assert!(get("/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/metrics").await.ends_with("{\"n\":1}"));
    }
}
