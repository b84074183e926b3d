//! Kafka clients (rdkafka) for a broker that runs **inside** the cluster, used from
//! the test process on any cluster (embedded, kind, k3d) without `/etc/hosts`.
//!
//! A broker advertises in-cluster names (`efd-kafka-0.efd-kafka.<ns>.svc…:9092`)
//! that the test process cannot resolve or reach. [`KafkaAccess`] opens a local
//! port per broker pod, forwarded through the API server, and relays the Kafka
//! protocol over it: in the two answers that carry broker addresses (Metadata and
//! FindCoordinator) each advertised address is replaced by the local port of that
//! broker's forward, opened on first sight. Every other byte passes unchanged, so
//! producers, consumers, consumer groups and the admin API work as against a
//! local broker. The message types come from the `kafka-protocol` crate.
//!
//! [`Kafka`] is the client a case uses: produce with delivery reports, consume
//! with a deadline, create and describe topics. Its errors name the broker, the
//! topic and the harness's view of the forwards (which pods, which local ports,
//! how many connections, the last relay and client errors).

/// The rdkafka this module is built on, for clients the harness does not wrap
/// (made with [`KafkaAccess::client_config`] and [`KafkaAccess::context`]).
pub use rdkafka;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use k8s_openapi::api::core::v1::{Endpoints, Pod};
use kafka_protocol::messages::{
    ApiKey, FetchResponse, FindCoordinatorResponse, MetadataResponse, ProduceResponse,
    ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, ClientContext};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest Kafka frame relayed (a fetch answer can be large, never this large).
const MAX_FRAME: usize = 256 << 20;
/// How many recent events the forward view keeps.
const RECENT: usize = 8;

/// Why a Kafka operation failed; every message carries the forward view.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// No broker pod to forward to, or no local port.
    #[error("cannot reach the Kafka broker {target}: {detail}")]
    Forward {
        /// The Service or pod asked for.
        target: String,
        /// What went wrong.
        detail: String,
    },
    /// rdkafka refused or failed an operation.
    #[error("kafka {what} failed: {source} ({view})")]
    Client {
        /// The operation, with its topic.
        what: String,
        /// The forward view at the time.
        view: String,
        /// rdkafka's error (boxed: it is large).
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// Fewer records than expected arrived before the deadline.
    #[error("timed out after {waited:.1} s consuming {topic}: {got} of {wanted} records ({view})")]
    ConsumeTimeout {
        /// The topic.
        topic: String,
        /// Records received.
        got: usize,
        /// Records wanted.
        wanted: usize,
        /// Seconds waited.
        waited: f64,
        /// The forward view.
        view: String,
    },
}

/// Where the relay stands: the forwards and recent events, for error messages.
#[derive(Default)]
struct RelayState {
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

struct Relay {
    /// The broker pods' API; `None` for a broker reached directly.
    pods: Option<kube::Api<Pod>>,
    namespace: String,
    state: Mutex<RelayState>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
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
fn route(relay: &Arc<Relay>, pod: &str, port: u16) -> Result<SocketAddr, KafkaError> {
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
                    relay
                        .state
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .note(format!("pod/{pod}:{port}: {e}"));
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

/// Whether answers to `key` at `version` can name brokers: Metadata and
/// FindCoordinator, and Produce (v10+) and Fetch (v16+), whose answers name a
/// partition's new leader when it moved (KIP-951) — as when a broker dies.
fn carries_addresses(key: ApiKey, version: i16) -> bool {
    match key {
        ApiKey::Metadata | ApiKey::FindCoordinator => true,
        ApiKey::Produce => version >= 10,
        ApiKey::Fetch => version >= 16,
        _ => false,
    }
}

/// Replaces the broker addresses in an answer (see [`carries_addresses`]) by
/// the local ports of their forwards.
fn rewrite(relay: &Arc<Relay>, key: ApiKey, version: i16, frame: Bytes) -> Result<Bytes, String> {
    let header_version = key.response_header_version(version);
    let mut body = frame.clone();
    let header = ResponseHeader::decode(&mut body, header_version)
        .map_err(|e| format!("decoding a {key:?} v{version} answer header: {e}"))?;
    let mut out = BytesMut::new();
    header
        .encode(&mut out, header_version)
        .map_err(|e| format!("encoding a {key:?} answer header: {e}"))?;
    let mut addresses = 0;
    match key {
        ApiKey::Metadata => {
            let mut answer = MetadataResponse::decode(&mut body, version)
                .map_err(|e| format!("decoding a Metadata v{version} answer: {e}"))?;
            for broker in &mut answer.brokers {
                (broker.host, broker.port) = local_address(relay, &broker.host, broker.port)?;
                addresses += 1;
            }
            answer
                .encode(&mut out, version)
                .map_err(|e| format!("encoding a Metadata answer: {e}"))?;
        }
        ApiKey::FindCoordinator => {
            let mut answer = FindCoordinatorResponse::decode(&mut body, version)
                .map_err(|e| format!("decoding a FindCoordinator v{version} answer: {e}"))?;
            if !answer.host.is_empty() {
                (answer.host, answer.port) = local_address(relay, &answer.host, answer.port)?;
                addresses += 1;
            }
            for coordinator in &mut answer.coordinators {
                if !coordinator.host.is_empty() {
                    (coordinator.host, coordinator.port) =
                        local_address(relay, &coordinator.host, coordinator.port)?;
                    addresses += 1;
                }
            }
            answer
                .encode(&mut out, version)
                .map_err(|e| format!("encoding a FindCoordinator answer: {e}"))?;
        }
        // Most of these name no broker: passed on as they came.
        ApiKey::Produce => {
            match relocate_leaders::<ProduceResponse>(relay, &mut body, version, &mut out, |a| {
                a.node_endpoints
                    .iter_mut()
                    .map(|n| (&mut n.host, &mut n.port))
                    .collect()
            })? {
                Some(n) => addresses += n as u64,
                None => return Ok(frame),
            }
        }
        ApiKey::Fetch => {
            match relocate_leaders::<FetchResponse>(relay, &mut body, version, &mut out, |a| {
                a.node_endpoints
                    .iter_mut()
                    .map(|n| (&mut n.host, &mut n.port))
                    .collect()
            })? {
                Some(n) => addresses += n as u64,
                None => return Ok(frame),
            }
        }
        _ => return Ok(frame),
    }
    relay
        .state
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .rewritten += addresses;
    Ok(out.freeze())
}

/// Decodes an answer of type `T` from `body`, points the broker addresses
/// `nodes` picks out of it at their forwards and encodes it into `out`;
/// returns how many it rewrote, or `None` (nothing encoded) when it names none.
fn relocate_leaders<T: Decodable + Encodable>(
    relay: &Arc<Relay>,
    body: &mut Bytes,
    version: i16,
    out: &mut BytesMut,
    nodes: impl FnOnce(&mut T) -> Vec<(&mut StrBytes, &mut i32)>,
) -> Result<Option<usize>, String> {
    let name = std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("answer");
    let mut answer =
        T::decode(body, version).map_err(|e| format!("decoding a {name} v{version}: {e}"))?;
    let addresses = nodes(&mut answer);
    if addresses.is_empty() {
        return Ok(None);
    }
    let count = addresses.len();
    for (host, port) in addresses {
        (*host, *port) = local_address(relay, host, *port)?;
    }
    answer
        .encode(out, version)
        .map_err(|e| format!("encoding a {name}: {e}"))?;
    Ok(Some(count))
}

/// The local (host, port) for an advertised broker address. The pod is the first
/// label of the advertised name (`<pod>.<service>.<namespace>.svc…`, as
/// StatefulSet brokers advertise themselves).
fn local_address(relay: &Arc<Relay>, host: &str, port: i32) -> Result<(StrBytes, i32), String> {
    let pod = host.split('.').next().unwrap_or(host);
    let port = u16::try_from(port).map_err(|_| format!("advertised port {port} of {host}"))?;
    let local = route(relay, pod, port).map_err(|e| e.to_string())?;
    Ok((
        StrBytes::from_string(local.ip().to_string()),
        i32::from(local.port()),
    ))
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
            self.relay
                .state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .note(format!("rdkafka {fac}: {log_message}"));
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.relay
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .note(format!("rdkafka error {error}: {reason}"));
    }
}

impl ConsumerContext for HarnessContext {}

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Key, if any.
    pub key: Option<Vec<u8>>,
    /// Payload, if any.
    pub payload: Option<Vec<u8>>,
}

/// A topic's partitions as the broker describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Topic name.
    pub name: String,
    /// Per partition: (id, leader broker id, low watermark, high watermark).
    pub partitions: Vec<PartitionInfo>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Partition id.
    pub id: i32,
    /// Broker id of the leader.
    pub leader: i32,
    /// First offset still held.
    pub low: i64,
    /// Offset the next record gets.
    pub high: i64,
}

/// A Kafka client for the brokers behind a [`KafkaAccess`]: produce with delivery
/// reports, consume with a deadline, create and describe topics.
#[derive(Clone)]
pub struct Kafka {
    access: KafkaAccess,
    producer: FutureProducer<HarnessContext>,
    /// How long a produce may wait for its delivery report.
    delivery_timeout: Duration,
}

impl Kafka {
    /// A client for the brokers behind Service `service` (e.g. `efd-kafka`) on `port`.
    ///
    /// # Errors
    /// The brokers cannot be forwarded to, or the producer cannot be created.
    pub async fn connect(
        client: &kube::Client,
        namespace: &str,
        service: &str,
        port: u16,
    ) -> Result<Self, KafkaError> {
        Self::over(KafkaAccess::to_service(client, namespace, service, port).await?)
    }

    /// A client over an existing [`KafkaAccess`]. Its producer is idempotent
    /// with `acks=all`: a record the broker acknowledged is on every in-sync
    /// replica, and a retry after a lost answer (a leader that died) writes
    /// no second copy.
    ///
    /// # Errors
    /// The producer cannot be created.
    pub fn over(access: KafkaAccess) -> Result<Self, KafkaError> {
        Self::with_producer(access, &[])
    }

    /// A second client over the same forwards whose producer has `settings`
    /// (librdkafka properties) on top of this one's, e.g. `acks=1` and
    /// `enable.idempotence=false` to show what a fault does to a producer
    /// without those guarantees.
    ///
    /// # Errors
    /// librdkafka refuses the settings.
    pub fn producer_with(&self, settings: &[(&str, &str)]) -> Result<Self, KafkaError> {
        Self::with_producer(self.access.clone(), settings)
    }

    fn with_producer(access: KafkaAccess, settings: &[(&str, &str)]) -> Result<Self, KafkaError> {
        let delivery_timeout = Duration::from_secs(30);
        let mut config = access.client_config();
        config
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            )
            .set("linger.ms", "1")
            .set("acks", "all")
            .set("enable.idempotence", "true");
        for (key, value) in settings {
            config.set(*key, *value);
        }
        let producer = config
            .create_with_context(access.context())
            .map_err(|source| KafkaError::Client {
                what: "creating a producer".into(),
                view: access.view(),
                source: Box::new(source),
            })?;
        Ok(Self {
            access,
            producer,
            delivery_timeout,
        })
    }

    /// The forwards this client uses.
    pub fn access(&self) -> &KafkaAccess {
        &self.access
    }

    /// Produces one record and waits for its delivery report; returns (partition, offset).
    ///
    /// # Errors
    /// The broker did not acknowledge the record within the delivery timeout (30 s).
    pub async fn produce(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(i32, i64), KafkaError> {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        let delivery = self
            .producer
            .send(record, self.delivery_timeout)
            .await
            .map_err(|(source, _)| KafkaError::Client {
                what: format!("produce to topic {topic}"),
                view: self.access.view(),
                source: Box::new(source),
            })?;
        Ok((delivery.partition, delivery.offset))
    }

    /// Produces every record (topic, key, payload) with up to `in_flight` awaiting
    /// delivery at once; returns how many were delivered. Stops at the first failure.
    ///
    /// # Errors
    /// A record was not delivered (see [`Kafka::produce`]).
    pub async fn produce_all<I>(&self, records: I, in_flight: usize) -> Result<usize, KafkaError>
    where
        I: IntoIterator<Item = (String, Option<Vec<u8>>, Vec<u8>)>,
    {
        use futures::StreamExt as _;
        let results = futures::stream::iter(records)
            .map(|(topic, key, payload)| async move {
                self.produce(&topic, key.as_deref(), &payload).await
            })
            .buffer_unordered(in_flight.max(1));
        futures::pin_mut!(results);
        let mut delivered = 0;
        while let Some(result) = results.next().await {
            result?;
            delivered += 1;
        }
        Ok(delivered)
    }

    /// Reads `count` records of `topic` from the beginning (or from group
    /// `group`'s committed offsets), waiting at most `timeout`.
    ///
    /// # Errors
    /// Fewer records arrived in time, or the consumer failed.
    pub async fn consume(
        &self,
        topic: &str,
        group: Option<&str>,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Record>, KafkaError> {
        let client_error = |source: rdkafka::error::KafkaError| KafkaError::Client {
            what: format!("consume from topic {topic}"),
            view: self.access.view(),
            source: Box::new(source),
        };
        let group = group.map_or_else(
            || format!("testware-reader-{}", rand::random::<u32>()),
            str::to_owned,
        );
        let consumer: StreamConsumer<HarnessContext> = self
            .access
            .client_config()
            .set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create_with_context(self.access.context())
            .map_err(client_error)?;
        consumer.subscribe(&[topic]).map_err(client_error)?;
        let started = std::time::Instant::now();
        let mut records = Vec::with_capacity(count);
        let read = async {
            while records.len() < count {
                // librdkafka recovers from connection and leader errors by
                // itself (a broker restarting); they are in the view, and a
                // read that does not recover ends in the timeout naming them.
                let message = match consumer.recv().await {
                    Ok(message) => message,
                    Err(e) => {
                        self.access
                            .relay
                            .state
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .note(format!("consumer: {e}"));
                        continue;
                    }
                };
                records.push(Record {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec),
                });
            }
            Ok::<_, KafkaError>(())
        };
        match tokio::time::timeout(timeout, read).await {
            Ok(result) => result.map(|()| records),
            Err(_) => Err(KafkaError::ConsumeTimeout {
                topic: topic.to_owned(),
                got: records.len(),
                wanted: count,
                waited: started.elapsed().as_secs_f64(),
                view: self.access.view(),
            }),
        }
    }

    /// Creates `topic` with `partitions` partitions, replicated as the broker's
    /// `default.replication.factor` says (an existing topic is fine).
    ///
    /// # Errors
    /// The broker refused.
    pub async fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), KafkaError> {
        let client_error = |source: rdkafka::error::KafkaError| KafkaError::Client {
            what: format!("create topic {topic}"),
            view: self.access.view(),
            source: Box::new(source),
        };
        let admin: AdminClient<HarnessContext> = self
            .access
            .client_config()
            .create_with_context(self.access.context())
            .map_err(client_error)?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics(
                &[NewTopic::new(
                    topic,
                    partitions,
                    TopicReplication::Fixed(-1),
                )],
                &options,
            )
            .await
            .map_err(client_error)?;
        for result in results {
            match result {
                Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(client_error(rdkafka::error::KafkaError::AdminOp(code)))
                }
            }
        }
        Ok(())
    }

    /// The partitions of `topic`, with leaders and watermarks.
    ///
    /// # Errors
    /// The broker does not know the topic, or does not answer.
    pub async fn describe_topic(&self, topic: &str) -> Result<TopicInfo, KafkaError> {
        let producer = self.producer.clone();
        let name = topic.to_owned();
        let view = self.access.clone();
        tokio::task::spawn_blocking(move || {
            let client_error = |source: rdkafka::error::KafkaError| KafkaError::Client {
                what: format!("describe topic {name}"),
                view: view.view(),
                source: Box::new(source),
            };
            let client = rdkafka::producer::Producer::client(&producer);
            let metadata = client
                .fetch_metadata(Some(&name), Duration::from_secs(10))
                .map_err(client_error)?;
            let described = metadata
                .topics()
                .iter()
                .find(|t| t.name() == name)
                .ok_or_else(|| {
                    client_error(rdkafka::error::KafkaError::MetadataFetch(
                        rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition,
                    ))
                })?;
            if let Some(code) = described.error() {
                return Err(client_error(rdkafka::error::KafkaError::MetadataFetch(
                    code.into(),
                )));
            }
            let mut partitions = Vec::new();
            for p in described.partitions() {
                let (low, high) = client
                    .fetch_watermarks(&name, p.id(), Duration::from_secs(10))
                    .map_err(client_error)?;
                partitions.push(PartitionInfo {
                    id: p.id(),
                    leader: p.leader(),
                    low,
                    high,
                });
            }
            partitions.sort_by_key(|p| p.id);
            Ok(TopicInfo { name, partitions })
        })
        .await
        .unwrap_or_else(|e| {
            Err(KafkaError::Forward {
                target: topic.to_owned(),
                detail: format!("describe task failed: {e}"),
            })
        })
    }
}

impl Kafka {
    /// Every record in `topic`'s log now (from each partition's low to its
    /// high watermark), waiting at most `timeout`: what a fault left there,
    /// duplicates included.
    ///
    /// # Errors
    /// The topic is unknown, or fewer records could be read in time.
    pub async fn read_log(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Vec<Record>, KafkaError> {
        let described = self.describe_topic(topic).await?;
        let total: i64 = described.partitions.iter().map(|p| p.high - p.low).sum();
        let total = usize::try_from(total).unwrap_or(0);
        self.consume(topic, None, total, timeout).await
    }

    /// The offsets group `group` has committed for each partition of `topic`
    /// (`None` for a partition without a commit): what a consumer group has
    /// acknowledged, read with OffsetFetch without joining the group.
    ///
    /// # Errors
    /// The topic is unknown or the broker does not answer.
    pub async fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<Vec<(i32, Option<i64>)>, KafkaError> {
        let partitions = self.describe_topic(topic).await?.partitions;
        let config = {
            let mut c = self.access.client_config();
            c.set("group.id", group);
            c
        };
        let (context, view) = (self.access.context(), self.access.clone());
        let (group, topic) = (group.to_owned(), topic.to_owned());
        tokio::task::spawn_blocking(move || {
            let client_error = |source: rdkafka::error::KafkaError| KafkaError::Client {
                what: format!("read the offsets of group {group} on topic {topic}"),
                view: view.view(),
                source: Box::new(source),
            };
            let consumer: rdkafka::consumer::BaseConsumer<HarnessContext> =
                config.create_with_context(context).map_err(client_error)?;
            let mut wanted = rdkafka::TopicPartitionList::new();
            for p in &partitions {
                wanted.add_partition(&topic, p.id);
            }
            // A group coordinator that is still loading or moving (a broker
            // just started or restarted) answers so for a few seconds.
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let committed = loop {
                match consumer.committed_offsets(wanted.clone(), Duration::from_secs(10)) {
                    Err(e)
                        if std::time::Instant::now() < deadline
                            && matches!(
                                e.rdkafka_error_code(),
                                Some(
                                    rdkafka::types::RDKafkaErrorCode::NotCoordinator
                                        | rdkafka::types::RDKafkaErrorCode::CoordinatorLoadInProgress
                                        | rdkafka::types::RDKafkaErrorCode::CoordinatorNotAvailable
                                )
                            ) =>
                    {
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    outcome => break outcome.map_err(client_error)?,
                }
            };
            Ok(committed
                .elements()
                .iter()
                .map(|e| {
                    let offset = match e.offset() {
                        rdkafka::Offset::Offset(o) => Some(o),
                        _ => None,
                    };
                    (e.partition(), offset)
                })
                .collect())
        })
        .await
        .unwrap_or_else(|e| {
            Err(KafkaError::Forward {
                target: "committed offsets".into(),
                detail: format!("task failed: {e}"),
            })
        })
    }
}

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

    /// The rdkafka context that records client errors in [`KafkaAccess::view`].
    pub fn context(&self) -> HarnessContext {
        HarnessContext {
            relay: self.relay.clone(),
        }
    }
}
