//! Kafka clients (rdkafka) for a broker that runs **inside** the cluster, used from
//! the test process on any cluster (embedded, kind, k3d) without `/etc/hosts`.
//!
//! A broker advertises in-cluster names (`efd-kafka-0.efd-kafka.<ns>.svc…:9092`)
//! that the test process cannot resolve or reach. [`KafkaAccess`] opens a local
//! port per broker pod, forwarded through the API server, and relays the Kafka
//! protocol over it: in the answers that name brokers (Metadata, FindCoordinator,
//! and Produce and Fetch when a partition's leader moved) each advertised address
//! is replaced by the local port of that broker's forward, opened on first sight. Every other byte passes unchanged, so
//! producers, consumers, consumer groups and the admin API work as against a
//! local broker. The message types come from the `kafka-protocol` crate.
//!
//! [`Kafka`] is the client a case uses: produce with delivery reports, consume
//! with a deadline, create and describe topics. Its errors name the broker, the
//! topic and the harness's view of the forwards (which pods, which local ports,
//! how many connections, the last relay and client errors).

//!
//! `access` opens the forwards and relays the bytes, `rewrite` points the
//! addresses in the answers at them, `client` is [`Kafka`].

/// The rdkafka this module is built on, for clients the harness does not wrap
/// (made with [`KafkaAccess::client_config`] and [`KafkaAccess::context`]).
pub use rdkafka;

mod access;
mod client;
mod rewrite;

pub use access::{HarnessContext, KafkaAccess};
pub use client::{Kafka, PartitionInfo, Record, TopicInfo};

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
