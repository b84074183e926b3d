//! Talking to pods through the API server: exec and port-forward.

use crate::cluster::{api_error, ClusterError};

/// Runs `command` in `pod` through the API server; returns stdout.
///
/// # Errors
/// The exec request fails, or the command exits non-zero (with its stderr).
pub async fn exec(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    pod: &str,
    command: &[&str],
) -> Result<String, ClusterError> {
    use tokio::io::AsyncReadExt;
    let shown = command.join(" ");
    let params = kube::api::AttachParams::default()
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut attached = pods
        .exec(pod, command.iter().copied(), &params)
        .await
        .map_err(api_error(format!("exec `{shown}` in {pod}")))?;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let out_reader = attached.stdout();
    let err_reader = attached.stderr();
    let status = attached.take_status();
    let read_out = async {
        if let Some(mut r) = out_reader {
            let _ = r.read_to_string(&mut stdout).await;
        }
    };
    let read_err = async {
        if let Some(mut r) = err_reader {
            let _ = r.read_to_string(&mut stderr).await;
        }
    };
    futures::join!(read_out, read_err);
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let _ = attached.join().await;
    match status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(stdout),
        Some(s) => Err(ClusterError::Exec {
            command: shown,
            pod: pod.to_owned(),
            detail: format!(
                "{}; stderr: {}",
                s.message.unwrap_or_default(),
                stderr.trim()
            ),
        }),
        None => Err(ClusterError::Exec {
            command: shown,
            pod: pod.to_owned(),
            detail: format!("no exit status; stderr: {}", stderr.trim()),
        }),
    }
}

/// Sends one HTTP/1.0 request to `port` of `pod` through an API-server
/// port-forward (no local port is opened); returns the raw response.
///
/// # Errors
/// The port-forward cannot be opened or the exchange fails.
pub async fn port_forward_http(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    pod: &str,
    port: u16,
    request: &str,
) -> Result<String, ClusterError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut forwarder = pods
        .portforward(pod, &[port])
        .await
        .map_err(api_error(format!("port-forward to {pod}:{port}")))?;
    let mut stream = forwarder
        .take_stream(port)
        .ok_or_else(|| ClusterError::Exec {
            command: format!("port-forward {port}"),
            pod: pod.to_owned(),
            detail: "no stream for the port".into(),
        })?;
    let io_error = |e: std::io::Error| ClusterError::Exec {
        command: format!("port-forward {port}"),
        pod: pod.to_owned(),
        detail: e.to_string(),
    };
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(io_error)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.map_err(io_error)?;
    drop(stream);
    let _ = forwarder.join().await;
    Ok(String::from_utf8_lossy(&response).into_owned())
}
