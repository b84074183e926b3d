//! The container engine that component cases start containers in: its Docker-API
//! socket, found as `testcontainers` finds it (`DOCKER_HOST`, else Docker's
//! default socket), and whether it accepts connections — checked once, before the
//! first component case, so a missing engine is one clear message, not a failure
//! deep inside each case.

use std::time::Duration;

use crate::config::Tools;

/// Docker's socket, used when `DOCKER_HOST` is unset.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// How long a TCP engine may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

const HINT: &str = "hint: start Docker, or podman's Docker-compatible service (`podman system service --time=0 unix:///run/podman/podman.sock`) and set DOCKER_HOST=unix:///run/podman/podman.sock; in the testware repository `ci/container-engine up` does both";

/// The engine's address: `DOCKER_HOST`, else [`DEFAULT_HOST`].
pub fn host(tools: &Tools) -> String {
    tools
        .docker_host
        .clone()
        .unwrap_or_else(|| DEFAULT_HOST.to_owned())
}

/// Checks that the engine at [`host`] accepts connections; returns its address.
///
/// # Errors
/// Why not, naming the address, where it came from and how to start one.
pub fn probe(tools: &Tools) -> Result<String, String> {
    let host = host(tools);
    let origin = if tools.docker_host.is_some() {
        "DOCKER_HOST"
    } else {
        "the default, DOCKER_HOST is unset"
    };
    connect(&host)
        .map(|()| host.clone())
        .map_err(|e| format!("no container engine answers at {host} ({origin}): {e} ({HINT})"))
}

fn connect(host: &str) -> Result<(), String> {
    if let Some(path) = host.strip_prefix("unix://") {
        std::os::unix::net::UnixStream::connect(path)
            .map(drop)
            .map_err(|e| e.to_string())
    } else if let Some(address) = host.strip_prefix("tcp://") {
        use std::net::ToSocketAddrs as _;
        let addresses = address
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {address}: {e}"))?;
        let mut last = format!("{address} resolves to no address");
        for a in addresses {
            match std::net::TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(_) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    } else {
        Err("not a unix:// or tcp:// address".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::connect;

    #[test]
    fn a_socket_that_listens_is_reached() {
        let dir = std::env::temp_dir().join(format!("engine-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("engine.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).expect("a socket");
        assert_eq!(connect(&format!("unix://{}", path.display())), Ok(()));
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_missing_socket_and_a_foreign_scheme_are_refused_with_the_reason() {
        let missing = connect("unix:///nonexistent/engine.sock").expect_err("no socket there");
        assert!(missing.contains("No such file"), "{missing}");
        assert_eq!(
            connect("ssh://engine"),
            Err("not a unix:// or tcp:// address".to_owned())
        );
    }
}
