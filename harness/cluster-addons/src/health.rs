//! The `/healthz` endpoint of the addons: 200 once they have synced, 503 before.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `GET /healthz` on `addr` until the process ends.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(addr: String, ready: Arc<AtomicBool>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let ready = ready.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), stream.read(&mut buf))
                .await;
            let response = if ready.load(Ordering::Relaxed) {
                "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"
            } else {
                "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 8\r\n\r\nsyncing\n"
            };
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}
