//! Redis as a test reaches it: a connection (the `redis` crate's
//! `ConnectionManager`, which reconnects by itself after a Redis restart) to a
//! server in the cluster through a port-forward, or to one at an address.
//!
//! The password is never part of a message: errors name the server by where it
//! was reached (`pod/…:6379 via 127.0.0.1:…`).

use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::AsyncCommands as _;

use testware::net::PortForward;

/// Why Redis could not be reached or answered an error.
#[derive(Debug, thiserror::Error)]
#[error("redis at {view}: {detail}")]
pub struct RedisError {
    /// Where the server was reached.
    pub view: String,
    /// What failed.
    pub detail: String,
}

/// A connection to one Redis server.
pub struct Redis {
    connection: ConnectionManager,
    view: String,
    _forward: Option<PortForward>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redis({})", self.view)
    }
}

impl Redis {
    /// Connects to the server at `addr` (e.g. a container's port on this host).
    ///
    /// # Errors
    /// The server does not answer within 30 s, or refuses the password.
    pub async fn direct(addr: std::net::SocketAddr, password: &str) -> Result<Self, RedisError> {
        let view = addr.to_string();
        let connection = connect(addr, password, &view).await?;
        Ok(Self {
            connection,
            view,
            _forward: None,
        })
    }

    /// Connects to port `port` of pod `pod` through a port-forward. Each new
    /// connection opens a new forward to the pod of that name, so a StatefulSet
    /// pod that restarts is reached again.
    ///
    /// # Errors
    /// No local port, or the server does not answer within 30 s.
    pub async fn to_pod(
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        port: u16,
        password: &str,
    ) -> Result<Self, RedisError> {
        let forward = PortForward::to_pod(client, namespace, pod, port)
            .await
            .map_err(|e| RedisError {
                view: format!("pod/{pod}:{port}"),
                detail: e.to_string(),
            })?;
        let view = format!("{} via {}", forward.target(), forward.local_addr());
        let connection = connect(forward.local_addr(), password, &view).await?;
        Ok(Self {
            connection,
            view,
            _forward: Some(forward),
        })
    }

    /// A handle for any command (cheap to clone; commands fail while the server
    /// is away and succeed again once it is back).
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Where the server is reached, for messages.
    pub fn view(&self) -> &str {
        &self.view
    }

    /// Turns a command's error into one that names the server.
    pub fn error(&self, what: &str, e: &::redis::RedisError) -> RedisError {
        RedisError {
            view: self.view.clone(),
            detail: format!("{what}: {e}"),
        }
    }

    /// Every key matching `pattern` (`SCAN … MATCH`), sorted.
    ///
    /// # Errors
    /// The server fails the scan.
    pub async fn keys(&self, pattern: &str) -> Result<Vec<String>, RedisError> {
        let mut connection = self.connection();
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut connection)
                .await
                .map_err(|e| self.error(&format!("SCAN MATCH {pattern}"), &e))?;
            keys.extend(batch);
            cursor = next;
            if cursor == 0 {
                keys.sort();
                keys.dedup();
                return Ok(keys);
            }
        }
    }

    /// Every list matching `pattern` with its elements (head first).
    ///
    /// # Errors
    /// The server fails a command.
    pub async fn lists(&self, pattern: &str) -> Result<Vec<(String, Vec<String>)>, RedisError> {
        let mut connection = self.connection();
        let mut lists = Vec::new();
        for key in self.keys(pattern).await? {
            let items: Vec<String> = connection
                .lrange(&key, 0, -1)
                .await
                .map_err(|e| self.error(&format!("LRANGE {key}"), &e))?;
            lists.push((key, items));
        }
        Ok(lists)
    }
}

async fn connect(
    addr: std::net::SocketAddr,
    password: &str,
    view: &str,
) -> Result<ConnectionManager, RedisError> {
    let error = |detail: String| RedisError {
        view: view.to_owned(),
        detail,
    };
    use ::redis::IntoConnectionInfo as _;
    let info = (addr.ip().to_string(), addr.port())
        .into_connection_info()
        .map_err(|e| error(e.to_string()))?;
    let info = if password.is_empty() {
        info
    } else {
        let redis_settings = info.redis_settings().clone().set_password(password);
        info.set_redis_settings(redis_settings)
    };
    let client = ::redis::Client::open(info).map_err(|e| error(e.to_string()))?;
    let config = ::redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(30)))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_secs(1));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .get_connection_manager_with_config(config.clone())
            .await
        {
            Ok(connection) => return Ok(connection),
            Err(e) if e.kind() == ::redis::ErrorKind::AuthenticationFailed => {
                return Err(error(format!(
                    "{e} (hint: the password comes from the Secret the Redis pod reads)"
                )))
            }
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(error(format!("not answering for 30 s: {e}")))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}
