//! The `hello` chart's server: `GET /healthz` answers `ok`, `GET /` a greeting.
//! Listens on 0.0.0.0:8080; stops on SIGTERM.

use axum::routing::get;
use axum::Router;
use tokio::signal::unix::{signal, SignalKind};

fn main() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = Router::new()
            .route("/", get(|| async { "hello\n" }))
            .route("/healthz", get(|| async { "ok\n" }));
        let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
        let mut term = signal(SignalKind::terminate())?;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                term.recv().await;
            })
            .await
    })
}
