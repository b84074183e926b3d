//! Helpers for the systems that full_stack cases push data through, apart from
//! the [`testware`] core as testcontainers keeps its modules apart from its
//! core: one module and one feature per system, so a suite that needs Redis
//! does not build librdkafka.
//!
//! | module | feature | what |
//! |---|---|---|
//! | [`kafka`] | `kafka` | Kafka clients (rdkafka) for in-cluster brokers: port-forward + protocol relay |
//! | [`influx`] | `influx` | InfluxQL queries, counts awaited with explanations |
//! | [`efd`] | `efd` | SAL-shaped EFD records and the EFD's data path (Kafka -> connector -> InfluxDB) |
//! | [`redis`] | `redis` | Redis through a port-forward |
//! | [`embargo`] | `embargo` | notifications -> Redis queue -> ingest workers |
//! | [`logs`] | `logs` | Elasticsearch-API log stores, CRI log lines, the logging stack |
#![warn(missing_docs)]

#[cfg(feature = "efd")]
pub mod efd;
#[cfg(feature = "embargo")]
pub mod embargo;
#[cfg(feature = "influx")]
pub mod influx;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "logs")]
pub mod logs;
#[cfg(feature = "redis")]
pub mod redis;
