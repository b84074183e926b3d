//! Entrypoint of the InfluxDB image: starts `influxd` with the container's
//! arguments, creates the databases named in `INFLUXDB_DB` (comma-separated)
//! once it answers `/ping` — as the upstream image's init script does — and then
//! stays in front of it, forwarding SIGTERM/SIGINT and exiting with its status.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const INFLUXD: &str = "/usr/bin/influxd";

/// The HTTP port from the `bind-address` of the config file given with `-config`.
fn http_port(args: &[String]) -> u16 {
    let config = args
        .windows(2)
        .find(|w| w[0] == "-config")
        .map(|w| w[1].clone());
    let text = config
        .and_then(|path| std::fs::read_to_string(path).ok())
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("bind-address"))
        .filter_map(|rest| rest.split('"').nth(1))
        .filter_map(|addr| addr.rsplit(':').next()?.parse().ok())
        .find(|port| *port != 8088)
        .unwrap_or(8086)
}

async fn http(port: u16, request: &str) -> anyhow::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no HTTP status")
}

/// Percent-encodes a query parameter.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn create_databases(port: u16, names: &[String]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(port, "GET /ping HTTP/1.0\r\n\r\n").await.ok() != Some(204) {
        if Instant::now() > deadline {
            bail!("influxd did not answer /ping on port {port} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for name in names {
        let query = encode(&format!("CREATE DATABASE \"{name}\""));
        let status = http(
            port,
            &format!("POST /query?q={query} HTTP/1.0\r\nContent-Length: 0\r\n\r\n"),
        )
        .await?;
        if status != 200 {
            bail!("CREATE DATABASE {name} answered {status}");
        }
        eprintln!("influxdb-entrypoint: database {name} ready");
    }
    Ok(())
}

async fn run() -> anyhow::Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let args: Vec<String> = std::env::args().skip(1).collect();
    let databases: Vec<String> = std::env::var("INFLUXDB_DB")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let mut child = tokio::process::Command::new(INFLUXD)
        .args(&args)
        .spawn()
        .with_context(|| format!("starting {INFLUXD}"))?;
    let pid = child.id().context("influxd has no pid")?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let port = http_port(&args);
    let init = create_databases(port, &databases);
    tokio::pin!(init);
    let mut init_done = databases.is_empty();
    loop {
        tokio::select! {
            status = child.wait() => return Ok(status?.code().unwrap_or(1)),
            result = &mut init, if !init_done => {
                init_done = true;
                if let Err(e) = result {
                    eprintln!("influxdb-entrypoint: {e:#}");
                    let _ = child.start_kill();
                    let _ = child.wait().await;
                    return Ok(1);
                }
            }
            _ = term.recv() => forward(pid, Signal::SIGTERM),
            _ = int.recv() => forward(pid, Signal::SIGINT),
        }
    }
}

/// Forwards a signal to influxd.
fn forward(pid: u32, signal: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), signal);
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(code) => std::process::ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("influxdb-entrypoint: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
