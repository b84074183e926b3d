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

/// Sends one HTTP/1.1 request (hyper) to `port` of `pod` through an API-server
/// port-forward (no local port is opened); returns (status code, body).
///
/// # Errors
/// The port-forward cannot be opened or the exchange fails.
pub async fn port_forward_http(
    pods: &kube::Api<k8s_openapi::api::core::v1::Pod>,
    pod: &str,
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
) -> Result<(u16, String), ClusterError> {
    let mut forwarder = pods
        .portforward(pod, &[port])
        .await
        .map_err(api_error(format!("port-forward to {pod}:{port}")))?;
    let failed = |detail: String| ClusterError::Exec {
        command: format!("{method} {path} via port-forward {port}"),
        pod: pod.to_owned(),
        detail,
    };
    let stream = forwarder
        .take_stream(port)
        .ok_or_else(|| failed("no stream for the port".into()))?;
    let answer = exchange(stream, &format!("{pod}:{port}"), method, path, body)
        .await
        .map_err(|e| failed(e.to_string()));
    let _ = forwarder.join().await;
    answer
}

/// A local TCP port on 127.0.0.1 (chosen by the OS, so parallel cases never
/// collide) forwarded to a port of a pod through the API server. Each accepted
/// connection gets its own port-forward stream. Dropping it stops forwarding.
#[derive(Debug)]
pub struct PortForward {
    local: std::net::SocketAddr,
    target: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PortForward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl PortForward {
    /// Forwards a free local port to `port` of pod `pod` in `namespace`.
    ///
    /// # Errors
    /// No local port can be bound.
    pub async fn to_pod(
        client: &kube::Client,
        namespace: &str,
        pod: &str,
        port: u16,
    ) -> Result<Self, ClusterError> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| ClusterError::Exec {
                command: format!("port-forward {port}"),
                pod: pod.to_owned(),
                detail: format!("cannot bind a local port: {e}"),
            })?;
        let local = listener.local_addr().map_err(|e| ClusterError::Exec {
            command: format!("port-forward {port}"),
            pod: pod.to_owned(),
            detail: e.to_string(),
        })?;
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
            kube::Api::namespaced(client.clone(), namespace);
        let pod_name = pod.to_owned();
        let task = tokio::spawn(async move {
            while let Ok((mut connection, _)) = listener.accept().await {
                let (pods, pod_name) = (pods.clone(), pod_name.clone());
                tokio::spawn(async move {
                    let Ok(mut forwarder) = pods.portforward(&pod_name, &[port]).await else {
                        return;
                    };
                    if let Some(mut upstream) = forwarder.take_stream(port) {
                        let _ = tokio::io::copy_bidirectional(&mut connection, &mut upstream).await;
                        drop(upstream);
                    }
                    let _ = forwarder.join().await;
                });
            }
        });
        Ok(Self {
            local,
            target: format!("pod/{pod}:{port}"),
            task,
        })
    }

    /// Forwards a free local port to Service `service`'s `port`: to the target
    /// port of one of its ready endpoints (as `kubectl port-forward svc/…` does).
    ///
    /// # Errors
    /// The Service lacks the port or has no ready endpoint.
    pub async fn to_service(
        client: &kube::Client,
        namespace: &str,
        service: &str,
        port: u16,
    ) -> Result<Self, ClusterError> {
        use k8s_openapi::api::core::v1::{Endpoints, Service};
        let services: kube::Api<Service> = kube::Api::namespaced(client.clone(), namespace);
        let svc = services
            .get(service)
            .await
            .map_err(api_error(format!("read Service {service}")))?;
        let not_forwardable = |detail: String| ClusterError::Exec {
            command: format!("port-forward svc/{service} {port}"),
            pod: "-".into(),
            detail,
        };
        let spec_port = svc
            .spec
            .iter()
            .flat_map(|s| s.ports.iter().flatten())
            .find(|p| p.port == i32::from(port))
            .ok_or_else(|| not_forwardable(format!("Service {service} has no port {port}")))?;
        let endpoints: kube::Api<Endpoints> = kube::Api::namespaced(client.clone(), namespace);
        let eps = endpoints
            .get(service)
            .await
            .map_err(api_error(format!("read Endpoints {service}")))?;
        let target = eps.subsets.iter().flatten().find_map(|subset| {
            let port = subset
                .ports
                .iter()
                .flatten()
                .find(|p| p.name == spec_port.name)?;
            let pod = subset.addresses.iter().flatten().find_map(|a| {
                a.target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
            })?;
            Some((pod.name.clone()?, u16::try_from(port.port).ok()?))
        });
        let (pod, target_port) = target.ok_or_else(|| {
            not_forwardable(format!(
                "Service {service} has no ready endpoint (hint: wait with wait::endpoints_ready first)"
            ))
        })?;
        let mut forward = Self::to_pod(client, namespace, &pod, target_port).await?;
        forward.target = format!("svc/{service}:{port} (pod/{pod}:{target_port})");
        Ok(forward)
    }

    /// The local address to connect to.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local
    }

    /// `http://127.0.0.1:<port>` for HTTP clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.local)
    }

    /// What is forwarded, for messages.
    pub fn target(&self) -> &str {
        &self.target
    }
}

/// Sends one HTTP/1.1 request (hyper, one connection) to a local address and
/// returns (status code, body).
///
/// # Errors
/// The connection fails, or the answer is not HTTP.
pub async fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    exchange(stream, &addr.to_string(), method, path, body).await
}

/// One request and its answer over `io` (a TCP connection or a port-forward
/// stream), with hyper's HTTP/1 client; `host` is the Host header.
async fn exchange<T>(
    io: T,
    host: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> std::io::Result<(u16, String)>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    use http_body_util::BodyExt as _;
    let invalid = |e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("HTTP: {e}"))
    };
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| invalid(&e))?;
    let driver = tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host)
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
            body,
        )))
        .map_err(|e| invalid(&e))?;
    let outcome = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| invalid(&e))?;
        let status = response.status().as_u16();
        let collected = response
            .into_body()
            .collect()
            .await
            .map_err(|e| invalid(&e))?;
        Ok((
            status,
            String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
        ))
    }
    .await;
    driver.abort();
    outcome
}
