//! The in-cluster test helper image: small commands that tests exec in pods of
//! a `FROM scratch` image, where no shell exists.
//!
//! ```text
//! testware-toolbox sleep                      wait for SIGTERM
//! testware-toolbox resolve NAME               A records of NAME, via the pod's /etc/resolv.conf
//! testware-toolbox http-get URL               GET an http:// URL (name resolved as above), print the body
//! testware-toolbox http-get --retry-for S URL the same, retrying failures for up to S seconds
//!                                             (a Service a moment old may not route yet)
//! testware-toolbox write FILE TEXT            write TEXT to FILE
//! testware-toolbox read FILE                  print FILE
//! testware-toolbox echo TEXT...               print TEXT
//! ```
//!
//! Names are resolved with the project's own DNS client: a static glibc binary
//! cannot use the system resolver, and going through resolv.conf is what pods do.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The toolbox image as the local cluster holds it (built by `testware cluster up`).
pub const IMAGE: &str = concat!("localhost/testware-toolbox:", env!("CARGO_PKG_VERSION"));

/// A pod of the toolbox image that sleeps until deleted, optionally with the
/// claim `volume_claim` mounted at `/data`; tests exec toolbox commands in it.
///
/// # Errors
/// Never in practice (the JSON is fixed); a `Result` for `?` in cases.
pub fn pod(
    name: &str,
    volume_claim: Option<&str>,
) -> Result<k8s_openapi::api::core::v1::Pod, serde_json::Error> {
    let mut spec = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{
                "name": "toolbox",
                "image": IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "args": ["sleep"],
                "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false}
            }]
        }
    });
    if let Some(claim) = volume_claim {
        spec["spec"]["containers"][0]["volumeMounts"] =
            serde_json::json!([{"name": "data", "mountPath": "/data"}]);
        spec["spec"]["volumes"] =
            serde_json::json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]);
    }
    serde_json::from_value(spec)
}

/// Nameservers and search domains from resolv.conf.
fn resolv_conf() -> (Vec<IpAddr>, Vec<String>) {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut servers = Vec::new();
    let mut search = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                servers.extend(words.next().and_then(|w| w.parse::<IpAddr>().ok()))
            }
            Some("search") => search = words.map(str::to_owned).collect(),
            _ => {}
        }
    }
    (servers, search)
}

/// Resolves `name` as a stub resolver would: as given when it ends in a dot or
/// has dots, else through the search domains first.
async fn resolve(name: &str) -> anyhow::Result<Vec<std::net::Ipv4Addr>> {
    if let Ok(ip) = name.parse::<std::net::Ipv4Addr>() {
        return Ok(vec![ip]);
    }
    let (servers, search) = resolv_conf();
    let server = *servers
        .first()
        .context("no nameserver in /etc/resolv.conf")?;
    let mut candidates = Vec::new();
    if name.ends_with('.') {
        candidates.push(name.to_owned());
    } else {
        if name.matches('.').count() >= 4 {
            candidates.push(format!("{name}."));
        }
        candidates.extend(search.iter().map(|d| format!("{name}.{d}.")));
        candidates.push(format!("{name}."));
    }
    let mut last = None;
    for candidate in &candidates {
        match crate::dns::query_a(
            SocketAddr::new(server, 53),
            candidate,
            Duration::from_secs(3),
        )
        .await
        {
            Ok(ips) if !ips.is_empty() => return Ok(ips),
            Ok(_) => last = Some(anyhow::anyhow!("{candidate}: no address")),
            Err(e) => last = Some(e.context(candidate.clone())),
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("nothing to look up"))
        .context(format!("resolving {name} via {server}")))
}

async fn http_get(url: &str) -> anyhow::Result<String> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (authority, path) = rest
        .split_once('/')
        .map(|(a, p)| (a, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().context("bad port")?),
        None => (authority, 80),
    };
    let ip = *resolve(host).await?.first().context("no address")?;
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect((ip, port)),
    )
    .await
    .with_context(|| format!("connecting to {ip}:{port} timed out"))??;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .context("reading timed out")??;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET {url}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_owned())
}

/// The toolbox's commands.
#[derive(Parser)]
#[command(name = "testware-toolbox", about = "Small commands tests exec in pods")]
struct Toolbox {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Wait for SIGTERM.
    Sleep,
    /// Print the A records of NAME, via the pod's /etc/resolv.conf.
    Resolve { name: String },
    /// GET an http:// URL and print the body.
    HttpGet {
        /// Retry failures for up to this many seconds (a Service a moment old
        /// may not route yet).
        #[arg(long, value_name = "SECONDS")]
        retry_for: Option<u64>,
        url: String,
    },
    /// Write TEXT to FILE.
    Write { file: String, text: String },
    /// Print FILE.
    Read { file: String },
    /// Print TEXT.
    Echo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        text: Vec<String>,
    },
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Sleep => {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            term.recv().await;
        }
        Command::Resolve { name } => {
            for ip in resolve(&name).await? {
                println!("{ip}");
            }
        }
        Command::HttpGet {
            retry_for: None,
            url,
        } => print!("{}", http_get(&url).await?),
        Command::HttpGet {
            retry_for: Some(seconds),
            url,
        } => {
            let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
            let body = loop {
                match http_get(&url).await {
                    Ok(body) => break body,
                    Err(e) if tokio::time::Instant::now() < until => {
                        eprintln!("retrying: {e:#}");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => return Err(e.context(format!("still failing after {seconds} s"))),
                }
            };
            print!("{body}");
        }
        Command::Write { file, text } => {
            std::fs::write(&file, text).with_context(|| format!("writing {file}"))?
        }
        Command::Read { file } => print!(
            "{}",
            std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?
        ),
        Command::Echo { text } => println!("{}", text.join(" ")),
    }
    Ok(())
}

/// Runs the toolbox with `args` (the program name first).
pub(crate) fn main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    match Toolbox::try_parse_from(args) {
        Ok(toolbox) => crate::run_current_thread(run(toolbox.command)),
        Err(e) => crate::usage_error(e),
    }
}
