//! The two ends of the ingest path, and where a key that is not ingested is.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ::redis::AsyncCommands as _;

use crate::redis::Redis;

use super::{EmbargoError, Notifier};

/// Where a key that is not ingested is, as [`EmbargoStack::locate`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Waiting in `QUEUE:{bucket}`.
    Queued,
    /// In a worker's in-flight list.
    Worker {
        /// The list, `WORKER:{bucket}:{pod}`.
        list: String,
        /// Whether the pod the list belongs to exists, when known.
        live: Option<bool>,
    },
    /// Given up after `MAX_FAILURES` (in `FAILED:{bucket}`).
    GivenUp,
    /// In no queue or list, and not ingested: lost.
    Nowhere,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Queued => f.write_str("queued"),
            Self::Worker {
                list,
                live: Some(true) | None,
            } => write!(f, "in {list}"),
            Self::Worker {
                list,
                live: Some(false),
            } => {
                write!(
                    f,
                    "in {list}, whose pod is gone (the idle reaper has not requeued it)"
                )
            }
            Self::GivenUp => f.write_str("given up (FAILED)"),
            Self::Nowhere => f.write_str("nowhere (lost)"),
        }
    }
}

/// Where each of `missing` is: its first place in the queue, a worker list, the
/// failed set, else nowhere. `live_pods`, when known, tells dead workers' lists apart.
pub fn locate(
    missing: &BTreeSet<String>,
    queue: &[String],
    workers: &[(String, Vec<String>)],
    failed: &BTreeSet<String>,
    live_pods: Option<&BTreeSet<String>>,
) -> BTreeMap<String, Location> {
    missing
        .iter()
        .map(|key| {
            let place = if queue.contains(key) {
                Location::Queued
            } else if let Some((list, _)) = workers.iter().find(|(_, items)| items.contains(key)) {
                let pod = list.rsplit(':').next().unwrap_or_default();
                Location::Worker {
                    list: list.clone(),
                    live: live_pods.map(|live| live.contains(pod)),
                }
            } else if failed.contains(key) {
                Location::GivenUp
            } else {
                Location::Nowhere
            };
            (key.clone(), place)
        })
        .collect()
}

/// Groups locations into one line per place with up to three keys each.
pub fn summarize(locations: &BTreeMap<String, Location>) -> String {
    let mut by_place: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (key, place) in locations {
        by_place.entry(place.to_string()).or_default().push(key);
    }
    by_place
        .iter()
        .map(|(place, keys)| {
            let shown: Vec<&str> = keys.iter().take(3).copied().collect();
            let more = keys.len().saturating_sub(shown.len());
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            format!("{} {place} ({:?}{more})", keys.len(), shown)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The two ends of the ingest path as the test reaches them: notifications go in
/// at the webhook, the workers' results are read from Redis. Wherever they run —
/// a deployed release ([`EmbargoStack`]) or containers a component case started.
#[derive(Debug)]
pub struct EmbargoPath {
    /// Posts notifications to the webhook.
    pub notifier: Notifier,
    /// The Redis the components share.
    pub redis: Redis,
}

impl EmbargoPath {
    /// The bucket notified and ingested.
    pub fn bucket(&self) -> &str {
        self.notifier.bucket()
    }

    /// How many times each key's work was done (`INGESTS:{bucket}`).
    ///
    /// # Errors
    /// Redis fails the read.
    pub async fn ingest_counts(&self) -> Result<BTreeMap<String, u64>, EmbargoError> {
        let key = format!("INGESTS:{}", self.bucket());
        let counts: BTreeMap<String, u64> = self
            .redis
            .connection()
            .hgetall(&key)
            .await
            .map_err(|e| self.redis.error(&format!("HGETALL {key}"), &e))?;
        Ok(counts)
    }

    /// Fails unless every key ingested is one of `keys` and each one's work was
    /// done exactly once: nothing invented, nothing repeated. (Nothing lost is
    /// [`wait_for_ingested`](Self::wait_for_ingested)'s part.)
    ///
    /// # Errors
    /// A key ingested but not in `keys` or done other than once (named), or
    /// Redis fails a read.
    pub async fn check_ingested_once(&self, keys: &BTreeSet<String>) -> Result<(), EmbargoError> {
        let ingested = self.ingested().await?;
        let unexpected: Vec<&String> = ingested.difference(keys).take(5).collect();
        anyhow::ensure!(
            unexpected.is_empty(),
            "keys ingested that were never accepted: {unexpected:?}"
        );
        let counts = self.ingest_counts().await?;
        let repeated: BTreeMap<&String, &u64> = counts.iter().filter(|(_, n)| **n != 1).collect();
        anyhow::ensure!(
            repeated.is_empty(),
            "keys whose ingest work was done other than once: {repeated:?}"
        );
        Ok(())
    }

    /// The keys recorded as ingested (`INGESTED:{bucket}`).
    ///
    /// # Errors
    /// Redis fails the read.
    pub async fn ingested(&self) -> Result<BTreeSet<String>, EmbargoError> {
        self.set(&format!("INGESTED:{}", self.bucket())).await
    }

    async fn set(&self, key: &str) -> Result<BTreeSet<String>, EmbargoError> {
        let members: BTreeSet<String> = self
            .redis
            .connection()
            .smembers(key)
            .await
            .map_err(|e| self.redis.error(&format!("SMEMBERS {key}"), &e))?;
        Ok(members)
    }

    /// The keys waiting in `QUEUE:{bucket}`, newest first.
    ///
    /// # Errors
    /// Redis fails the read.
    pub async fn queued(&self) -> Result<Vec<String>, EmbargoError> {
        let key = format!("QUEUE:{}", self.bucket());
        let queue: Vec<String> = self
            .redis
            .connection()
            .lrange(&key, 0, -1)
            .await
            .map_err(|e| self.redis.error(&format!("LRANGE {key}"), &e))?;
        Ok(queue)
    }

    /// The workers' in-flight lists (`WORKER:{bucket}:{pod}`) with their keys.
    ///
    /// # Errors
    /// Redis fails a read.
    pub async fn worker_lists(&self) -> Result<Vec<(String, Vec<String>)>, EmbargoError> {
        Ok(self
            .redis
            .lists(&format!("WORKER:{}:*", self.bucket()))
            .await?)
    }

    /// Waits until some worker's list holds at least `n` keys — a batch caught
    /// in the middle, for fault cases — and returns that list's name and keys.
    ///
    /// # Errors
    /// None does within `timeout` (the message lists the worker lists last seen).
    pub async fn wait_for_worker_holding(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<(String, Vec<String>), EmbargoError> {
        Ok(testware::wait::wait_until(
            format!(
                "a worker list of bucket {} holding at least {n} keys",
                self.bucket()
            ),
            timeout,
            || async {
                let lists = self.worker_lists().await.map_err(|e| format!("{e:#}"))?;
                lists
                    .iter()
                    .find(|(_, items)| items.len() >= n)
                    .cloned()
                    .ok_or_else(|| {
                        let sizes: Vec<String> = lists
                            .iter()
                            .map(|(l, i)| format!("{l}: {}", i.len()))
                            .collect();
                        format!("worker lists: {sizes:?}")
                    })
            },
        )
        .await?)
    }

    /// The keys in worker list `list`, newest first.
    ///
    /// # Errors
    /// Redis fails the read.
    pub async fn worker_list(&self, list: &str) -> Result<Vec<String>, EmbargoError> {
        let keys: Vec<String> = self
            .redis
            .connection()
            .lrange(list, 0, -1)
            .await
            .map_err(|e| self.redis.error(&format!("LRANGE {list}"), &e))?;
        Ok(keys)
    }

    /// Where each of `keys` that is not ingested is; `live_pods`, when known,
    /// tells the lists of dead workers apart.
    ///
    /// # Errors
    /// Redis fails a read.
    pub async fn locate(
        &self,
        keys: &BTreeSet<String>,
        live_pods: Option<&BTreeSet<String>>,
    ) -> Result<BTreeMap<String, Location>, EmbargoError> {
        let ingested = self.ingested().await?;
        let missing: BTreeSet<String> = keys.difference(&ingested).cloned().collect();
        let queue = self.queued().await?;
        let workers = self.worker_lists().await?;
        let failed = self.set(&format!("FAILED:{}", self.bucket())).await?;
        Ok(locate(&missing, &queue, &workers, &failed, live_pods))
    }

    /// Waits until every one of `keys` is ingested; returns how long it took.
    /// At the timeout, `explain` gives what else the message should hold.
    pub(super) async fn wait_for_ingested_explained<F, Fut>(
        &self,
        keys: &BTreeSet<String>,
        timeout: Duration,
        explain: F,
    ) -> Result<Duration, EmbargoError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (Option<BTreeSet<String>>, String)>,
    {
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        loop {
            let ingested = self.ingested().await;
            if let Ok(ingested) = &ingested {
                if keys.is_subset(ingested) {
                    return Ok(started.elapsed());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                let (live, counters) = explain().await;
                let where_ = match self.locate(keys, live.as_ref()).await {
                    Ok(locations) => summarize(&locations),
                    Err(e) => format!("(cannot tell where: {e:#})"),
                };
                let done = ingested.map(|i| keys.intersection(&i).count()).unwrap_or(0);
                anyhow::bail!(
                    "{} of {} keys not ingested after {} s: {where_}; counters: {counters}",
                    keys.len() - done,
                    keys.len(),
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until every one of `keys` is ingested; returns how long it took.
    ///
    /// # Errors
    /// Some are not ingested within `timeout`: the message says how many and
    /// where each is stuck (queued, in which worker's list, given up, or nowhere).
    pub async fn wait_for_ingested(
        &self,
        keys: &BTreeSet<String>,
        timeout: Duration,
    ) -> Result<Duration, EmbargoError> {
        self.wait_for_ingested_explained(keys, timeout, || async {
            (None, "(not known here)".to_owned())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_are_located_and_summarized() {
        let set = |keys: &[&str]| {
            keys.iter()
                .map(|k| (*k).to_owned())
                .collect::<BTreeSet<_>>()
        };
        let missing = set(&["a", "b", "c", "d", "e"]);
        let workers = vec![
            ("WORKER:bkt:ingest-1".to_owned(), vec!["b".to_owned()]),
            ("WORKER:bkt:ingest-2".to_owned(), vec!["c".to_owned()]),
        ];
        let located = locate(
            &missing,
            &["a".to_owned()],
            &workers,
            &set(&["d"]),
            Some(&set(&["ingest-1"])),
        );
        assert_eq!(located["a"], Location::Queued);
        assert_eq!(
            located["c"],
            Location::Worker {
                list: "WORKER:bkt:ingest-2".into(),
                live: Some(false)
            }
        );
        assert_eq!(located["d"], Location::GivenUp);
        assert_eq!(located["e"], Location::Nowhere);
        let summary = summarize(&located);
        assert!(
            summary.contains(
                "1 in WORKER:bkt:ingest-2, whose pod is gone (the idle reaper has not requeued it) ([\"c\"])"
            ),
            "{summary}"
        );
        assert!(summary.contains("1 nowhere (lost) ([\"e\"])"), "{summary}");
    }
}
