//! Cluster DNS addon: answers `cluster.local` names from Services and Endpoints,
//! which it follows by watching the API (no polling). See `cluster_addons::dns`.
//!
//! Usage: `cluster-dns [--listen ADDR] [--health ADDR] [--domain DOMAIN]`

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::dns::{self, Endpoint, Port, ServiceEntry};
use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Endpoints, Service};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::Api;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A Service or endpoint port as DNS sees it (protocol lowercase, TCP by default).
fn port(name: &Option<String>, protocol: &Option<String>, number: i32) -> Port {
    Port {
        name: name.clone().unwrap_or_default(),
        protocol: protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase(),
        port: number as u16,
    }
}

#[derive(Clone)]
struct Zone {
    services: Store<Service>,
    endpoints: Store<Endpoints>,
    domain: String,
}

impl Zone {
    fn entries(&self) -> Vec<ServiceEntry> {
        let endpoints = self.endpoints.state();
        self.services
            .state()
            .iter()
            .filter_map(|s| {
                let name = s.metadata.name.clone()?;
                let namespace = s.metadata.namespace.clone()?;
                let spec = s.spec.as_ref()?;
                let ports = spec
                    .ports
                    .iter()
                    .flatten()
                    .map(|p| port(&p.name, &p.protocol, p.port))
                    .collect();
                let ready = endpoints
                    .iter()
                    .find(|e| {
                        e.metadata.name.as_ref() == Some(&name)
                            && e.metadata.namespace.as_ref() == Some(&namespace)
                    })
                    .map(|e| {
                        e.subsets
                            .iter()
                            .flatten()
                            .flat_map(|subset| {
                                let ports: Vec<Port> = subset
                                    .ports
                                    .iter()
                                    .flatten()
                                    .map(|p| port(&p.name, &p.protocol, p.port))
                                    .collect();
                                subset.addresses.iter().flatten().filter_map(move |a| {
                                    Some(Endpoint {
                                        ip: a.ip.parse().ok()?,
                                        hostname: a.hostname.clone(),
                                        ports: ports.clone(),
                                    })
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let cluster_ip = spec
                    .cluster_ip
                    .as_deref()
                    .and_then(|ip| ip.parse::<Ipv4Addr>().ok());
                let external_name = (spec.type_.as_deref() == Some("ExternalName"))
                    .then(|| spec.external_name.clone())
                    .flatten();
                Some(ServiceEntry {
                    name,
                    namespace,
                    cluster_ip,
                    external_name,
                    ports,
                    endpoints: ready,
                })
            })
            .collect()
    }

    /// The response to `msg`, as long as `tcp` allows (UDP: the client's
    /// limit, else truncated); `None` for messages that are no query.
    fn answer(&self, msg: &[u8], tcp: bool) -> Option<Vec<u8>> {
        let query = dns::parse_query(msg).ok()?;
        let answer = dns::resolve(&self.entries(), &self.domain, &query.name, query.qtype);
        let limit = if tcp {
            usize::from(u16::MAX)
        } else {
            dns::udp_limit(&query)
        };
        match dns::build_response(&query, &answer, &self.domain, limit) {
            Ok(response) => Some(response),
            Err(e) => {
                eprintln!("error: answering {}: {e:#}", query.name);
                None
            }
        }
    }
}

/// The DNS addon's options.
#[derive(Parser)]
#[command(
    name = "cluster-dns",
    about = "Answers cluster.local names from the API"
)]
struct Options {
    /// UDP and TCP address to answer on.
    #[arg(long, default_value = "0.0.0.0:5353")]
    listen: String,
    /// Address of the `/healthz` endpoint.
    #[arg(long, default_value = "0.0.0.0:8080")]
    health: String,
    /// The cluster domain.
    #[arg(long, default_value = "cluster.local")]
    domain: String,
}

async fn run(options: Options) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("connecting to the API server")?;
    let (services, service_writer) = reflector::store::<Service>();
    let (endpoints, endpoint_writer) = reflector::store::<Endpoints>();
    let service_watch = reflector::reflector(
        service_writer,
        watcher(
            Api::<Service>::all(client.clone()),
            watcher::Config::default(),
        ),
    )
    .default_backoff()
    .for_each(|_| async {});
    let endpoint_watch = reflector::reflector(
        endpoint_writer,
        watcher(Api::<Endpoints>::all(client), watcher::Config::default()),
    )
    .default_backoff()
    .for_each(|_| async {});
    tokio::spawn(service_watch);
    tokio::spawn(endpoint_watch);

    let ready = Arc::new(AtomicBool::new(false));
    let health = crate::health::serve(options.health.clone(), ready.clone());
    tokio::spawn(async move {
        if let Err(e) = health.await {
            eprintln!("error: health endpoint failed: {e}");
        }
    });
    let zone = Zone {
        services: services.clone(),
        endpoints: endpoints.clone(),
        domain: options.domain.clone(),
    };

    let udp = Arc::new(
        tokio::net::UdpSocket::bind(&options.listen)
            .await
            .with_context(|| format!("binding udp {}", options.listen))?,
    );
    let tcp = tokio::net::TcpListener::bind(&options.listen)
        .await
        .with_context(|| format!("binding tcp {}", options.listen))?;
    services
        .wait_until_ready()
        .await
        .context("waiting for the Service watch")?;
    endpoints
        .wait_until_ready()
        .await
        .context("waiting for the Endpoints watch")?;
    ready.store(true, Ordering::Relaxed);
    eprintln!(
        "cluster-dns serving {} on {}",
        options.domain, options.listen
    );

    let tcp_zone = zone.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = tcp.accept().await else {
                continue;
            };
            let zone = tcp_zone.clone();
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 2];
                    if stream.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
                    if stream.read_exact(&mut msg).await.is_err() {
                        return;
                    }
                    let Some(response) = zone.answer(&msg, true) else {
                        return;
                    };
                    let mut framed = (response.len() as u16).to_be_bytes().to_vec();
                    framed.extend(response);
                    if stream.write_all(&framed).await.is_err() {
                        return;
                    }
                }
            });
        }
    });

    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = udp.recv_from(&mut buf).await?;
        if let Some(response) = zone.answer(&buf[..n], false) {
            let _ = udp.send_to(&response, peer).await;
        }
    }
}

/// Runs the DNS addon with `args` (the program name first).
pub fn main(args: Vec<std::ffi::OsString>) -> std::process::ExitCode {
    match Options::try_parse_from(args) {
        Ok(options) => crate::run_current_thread(run(options)),
        Err(e) => crate::usage_error(e),
    }
}
