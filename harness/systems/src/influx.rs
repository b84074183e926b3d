//! InfluxDB 1.x from the test process (reqwest): InfluxQL queries with typed
//! results, the schema queries users run, writes in line protocol, and
//! [`Influx::wait_for_count`], whose timeout says the last count it saw and what
//! the writer (e.g. a connector) logged.

use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use testware::wait::{wait_until_with, Backoff};

/// Why an InfluxDB operation failed.
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    /// The HTTP exchange failed.
    #[error("InfluxDB at {url} did not answer {what}: {source}")]
    Http {
        /// The base URL.
        url: String,
        /// The query or operation.
        what: String,
        /// reqwest's error.
        #[source]
        source: reqwest::Error,
    },
    /// InfluxDB answered with an error.
    #[error("InfluxDB at {url} refused {what}: {detail}")]
    Refused {
        /// The base URL.
        url: String,
        /// The query or operation.
        what: String,
        /// Status and message.
        detail: String,
    },
    /// A count did not reach its target in time, or went past it.
    #[error("{0}")]
    Count(String),
}

/// One series of a query result.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Series {
    /// Measurement name.
    pub name: String,
    /// Column names; `time` first for SELECTs.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Rows, in column order.
    #[serde(default)]
    pub values: Vec<Vec<Value>>,
}

impl Series {
    /// The index of column `name`.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The rows as column -> value maps (nulls left out).
    pub fn rows(&self) -> Vec<serde_json::Map<String, Value>> {
        self.values
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .zip(row)
                    .filter(|(_, v)| !v.is_null())
                    .map(|(c, v)| (c.clone(), v.clone()))
                    .collect()
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    results: Vec<StatementAnswer>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct StatementAnswer {
    #[serde(default)]
    series: Vec<Series>,
    error: Option<String>,
}

pub use testware::explain::Explainer;

/// A database of an InfluxDB 1.x server.
#[derive(Clone)]
pub struct Influx {
    http: reqwest::Client,
    url: String,
    database: String,
    explainer: Option<Explainer>,
}

impl std::fmt::Debug for Influx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Influx({}, db {})", self.url, self.database)
    }
}

impl Influx {
    /// Database `database` of the server at `url` (e.g. a port-forward's URL).
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_default();
        Self {
            http,
            url: url.into().trim_end_matches('/').to_owned(),
            database: database.into(),
            explainer: None,
        }
    }

    /// Adds what `explain` returns (e.g. the writer's log lines) to timeout messages.
    #[must_use]
    pub fn explain_with<F, Fut>(mut self, explain: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = String> + Send + 'static,
    {
        self.explainer = Some(testware::explain::explainer(explain));
        self
    }

    /// The server's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs InfluxQL `query` (timestamps as epoch microseconds); returns the series
    /// of its first statement.
    ///
    /// # Errors
    /// No answer, or InfluxDB reports an error for the query.
    pub async fn query(&self, query: &str) -> Result<Vec<Series>, InfluxError> {
        let http_error = |source| InfluxError::Http {
            url: self.url.clone(),
            what: format!("query {query:?}"),
            source,
        };
        let response = self
            .http
            .get(format!("{}/query", self.url))
            .query(&[("db", self.database.as_str()), ("q", query), ("epoch", "u")])
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(http_error)?;
        let refused = |detail: String| InfluxError::Refused {
            url: self.url.clone(),
            what: format!("query {query:?}"),
            detail,
        };
        series_of(&body).map_err(|e| refused(format!("{status}: {e}")))
    }

    /// `SHOW MEASUREMENTS`, sorted.
    ///
    /// # Errors
    /// See [`Influx::query`].
    pub async fn measurements(&self) -> Result<Vec<String>, InfluxError> {
        let series = self.query("SHOW MEASUREMENTS").await?;
        Ok(first_column_strings(&series))
    }

    /// `SHOW FIELD KEYS FROM <measurement>`: (field, type) pairs, sorted by field.
    ///
    /// # Errors
    /// See [`Influx::query`].
    pub async fn field_keys(
        &self,
        measurement: &str,
    ) -> Result<Vec<(String, String)>, InfluxError> {
        let series = self
            .query(&format!(
                "SHOW FIELD KEYS FROM {}",
                self.qualified(measurement)
            ))
            .await?;
        let mut keys: Vec<(String, String)> = series
            .iter()
            .flat_map(|s| s.values.iter())
            .filter_map(|row| {
                Some((
                    row.first()?.as_str()?.to_owned(),
                    row.get(1)?.as_str()?.to_owned(),
                ))
            })
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// `"<db>"."autogen"."<measurement>"`, quoted as InfluxQL wants.
    pub fn qualified(&self, measurement: &str) -> String {
        format!(
            "{}.\"autogen\".{}",
            quote_identifier(&self.database),
            quote_identifier(measurement)
        )
    }

    /// The number of points of `measurement` matching `filter` (an InfluxQL
    /// condition such as `private_identity = 'x'`, or empty), counted on `field`.
    ///
    /// # Errors
    /// See [`Influx::query`].
    pub async fn count(
        &self,
        measurement: &str,
        field: &str,
        filter: &str,
    ) -> Result<u64, InfluxError> {
        let mut query = format!(
            "SELECT count({}) FROM {}",
            quote_identifier(field),
            self.qualified(measurement)
        );
        if !filter.is_empty() {
            query.push_str(" WHERE ");
            query.push_str(filter);
        }
        let series = self.query(&query).await?;
        Ok(series
            .first()
            .and_then(|s| s.values.first())
            .and_then(|row| row.get(1))
            .and_then(Value::as_u64)
            .unwrap_or(0))
    }

    /// Waits until `measurement` holds at least `n` points matching `filter`
    /// (counted on `field`); returns the count. Polls with the harness backoff
    /// (InfluxDB 1.x has no change feed). More than `n` is an error at once: the
    /// points were duplicated or another writer wrote the same series.
    ///
    /// # Errors
    /// The count did not reach `n` within `timeout` (the message gives the last
    /// count and what the writer logged), or went past `n`.
    pub async fn wait_for_count(
        &self,
        measurement: &str,
        field: &str,
        filter: &str,
        n: u64,
        timeout: Duration,
    ) -> Result<u64, InfluxError> {
        let what = format!(
            "{n} points in {measurement}{}",
            if filter.is_empty() {
                String::new()
            } else {
                format!(" where {filter}")
            }
        );
        // Counting is cheap: check often, so catch-up times are measured closely.
        let backoff = Backoff {
            first: Duration::from_millis(20),
            max: Duration::from_millis(250),
        };
        let outcome = wait_until_with(what.clone(), timeout, backoff, || async {
            match self.count(measurement, field, filter).await {
                Ok(c) if c > n => Ok(Err(format!("{c} points, more than the {n} written"))),
                Ok(c) if c == n => Ok(Ok(c)),
                Ok(c) => Err(format!("count {c}")),
                Err(e) => Err(e.to_string()),
            }
        })
        .await;
        let message = match outcome {
            Ok(Ok(count)) => return Ok(count),
            Ok(Err(too_many)) => format!("{what}: {too_many}"),
            Err(timeout) => timeout.to_string(),
        };
        let writer = match &self.explainer {
            Some(explain) => format!("; writer: {}", explain().await),
            None => String::new(),
        };
        Err(InfluxError::Count(format!("{message}{writer}")))
    }

    /// Writes `lines` of line protocol (precision `u`).
    ///
    /// # Errors
    /// No answer, or InfluxDB refused the points.
    pub async fn write(&self, lines: String) -> Result<(), InfluxError> {
        let http_error = |source| InfluxError::Http {
            url: self.url.clone(),
            what: "write".into(),
            source,
        };
        let response = self
            .http
            .post(format!("{}/write", self.url))
            .query(&[("db", self.database.as_str()), ("precision", "u")])
            .body(lines)
            .send()
            .await
            .map_err(http_error)?;
        let status = response.status();
        if status != reqwest::StatusCode::NO_CONTENT {
            let body = response.text().await.unwrap_or_default();
            return Err(InfluxError::Refused {
                url: self.url.clone(),
                what: "write".into(),
                detail: format!("{status}: {}", body.trim()),
            });
        }
        Ok(())
    }
}

/// The first column of every row, as strings, sorted (`SHOW …` answers).
fn first_column_strings(series: &[Series]) -> Vec<String> {
    let mut names: Vec<String> = series
        .iter()
        .flat_map(|s| s.values.iter())
        .filter_map(|row| row.first()?.as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// An InfluxQL identifier in double quotes.
pub fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The series of the first statement of a `/query` answer `body`.
///
/// # Errors
/// Not a query answer, or InfluxDB's error for the query or its first statement.
pub fn series_of(body: &[u8]) -> Result<Vec<Series>, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| {
        format!(
            "not a query answer ({e}): {}",
            String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>()
        )
    })?;
    if let Some(error) = answer.error {
        return Err(error);
    }
    let first = answer.results.into_iter().next();
    if let Some(error) = first.as_ref().and_then(|r| r.error.clone()) {
        return Err(error);
    }
    Ok(first.map(|r| r.series).unwrap_or_default())
}

/// An InfluxQL string literal in single quotes.
pub fn quote_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_series_and_rows() {
        let answer: Answer = serde_json::from_str(
            r#"{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","a","b"],"values":[[1,2.5,null]]}]}]}"#,
        )
        .unwrap();
        let series = &answer.results[0].series[0];
        assert_eq!(series.column("a"), Some(1));
        let rows = series.rows();
        assert_eq!(rows[0].get("a"), Some(&serde_json::json!(2.5)));
        assert!(!rows[0].contains_key("b"), "nulls are left out");
    }

    #[test]
    fn identifiers_and_strings_are_quoted() {
        assert_eq!(quote_identifier("lsst.sal.T\"x"), "\"lsst.sal.T\\\"x\"");
        assert_eq!(quote_string("harness@a'b"), "'harness@a\\'b'");
    }
}
