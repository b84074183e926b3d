//! logging-retention: what ILM's delete phase does, for stores that have no ILM.
//! Every `INTERVAL_SECONDS` it lists the store's indices `<INDEX_PREFIX>-YYYY-MM-DD`
//! (`GET /_cat/indices?format=json`) and deletes those older than
//! `RETENTION_DAYS` (by the date in the name, UTC). Indices of other names are
//! never touched. `GET /healthz` on `HEALTH_LISTEN` answers 200 while the last
//! sweep succeeded; a failed sweep is tried again after 2 s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use component_kit::env_or;

/// The day in an index name `<prefix>-YYYY-MM-DD`, if it is one.
fn index_day(index: &str, prefix: &str) -> Option<time::Date> {
    let day = index.strip_prefix(prefix)?.strip_prefix('-')?;
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(day, &format).ok()
}

/// The indices of `names` whose day is more than `days` before `today`.
fn expired<'a>(names: &'a [String], prefix: &str, days: i64, today: time::Date) -> Vec<&'a str> {
    names
        .iter()
        .filter(|name| index_day(name, prefix).is_some_and(|day| (today - day).whole_days() > days))
        .map(String::as_str)
        .collect()
}

struct Sweeper {
    http: reqwest::Client,
    store: String,
    prefix: String,
    days: i64,
}

impl Sweeper {
    async fn sweep(&self) -> anyhow::Result<()> {
        let url = format!("{}/_cat/indices/{}-*?format=json", self.store, self.prefix);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .context("listing indices")?;
        let names: Vec<String> = if response.status() == reqwest::StatusCode::NOT_FOUND {
            Vec::new()
        } else {
            let body: serde_json::Value =
                serde_json::from_str(&response.error_for_status()?.text().await?)
                    .context("the index list is not JSON")?;
            body.as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["index"].as_str().map(str::to_owned))
                .collect()
        };
        let today = time::OffsetDateTime::now_utc().date();
        for index in expired(&names, &self.prefix, self.days, today) {
            self.http
                .delete(format!("{}/{index}", self.store))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .with_context(|| format!("deleting index {index}"))?;
            eprintln!("deleted index {index}: older than {} days", self.days);
        }
        Ok(())
    }
}

async fn run() -> anyhow::Result<()> {
    let sweeper = Sweeper {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        store: env_or("STORE_URL", "http://127.0.0.1:9200".to_owned())?
            .trim_end_matches('/')
            .to_owned(),
        prefix: env_or("INDEX_PREFIX", "logs".to_owned())?,
        days: env_or("RETENTION_DAYS", 7i64)?,
    };
    let interval = Duration::from_secs(env_or("INTERVAL_SECONDS", 3600u64)?.max(1));
    let healthy = Arc::new(AtomicBool::new(false));
    let listen = env_or("HEALTH_LISTEN", "0.0.0.0:8081".to_owned())?;
    component_kit::spawn_serve(
        listen,
        component_kit::health_router(healthy.clone(), "last sweep failed\n"),
    );
    eprintln!(
        "retention: indices {}-YYYY-MM-DD of {} older than {} days, every {interval:?}",
        sweeper.prefix, sweeper.store, sweeper.days
    );
    loop {
        // A failed sweep (the store starting, or away) is tried again soon.
        let pause = match sweeper.sweep().await {
            Ok(()) => {
                healthy.store(true, Ordering::Relaxed);
                interval
            }
            Err(e) => {
                healthy.store(false, Ordering::Relaxed);
                eprintln!("error: retention sweep: {e:#}");
                interval.min(Duration::from_secs(2))
            }
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    // SIGTERM: nothing is in flight between sweeps worth finishing.
    component_kit::exit_on_sigterm();
    component_kit::exit_code(run().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dated_indices_of_the_prefix_older_than_the_limit_expire() {
        let names: Vec<String> = [
            "logs-2026-11-27",
            "logs-2026-11-20",
            "logs-2026-11-19",
            "logs-2020-01-01",
            "logs-notadate",
            "other-2020-01-01",
            "logsx-2020-01-01",
        ]
        .map(str::to_owned)
        .to_vec();
        let today = time::macros::date!(2026 - 11 - 27);
        assert_eq!(
            expired(&names, "logs", 7, today),
            ["logs-2026-11-19", "logs-2020-01-01"]
        );
    }
}
