//! [`Kafka`]: the client a case uses, over a [`KafkaAccess`].

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::{HarnessContext, KafkaAccess, KafkaError};

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
                        self.access.note(format!("consumer: {e}"));
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
