//! Object-store notifications as the store sends them, and the webhook client.

use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{json, Value};

use super::EmbargoError;

/// `n` distinct keys under `raw/{run}/{prefix}/` named as the instrument names
/// its images, so the webhook's dataset pattern accepts them.
pub fn image_keys(run: &str, prefix: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("raw/{run}/{prefix}/AT_O_{i:06}.fits"))
        .collect()
}

/// Encodes an object key as object stores do in notifications: form encoding
/// (`+` for space, `%XX` for the rest) with `/` kept.
pub fn encode_key(key: &str) -> String {
    form_urlencoded::byte_serialize(key.as_bytes())
        .collect::<String>()
        .replace("%2F", "/")
}

/// One record of a notification: `key` created in `bucket`, signed with `opaque_data`.
#[derive(Clone, PartialEq, Eq)]
pub struct Record {
    /// The bucket.
    pub bucket: String,
    /// The object key, not encoded.
    pub key: String,
    /// The shared secret the webhook checks.
    pub opaque_data: String,
}

impl std::fmt::Debug for Record {
    /// Without the secret: what a test prints ends up in published CI logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("bucket", &self.bucket)
            .field("key", &self.key)
            .field("opaque_data", &"<redacted>")
            .finish()
    }
}

/// An object-store notification: one or more records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notification {
    /// The records, in order.
    pub records: Vec<Record>,
}

impl Notification {
    /// The JSON body the store posts (keys encoded).
    pub fn to_json(&self) -> Value {
        let records: Vec<Value> = self
            .records
            .iter()
            .map(|r| {
                json!({
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": r.bucket}, "object": {"key": encode_key(&r.key)}},
                    "opaqueData": r.opaque_data,
                })
            })
            .collect();
        json!({ "Records": records })
    }
}

/// The webhook's answer: its status and JSON body (`Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The body, parsed.
    pub body: Value,
}

/// Posts notifications for one bucket to the enqueue webhook at `url`.
#[derive(Clone)]
pub struct Notifier {
    http: reqwest::Client,
    url: String,
    bucket: String,
    secret: String,
}

impl std::fmt::Debug for Notifier {
    /// Without the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Notifier({}, bucket {})", self.url, self.bucket)
    }
}

impl Notifier {
    /// Notifies `bucket` at `url` (e.g. a port-forward's URL), signing with `secret`.
    pub fn new(
        url: impl Into<String>,
        bucket: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            url: url.into().trim_end_matches('/').to_owned(),
            bucket: bucket.into(),
            secret: secret.into(),
        }
    }

    /// The bucket notified.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// A notification of `keys`, signed with the webhook's secret.
    pub fn notification<S: AsRef<str>>(&self, keys: &[S]) -> Notification {
        self.notification_signed(keys, &self.secret)
    }

    /// A notification of `keys` signed with `opaque_data` (e.g. a wrong secret).
    pub fn notification_signed<S: AsRef<str>>(
        &self,
        keys: &[S],
        opaque_data: &str,
    ) -> Notification {
        Notification {
            records: keys
                .iter()
                .map(|k| Record {
                    bucket: self.bucket.clone(),
                    key: k.as_ref().to_owned(),
                    opaque_data: opaque_data.to_owned(),
                })
                .collect(),
        }
    }

    /// Posts `notification` to `/notify` once.
    ///
    /// # Errors
    /// The webhook cannot be reached.
    pub async fn post(&self, notification: &Notification) -> Result<Answer, EmbargoError> {
        self.send(
            reqwest::Method::POST,
            "/notify",
            notification.to_json().to_string(),
        )
        .await
    }

    /// Sends any request (method, path, body) to the webhook, for bad-input cases.
    ///
    /// # Errors
    /// The webhook cannot be reached.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> Result<Answer, EmbargoError> {
        let url = format!("{}{path}", self.url);
        let response = self
            .http
            .request(method.clone(), &url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{method} {url}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| anyhow::anyhow!("{method} {url}: reading the answer: {e}"))?;
        Ok(Answer {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        })
    }

    /// Posts `notification` until the webhook accepts it (2xx), sending it again
    /// after a 5xx or a lost connection — as object stores do — for up to `patience`.
    ///
    /// # Errors
    /// A 4xx (the notification is wrong), or no 2xx within `patience` (the last answer).
    pub async fn deliver(
        &self,
        notification: &Notification,
        patience: Duration,
    ) -> Result<Answer, EmbargoError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let last = match self.post(notification).await {
                Ok(answer) if (200..300).contains(&answer.status) => return Ok(answer),
                Ok(answer) if (400..500).contains(&answer.status) => anyhow::bail!(
                    "{} refused a notification of {} records with {}: {}",
                    self.url,
                    notification.records.len(),
                    answer.status,
                    answer.body
                ),
                Ok(answer) => format!("{}: {}", answer.status, answer.body),
                Err(e) => format!("{e:#}"),
            };
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "{} did not accept a notification for {} s; last answer: {last}",
                    self.url,
                    patience.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Delivers a notification per `per_notification` keys, `concurrency` at a
    /// time; returns how many keys the webhook accepted.
    ///
    /// # Errors
    /// As for [`Notifier::deliver`], for the first notification that fails.
    pub async fn deliver_all(
        &self,
        keys: &[String],
        per_notification: usize,
        concurrency: usize,
        patience: Duration,
    ) -> Result<u64, EmbargoError> {
        let notifications: Vec<Notification> = keys
            .chunks(per_notification.max(1))
            .map(|chunk| self.notification(chunk))
            .collect();
        let answers: Vec<Result<Answer, EmbargoError>> = futures::stream::iter(notifications)
            .map(|n| async move { self.deliver(&n, patience).await })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let mut accepted = 0;
        for answer in answers {
            accepted += answer?.body["accepted"].as_u64().unwrap_or(0);
        }
        Ok(accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_encoded_like_object_store_notifications() {
        assert_eq!(
            encode_key("raw/2026-11-27/a b,c+d.fits"),
            "raw/2026-11-27/a+b%2Cc%2Bd.fits"
        );
        assert_eq!(encode_key("plain.fits"), "plain.fits");
    }

    #[test]
    fn a_notification_carries_every_record_signed() {
        let notifier = Notifier::new("http://127.0.0.1:1", "bucket", "s3cret");
        let body = notifier.notification(&["a b.fits", "c.fits"]).to_json();
        assert_eq!(body["Records"].as_array().map(Vec::len), Some(2));
        assert_eq!(body["Records"][0]["s3"]["object"]["key"], "a+b.fits");
        assert_eq!(body["Records"][1]["s3"]["bucket"]["name"], "bucket");
        assert_eq!(body["Records"][1]["opaqueData"], "s3cret");
        let shown = format!("{notifier:?} {:?}", notifier.notification(&["k.fits"]));
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
