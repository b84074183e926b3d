//! The echo server: `POST /echo` writes the request body to stdout (one line per
//! line of the body), so tests can check that what a pod prints reaches its log
//! pipeline; `GET /healthz` answers `ok` for the probes.
//!
//! Usage: `echo-server [--listen ADDR]` (default `0.0.0.0:8080`). Stops on SIGTERM.

use std::io::Write;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

/// The server's routes.
fn app() -> Router {
    Router::new()
        .route("/echo", post(echo))
        .route("/healthz", get(|| async { "ok\n" }))
}

/// Writes the body to stdout, ending it with a newline, and flushes so the line
/// reaches the container log at once.
async fn echo(body: Bytes) -> (StatusCode, String) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(&body)
        .and_then(|()| {
            if body.ends_with(b"\n") {
                Ok(())
            } else {
                out.write_all(b"\n")
            }
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => (StatusCode::OK, format!("{}\n", body.len())),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to write to stdout: {e}\n"),
        ),
    }
}

/// The server's options.
#[derive(clap::Parser)]
#[command(
    name = "echo-server",
    about = "POST /echo prints the body; GET /healthz"
)]
struct Options {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! { _ = term.recv() => {}, _ = tokio::signal::ctrl_c() => {} }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let addr = <Options as clap::Parser>::parse().listen;
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: failed to listen on {addr}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    eprintln!("echo-server listening on {addr}");
    if let Err(e) = axum::serve(listener, app())
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        eprintln!("error: server failed: {e}");
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_address_is_parsed_or_refused() {
        use clap::Parser as _;
        let parse = |args: &[&str]| Options::try_parse_from([&["echo-server"], args].concat());
        assert_eq!(parse(&[]).unwrap().listen.port(), 8080);
        assert_eq!(
            parse(&["--listen", "127.0.0.1:9"]).unwrap().listen.port(),
            9
        );
        assert!(parse(&["--listen", "nope"]).is_err());
        assert!(parse(&["--port"]).is_err());
    }

    /// The real server on a free loopback port, spoken to over TCP.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn echo_and_healthz_answer_over_http() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app()).await });
        let request = |raw: String| async move {
            let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.write_all(raw.as_bytes()).await.unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).await.unwrap();
            response
        };
        let health =
            request("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into()).await;
        assert!(
            health.starts_with("HTTP/1.1 200") && health.ends_with("ok\n"),
            "{health}"
        );
        let echoed = request(
            "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello"
                .into(),
        )
        .await;
        assert!(
            echoed.starts_with("HTTP/1.1 200") && echoed.ends_with("5\n"),
            "{echoed}"
        );
        let wrong =
            request("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into()).await;
        assert!(wrong.starts_with("HTTP/1.1 405"), "{wrong}");
        server.abort();
    }
}
