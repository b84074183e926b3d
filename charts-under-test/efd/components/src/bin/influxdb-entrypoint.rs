//! Entrypoint of the InfluxDB image: starts `influxd` with the container's
//! arguments, creates the databases named in `INFLUXDB_DB` (comma-separated)
//! once it answers `/ping` — as the upstream image's init script does — and then
//! stays in front of it, forwarding SIGTERM/SIGINT and exiting with its status.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const INFLUXD: &str = "/usr/bin/influxd";

/// Where influxd serves HTTP, as influxd decides it: `INFLUXDB_HTTP_BIND_ADDRESS`
/// (the environment overrides the config file), else the `bind-address` of the
/// config file given with `-config` (other than the RPC one, 8088), else port 8086;
/// a wildcard or missing host is reached on loopback.
fn http_address(args: &[String], from_env: Option<String>) -> String {
    let from_config = || {
        let path = args.windows(2).find(|w| w[0] == "-config")?.get(1)?.clone();
        let text = std::fs::read_to_string(path).ok()?;
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("bind-address"))
            .filter_map(|rest| rest.split('"').nth(1).map(str::to_owned))
            .find(|addr| !addr.ends_with(":8088"))
    };
    let bind = from_env
        .filter(|a| !a.is_empty())
        .or_else(from_config)
        .unwrap_or_else(|| ":8086".to_owned());
    let (host, port) = bind.rsplit_once(':').unwrap_or(("", &bind));
    let host = if host.is_empty() || host == "0.0.0.0" {
        "127.0.0.1"
    } else {
        host
    };
    format!("http://{host}:{port}")
}

async fn create_databases(base: &str, names: &[String]) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let ping = format!("{base}/ping");
    while client
        .get(&ping)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .ok()
        != Some(204)
    {
        if Instant::now() > deadline {
            bail!("influxd did not answer {ping} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for name in names {
        let response = client
            .post(format!("{base}/query"))
            .query(&[("q", format!("CREATE DATABASE \"{name}\""))])
            .send()
            .await
            .with_context(|| format!("CREATE DATABASE {name} at {base}"))?;
        if !response.status().is_success() {
            bail!("CREATE DATABASE {name} answered {}", response.status());
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
    let base = http_address(&args, std::env::var("INFLUXDB_HTTP_BIND_ADDRESS").ok());
    let init = create_databases(&base, &databases);
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

#[cfg(test)]
mod tests {
    use super::http_address;

    #[test]
    fn the_environment_overrides_the_config_file_as_in_influxd() {
        let dir = std::env::temp_dir().join(format!("entrypoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory");
        let config = dir.join("influxdb.conf");
        std::fs::write(
            &config,
            "bind-address = \"127.0.0.1:8088\"\n[http]\n  bind-address = \":9086\"\n",
        )
        .expect("a config file");
        let args = vec!["-config".to_owned(), config.display().to_string()];
        assert_eq!(http_address(&args, None), "http://127.0.0.1:9086");
        assert_eq!(
            http_address(&args, Some("127.0.0.2:18086".into())),
            "http://127.0.0.2:18086"
        );
        assert_eq!(http_address(&[], None), "http://127.0.0.1:8086");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
