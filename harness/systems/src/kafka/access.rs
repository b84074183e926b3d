//! The forwards to the broker pods and the relay of the Kafka protocol over
//! them; answers that name brokers go through [`super::rewrite`].

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use k8s_openapi::api::core::v1::{Endpoints, Pod};
use kafka_protocol::messages::ApiKey;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::{ClientConfig, ClientContext};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::rewrite::{carries_addresses, rewrite};
use super::KafkaError;

/// Largest Kafka frame relayed (a fetch answer can be large, never this large).
const MAX_FRAME: usize = 256 << 20;
/// How many recent events the forward view keeps.
const RECENT: usize = 8;

/// Where the relay stands: the forwards and recent events, for error messages.
#[derive(Default)]
pub(super) struct RelayState {
    /// (pod, port) -> local address of its forward.
    routes: BTreeMap<(String, u16), SocketAddr>,
    connections: u64,
    rewritten: u64,
    recent: VecDeque<String>,
}

impl RelayState {
    fn note(&mut self, event: String) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
    }
}

pub(super) struct Relay {
    /// The broker pods' API; `None` for a broker reached directly.
    pods: Option<kube::Api<Pod>>,
    namespace: String,
    state: Mutex<RelayState>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Relay {
    /// Adds an event to the forward view.
    pub(super) fn note(&self, event: String) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note(event);
    }

    /// Counts broker addresses pointed at forwards.
    pub(super) fn rewrote(&self, addresses: u64) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .rewritten += addresses;
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// Local ports that reach the broker pods of one namespace, with the Kafka
/// protocol relayed so the brokers' advertised addresses point at them.
/// Dropping it stops forwarding.
#[derive(Clone)]
pub struct KafkaAccess {
    relay: Arc<Relay>,
    bootstrap: SocketAddr,
    target: String,
}

impl std::fmt::Debug for KafkaAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.view())
    }
}

impl KafkaAccess {
    /// Forwards to the brokers behind Service `service` (any of its endpoints,
    /// ready or not, as a headless broker Service publishes them) on `port`.
    ///
    /// # Errors
    /// The Service has no endpoint with a pod behind it, or no local port can be bound.
    pub async fn to_service(
        client: &kube::Client,
        namespace: &str,
        service: &str,
        port: u16,
    ) -> Result<Self, KafkaError> {
        let target = format!("svc/{service}:{port} in {namespace}");
        let endpoints: kube::Api<Endpoints> = kube::Api::namespaced(client.clone(), namespace);
        let forward_error = |detail: String| KafkaError::Forward {
            target: target.clone(),
            detail,
        };
        let eps = endpoints
            .get_opt(service)
            .await
            .map_err(|e| forward_error(format!("reading its Endpoints: {e}")))?
            .ok_or_else(|| forward_error("no such Service endpoints".into()))?;
        let pod = eps
            .subsets
            .iter()
            .flatten()
            .flat_map(|s| {
                s.addresses
                    .iter()
                    .flatten()
                    .chain(s.not_ready_addresses.iter().flatten())
            })
            .find_map(|a| {
                a.target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .and_then(|r| r.name.clone())
            })
            .ok_or_else(|| {
                forward_error("no endpoint with a pod (hint: is the broker pod running?)".into())
            })?;
        Self::to_pod(client, namespace, &pod, port).await
    }

    /// Forwards to broker pod `pod` on `port`; other brokers it advertises get
    /// their own forwards when their addresses are first seen.
    ///
    /// # Errors
    /// No local port can be bound.
    pub async fn to_pod(
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<Self, KafkaError> {
        let relay = Arc::new(Relay {
            pods: Some(kube::Api::namespaced(client.clone(), namespace)),
            namespace: namespace.to_owned(),
            state: Mutex::default(),
            tasks: Mutex::default(),
        });
        let bootstrap = route(&relay, pod, port)?;
        Ok(Self {
            relay,
            bootstrap,
            target: format!("pod/{pod}:{port} in {namespace}"),
        })
    }

    /// A broker the test process reaches as it is (a container's published port,
    /// a broker on this machine): nothing forwarded, advertised addresses used unchanged.
    pub fn direct(bootstrap: SocketAddr) -> Self {
        let relay = Arc::new(Relay {
            pods: None,
            namespace: String::new(),
            state: Mutex::default(),
            tasks: Mutex::default(),
        });
        Self {
            relay,
            bootstrap,
            target: format!("broker {bootstrap}"),
        }
    }

    /// `bootstrap.servers` for a Kafka client in the test process.
    pub fn bootstrap_servers(&self) -> String {
        self.bootstrap.to_string()
    }

    /// The harness's view of the forwards, for messages: each broker pod with its
    /// local port, connections relayed, addresses rewritten, recent events.
    pub fn view(&self) -> String {
        let state = self.relay.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut view = if self.relay.pods.is_none() {
            format!("direct to {}", self.bootstrap)
        } else {
            let routes: Vec<String> = state
                .routes
                .iter()
                .map(|((pod, port), local)| format!("pod/{pod}:{port} <- {local}"))
                .collect();
            format!(
                "forwards in {}: {}; {} connections, {} broker addresses rewritten",
                self.relay.namespace,
                routes.join(", "),
                state.connections,
                state.rewritten
            )
        };
        if !state.recent.is_empty() {
            view.push_str("; recent: ");
            view.push_str(&Vec::from(state.recent.clone()).join(" | "));
        }
        view
    }

    /// What was asked for (`svc/…` or `pod/…`), for messages.
    pub fn target(&self) -> &str {
        &self.target
    }
}

/// The local address forwarding to `pod:port`, opened on first use. Not async:
/// binding a loopback port does not block, and the relay calls this while
/// rewriting an answer (an async version would be a recursive future).
pub(super) fn route(relay: &Arc<Relay>, pod: &str, port: u16) -> Result<SocketAddr, KafkaError> {
    let key = (pod.to_owned(), port);
    let mut state = relay.state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(local) = state.routes.get(&key) {
        return Ok(*local);
    }
    let bind = || {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        Ok::<_, std::io::Error>((local, tokio::net::TcpListener::from_std(listener)?))
    };
    let (local, listener) = bind().map_err(|e| KafkaError::Forward {
        target: format!("pod/{pod}:{port}"),
        detail: format!("cannot bind a local port: {e}"),
    })?;
    state.routes.insert(key, local);
    drop(state);
    // The accept loop holds the relay weakly: dropping the last `KafkaAccess` ends it.
    let weak = Arc::downgrade(relay);
    let pod = pod.to_owned();
    let task = tokio::spawn(async move {
        while let Ok((connection, _)) = listener.accept().await {
            let Some(relay) = weak.upgrade() else { return };
            let pod = pod.clone();
            tokio::spawn(async move {
                if let Err(e) = relay_connection(&relay, connection, &pod, port).await {
                    relay.note(format!("pod/{pod}:{port}: {e}"));
                }
            });
        }
    });
    relay
        .tasks
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(task);
    Ok(local)
}

/// Relays one client connection to `pod:port`, rewriting broker addresses.
async fn relay_connection(
    relay: &Arc<Relay>,
    connection: tokio::net::TcpStream,
    pod: &str,
    port: u16,
) -> Result<(), String> {
    relay
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .connections += 1;
    let pods = relay.pods.as_ref().ok_or("no cluster to forward to")?;
    let mut forwarder = pods
        .portforward(pod, &[port])
        .await
        .map_err(|e| format!("port-forward failed: {e}"))?;
    let upstream = forwarder
        .take_stream(port)
        .ok_or("port-forward has no stream")?;
    let _ = connection.set_nodelay(true);
    let (mut client_rx, mut client_tx) = connection.into_split();
    let (mut broker_rx, mut broker_tx) = tokio::io::split(upstream);
    // Requests whose answers carry broker addresses: correlation id -> (api key, version).
    // (An acks=0 Produce gets no answer and would stay here; the harness's
    // producers wait for acknowledgements.)
    let pending: Mutex<BTreeMap<i32, (ApiKey, i16)>> = Mutex::default();
    let requests = async {
        while let Some(frame) = read_frame(&mut client_rx).await? {
            if frame.len() >= 8 {
                let key = i16::from_be_bytes([frame[0], frame[1]]);
                let version = i16::from_be_bytes([frame[2], frame[3]]);
                let correlation = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
                if let Some(key) = ApiKey::try_from(key)
                    .ok()
                    .filter(|key| carries_addresses(*key, version))
                {
                    pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(correlation, (key, version));
                }
            }
            write_frame(&mut broker_tx, &frame).await?;
        }
        Ok::<_, String>(())
    };
    let answers = async {
        while let Some(frame) = read_frame(&mut broker_rx).await? {
            let correlation = frame
                .get(..4)
                .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let request = correlation
                .and_then(|c| pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&c));
            let frame = match request {
                Some((key, version)) => rewrite(relay, key, version, frame)?,
                None => frame,
            };
            write_frame(&mut client_tx, &frame).await?;
        }
        Ok::<_, String>(())
    };
    // Either side closing ends the connection (the client reconnects as needed).
    let outcome = tokio::select! {
        r = requests => r,
        r = answers => r,
    };
    drop(forwarder);
    outcome
}

async fn read_frame<R: AsyncReadExt + Unpin>(reader: &mut R) -> Result<Option<Bytes>, String> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(format!("read: {e}")),
    }
    let len = usize::try_from(i32::from_be_bytes(len)).map_err(|_| "negative frame length")?;
    if len > MAX_FRAME {
        return Err(format!("frame of {len} bytes is not Kafka"));
    }
    let mut frame = BytesMut::zeroed(len);
    reader
        .read_exact(&mut frame)
        .await
        .map_err(|e| format!("read: {e}"))?;
    Ok(Some(frame.freeze()))
}

async fn write_frame<W: AsyncWriteExt + Unpin>(writer: &mut W, frame: &[u8]) -> Result<(), String> {
    let len = u32::try_from(frame.len()).map_err(|_| "frame too large")?;
    writer
        .write_all(&len.to_be_bytes())
        .await
        .and(writer.write_all(frame).await)
        .map_err(|e| format!("write: {e}"))
}

/// The rdkafka context of the harness's clients: librdkafka's warnings and
/// errors go into the forward view instead of stderr.
#[derive(Clone)]
pub struct HarnessContext {
    relay: Arc<Relay>,
}

impl ClientContext for HarnessContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        use RDKafkaLogLevel::{Alert, Critical, Emerg, Error, Warning};
        if matches!(level, Emerg | Alert | Critical | Error | Warning) {
            self.relay.note(format!("rdkafka {fac}: {log_message}"));
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.relay.note(format!("rdkafka error {error}: {reason}"));
    }
}

impl ConsumerContext for HarnessContext {}

impl KafkaAccess {
    /// A client configuration with `bootstrap.servers` set to the forward, for
    /// clients the harness does not wrap; create them with [`KafkaAccess::context`].
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap_servers())
            // The relay answers with 127.0.0.1; librdkafka need not try IPv6.
            .set("broker.address.family", "v4")
            .set_log_level(RDKafkaLogLevel::Warning);
        config
    }

    /// Adds an event (a client error the harness recovers from) to the view.
    pub(super) fn note(&self, event: String) {
        self.relay.note(event);
    }

    /// The rdkafka context that records client errors in [`KafkaAccess::view`].
    pub fn context(&self) -> HarnessContext {
        HarnessContext {
            relay: self.relay.clone(),
        }
    }
}
