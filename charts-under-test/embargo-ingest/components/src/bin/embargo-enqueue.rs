//! enqueue: the webhook that object-store notifications reach. `POST /notify`
//! queues every record whose `opaqueData` matches the configured secret and
//! whose key matches the dataset regexp (`LPUSH QUEUE:{bucket}`), records
//! `FILE:{key}` with `recv_time` (7-day TTL) and counts accepted keys per day.
//! A notification is written in one Redis transaction: all of its accepted
//! records or none. Anything but a notification gets a 4xx with the reason.
//! `GET /healthz` answers once Redis answers `PING`; `GET /metrics` has the counters.

use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use embargo_components::{decode_key, env, env_or, queue, Counters, Notification};
use redis::AsyncCommands as _;

const FILE_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// What `/metrics` reports: notifications received and refused (4xx), records
/// seen, accepted (queued), skipped for their `opaqueData` or key, and
/// notifications Redis failed to store (503).
const COUNTERS: &[&str] = &[
    "notifications",
    "refused",
    "records",
    "accepted",
    "skipped_secret",
    "skipped_regexp",
    "redis_errors",
];

struct App {
    redis: redis::aio::ConnectionManager,
    secret: String,
    dataset: regex::Regex,
    counters: Arc<Counters>,
    /// Turns `true` at SIGTERM when a shutdown delay is set: unready from then on.
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// A 4xx answer with its reason, counted and logged.
fn refuse(app: &App, status: StatusCode, reason: String) -> (StatusCode, Json<serde_json::Value>) {
    app.counters.add("refused", 1);
    eprintln!("refused ({status}): {reason}");
    (status, Json(serde_json::json!({"error": reason})))
}

async fn notify(
    State(app): State<Arc<App>>,
    body: axum::body::Bytes,
) -> (StatusCode, Json<serde_json::Value>) {
    app.counters.add("notifications", 1);
    let notification: Notification = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return refuse(
                &app,
                StatusCode::BAD_REQUEST,
                format!("not an object-store notification ({{\"Records\": [{{\"s3\": {{\"bucket\": {{\"name\": …}}, \"object\": {{\"key\": …}}}}, \"opaqueData\": …}}]}}): {e}"),
            )
        }
    };
    let now = time::OffsetDateTime::now_utc();
    let day = format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    );
    let (mut accepted, mut skipped) = (Vec::new(), Vec::new());
    let mut transaction = redis::pipe();
    transaction.atomic();
    for record in notification.records {
        app.counters.add("records", 1);
        let key = decode_key(&record.s3.object.key);
        let reason = if record.opaque_data != app.secret {
            app.counters.add("skipped_secret", 1);
            Some("opaqueData does not match")
        } else if !app.dataset.is_match(&key) {
            app.counters.add("skipped_regexp", 1);
            Some("key does not match the dataset regexp")
        } else {
            None
        };
        if let Some(reason) = reason {
            eprintln!("skipped {key:?}: {reason}");
            skipped.push(serde_json::json!({"key": key, "reason": reason}));
            continue;
        }
        let bucket = record.s3.bucket.name;
        let file = format!("FILE:{key}");
        transaction
            .lpush(queue(&bucket), &key)
            .hset(&file, "recv_time", now.unix_timestamp_nanos() as f64 / 1e9)
            .expire(&file, FILE_TTL_SECONDS)
            .incr(format!("COUNT:{bucket}:{day}"), 1);
        accepted.push(key);
    }
    if !accepted.is_empty() {
        let mut redis = app.redis.clone();
        let result: redis::RedisResult<()> = transaction.query_async(&mut redis).await;
        if let Err(e) = result {
            app.counters.add("redis_errors", 1);
            eprintln!("error: {} keys not queued: redis: {e}", accepted.len());
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    serde_json::json!({"error": format!("redis: {e} (nothing queued; send the notification again)"), "accepted": 0}),
                ),
            );
        }
    }
    app.counters.add("accepted", accepted.len() as u64);
    (
        StatusCode::OK,
        Json(serde_json::json!({"accepted": accepted.len(), "skipped": skipped})),
    )
}

async fn metrics(State(app): State<Arc<App>>) -> Json<serde_json::Value> {
    Json(app.counters.json())
}

/// Any other path: 404 with what is served.
async fn unknown_path(
    State(app): State<Arc<App>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> (StatusCode, Json<serde_json::Value>) {
    refuse(
        &app,
        StatusCode::NOT_FOUND,
        format!("no {method} {}: notifications go to POST /notify (also served: GET /healthz, GET /livez, GET /metrics)", uri.path()),
    )
}

/// A served path with another method: 405 with the method it takes.
async fn wrong_method(
    State(app): State<Arc<App>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
) -> (StatusCode, Json<serde_json::Value>) {
    let allowed = if uri.path() == "/notify" {
        "POST"
    } else {
        "GET"
    };
    refuse(
        &app,
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} {} is not served: use {allowed}", uri.path()),
    )
}

async fn healthz(State(app): State<Arc<App>>) -> (StatusCode, &'static str) {
    if *app.stopping.borrow() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    }
    let mut redis = app.redis.clone();
    match redis.ping::<String>().await {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable\n"),
    }
}

async fn run() -> anyhow::Result<()> {
    // With SHUTDOWN_DELAY_SECONDS, SIGTERM first makes the pod unready and keeps
    // serving that long, so requests routed to it before every node's
    // kube-proxy has dropped it from the Service are still answered (a drain
    // without failed requests); without it, SIGTERM exits at once.
    let delay: u64 = env_or("SHUTDOWN_DELAY_SECONDS", "0".to_owned())?
        .parse()
        .context("SHUTDOWN_DELAY_SECONDS is not a number of seconds")?;
    let stopping = if delay == 0 {
        embargo_components::exit_on_sigterm();
        tokio::sync::watch::channel(false).1
    } else {
        component_kit::stop_on_sigterm()
    };
    let listen = env_or("LISTEN", "0.0.0.0:8080".to_owned())?;
    let pattern = env_or("DATASET_REGEXP", "fits$".to_owned())?;
    let app = Arc::new(App {
        counters: Counters::new(COUNTERS),
        redis: embargo_components::redis().await?,
        secret: env("NOTIFICATION_SECRET")?,
        dataset: regex::Regex::new(&pattern)
            .with_context(|| format!("DATASET_REGEXP {pattern:?}"))?,
        stopping: stopping.clone(),
    });
    let router = Router::new()
        .route("/notify", post(notify).fallback(wrong_method))
        .route("/healthz", get(healthz).fallback(wrong_method))
        // Liveness: the process answers. Not Redis: a Redis restart must not restart enqueue.
        .route("/livez", get(|| async { "alive\n" }).fallback(wrong_method))
        .route("/metrics", get(metrics).fallback(wrong_method))
        .fallback(unknown_path)
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    eprintln!("enqueue listening on {listen}");
    let mut stopping = stopping;
    let shutdown = async move {
        if stopping.wait_for(|stop| *stop).await.is_ok() {
            eprintln!("SIGTERM: unready, serving {delay} s more");
            tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
            eprintln!("exiting");
        } else {
            std::future::pending::<()>().await;
        }
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    embargo_components::exit_code(run().await)
}
