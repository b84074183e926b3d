//! enqueue: the webhook that object-store notifications reach. `POST /notify`
//! queues every record whose `opaqueData` matches the configured secret and
//! whose key matches the dataset regexp (`LPUSH QUEUE:{bucket}`), records
//! `FILE:{key}` with `recv_time` (7-day TTL) and counts accepted keys per day.
//! `GET /healthz` answers once Redis answers `PING`.

use std::sync::Arc;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use embargo_components::{decode_key, env, env_or, queue};
use redis::AsyncCommands as _;
use serde::Deserialize;

const FILE_TTL_SECONDS: i64 = 7 * 24 * 3600;

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    s3: S3,
    #[serde(rename = "opaqueData", default)]
    opaque_data: String,
}

#[derive(Deserialize)]
struct S3 {
    bucket: Named,
    object: Object,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct Object {
    key: String,
}

struct App {
    redis: redis::aio::MultiplexedConnection,
    secret: String,
    dataset: regex::Regex,
}

async fn notify(
    State(app): State<Arc<App>>,
    body: axum::body::Bytes,
) -> (StatusCode, Json<serde_json::Value>) {
    let notification: Notification = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": format!("not a notification: {e}")})),
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
    let (mut accepted, mut skipped) = (0u64, Vec::new());
    let mut redis = app.redis.clone();
    for record in notification.records {
        let key = decode_key(&record.s3.object.key);
        if record.opaque_data != app.secret {
            skipped.push(serde_json::json!({"key": key, "reason": "opaqueData does not match"}));
            continue;
        }
        if !app.dataset.is_match(&key) {
            skipped.push(
                serde_json::json!({"key": key, "reason": "key does not match the dataset regexp"}),
            );
            continue;
        }
        let bucket = record.s3.bucket.name;
        let file = format!("FILE:{key}");
        let result: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .lpush(queue(&bucket), &key)
            .hset(&file, "recv_time", now.unix_timestamp_nanos() as f64 / 1e9)
            .expire(&file, FILE_TTL_SECONDS)
            .incr(format!("COUNT:{bucket}:{day}"), 1)
            .query_async(&mut redis)
            .await;
        if let Err(e) = result {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"error": format!("redis: {e}"), "accepted": accepted})),
            );
        }
        accepted += 1;
    }
    (
        StatusCode::OK,
        Json(serde_json::json!({"accepted": accepted, "skipped": skipped})),
    )
}

async fn healthz(State(app): State<Arc<App>>) -> (StatusCode, &'static str) {
    let mut redis = app.redis.clone();
    match redis.ping::<String>().await {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "redis unreachable\n"),
    }
}

async fn run() -> anyhow::Result<()> {
    embargo_components::exit_on_sigterm();
    let listen = env_or("LISTEN", "0.0.0.0:8080".to_owned())?;
    let pattern = env_or("DATASET_REGEXP", "fits$".to_owned())?;
    let app = Arc::new(App {
        redis: embargo_components::redis().await?,
        secret: env("NOTIFICATION_SECRET")?,
        dataset: regex::Regex::new(&pattern)
            .with_context(|| format!("DATASET_REGEXP {pattern:?}"))?,
    });
    let router = Router::new()
        .route("/notify", post(notify))
        .route("/healthz", get(healthz))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    eprintln!("enqueue listening on {listen}");
    axum::serve(listener, router).await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    embargo_components::exit_code(run().await)
}
