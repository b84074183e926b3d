//! Cluster DNS: the `cluster.local` zone computed from Services and Endpoints,
//! answered in the DNS wire format of `hickory-proto` (one question per query;
//! A, SRV, CNAME answers; NXDOMAIN for names it does not hold; no recursion;
//! names compressed; the TC bit on UDP answers too long for the client).
//!
//! Names answered:
//! - `<svc>.<ns>.svc.<domain>`: the ClusterIP; for headless Services the ready
//!   endpoint addresses; for ExternalName Services a CNAME.
//! - `<host>.<svc>.<ns>.svc.<domain>`: the endpoint whose hostname is `<host>`
//!   (StatefulSet pods with a subdomain) or whose address is `<host>` dashed.
//! - `_<port>._<proto>.<svc>.<ns>.svc.<domain>` SRV for named ports.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context as _};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query as HQuery, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME, SOA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record as HRecord, RecordType};

/// Record types.
pub const TYPE_A: u16 = 1;
/// CNAME.
pub const TYPE_CNAME: u16 = 5;
/// SOA.
pub const TYPE_SOA: u16 = 6;
/// AAAA.
pub const TYPE_AAAA: u16 = 28;
/// SRV.
pub const TYPE_SRV: u16 = 33;
/// ANY.
pub const TYPE_ANY: u16 = 255;
/// Time to live of answers: short, so changes show quickly.
const TTL: u32 = 5;

/// A port of a Service or endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Port name (SRV needs one).
    pub name: String,
    /// `tcp` or `udp`, lowercase.
    pub protocol: String,
    /// Number.
    pub port: u16,
}

/// A ready endpoint of a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Pod address.
    pub ip: Ipv4Addr,
    /// `spec.hostname` of the pod when it has a subdomain matching the Service.
    pub hostname: Option<String>,
    /// Ports of the endpoint.
    pub ports: Vec<Port>,
}

/// A Service as DNS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// ClusterIP; `None` for headless Services.
    pub cluster_ip: Option<Ipv4Addr>,
    /// Target of an ExternalName Service.
    pub external_name: Option<String>,
    /// Service ports.
    pub ports: Vec<Port>,
    /// Ready endpoints.
    pub endpoints: Vec<Endpoint>,
}

/// One answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Address record.
    A(String, Ipv4Addr),
    /// Alias.
    Cname(String, String),
    /// Service record: name, port, target.
    Srv(String, u16, String),
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Records of the asked type.
    Records(Vec<Record>),
    /// The name exists but has no records of that type.
    NoData,
    /// The name does not exist.
    NxDomain,
}

/// Looks `qname` up among `services` for `domain` (e.g. `cluster.local`).
pub fn resolve(services: &[ServiceEntry], domain: &str, qname: &str, qtype: u16) -> Answer {
    let name = qname.trim_end_matches('.').to_ascii_lowercase();
    let suffix = format!(".svc.{domain}");
    let Some(rest) = name.strip_suffix(&suffix) else {
        return if name == domain || name == format!("svc.{domain}") {
            Answer::NoData
        } else {
            Answer::NxDomain
        };
    };
    let labels: Vec<&str> = rest.split('.').collect();
    let find = |svc: &str, ns: &str| services.iter().find(|s| s.name == svc && s.namespace == ns);
    let fqdn = |parts: &[&str]| format!("{}.svc.{domain}", parts.join("."));
    let wants = |t: u16| qtype == t || qtype == TYPE_ANY;

    match labels.as_slice() {
        [ns] => {
            if services.iter().any(|s| s.namespace == *ns) {
                Answer::NoData
            } else {
                Answer::NxDomain
            }
        }
        [svc, ns] => {
            let Some(s) = find(svc, ns) else {
                return Answer::NxDomain;
            };
            if let Some(target) = &s.external_name {
                return Answer::Records(vec![Record::Cname(
                    name.clone(),
                    target.trim_end_matches('.').to_owned(),
                )]);
            }
            if !wants(TYPE_A) {
                return Answer::NoData;
            }
            let records: Vec<Record> = match s.cluster_ip {
                Some(ip) => vec![Record::A(name.clone(), ip)],
                None => s
                    .endpoints
                    .iter()
                    .map(|e| Record::A(name.clone(), e.ip))
                    .collect(),
            };
            if records.is_empty() {
                Answer::NoData
            } else {
                Answer::Records(records)
            }
        }
        [port, proto, svc, ns] if port.starts_with('_') && proto.starts_with('_') => {
            let Some(s) = find(svc, ns) else {
                return Answer::NxDomain;
            };
            let (port_name, protocol) = (&port[1..], &proto[1..]);
            let Some(service_port) = s
                .ports
                .iter()
                .find(|p| p.name == port_name && p.protocol == protocol)
            else {
                return Answer::NxDomain;
            };
            if !wants(TYPE_SRV) {
                return Answer::NoData;
            }
            let records: Vec<Record> = if s.cluster_ip.is_some() {
                vec![Record::Srv(
                    name.clone(),
                    service_port.port,
                    fqdn(&[svc, ns]),
                )]
            } else {
                s.endpoints
                    .iter()
                    .filter_map(|e| {
                        let port = e
                            .ports
                            .iter()
                            .find(|p| p.name == port_name && p.protocol == protocol)?;
                        let host = e.hostname.clone().unwrap_or_else(|| dashed(e.ip));
                        Some(Record::Srv(
                            name.clone(),
                            port.port,
                            fqdn(&[&host, svc, ns]),
                        ))
                    })
                    .collect()
            };
            if records.is_empty() {
                Answer::NoData
            } else {
                Answer::Records(records)
            }
        }
        [host, svc, ns] => {
            let Some(s) = find(svc, ns) else {
                return Answer::NxDomain;
            };
            let hit = s
                .endpoints
                .iter()
                .find(|e| e.hostname.as_deref() == Some(host) || dashed(e.ip) == *host);
            match hit {
                None => Answer::NxDomain,
                Some(_) if !wants(TYPE_A) => Answer::NoData,
                Some(e) => Answer::Records(vec![Record::A(name.clone(), e.ip)]),
            }
        }
        _ => Answer::NxDomain,
    }
}

fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

/// A parsed query: the request and its one question's name, type and class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Question name, dotted, without trailing dot.
    pub name: String,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    request: Message,
}

/// The largest UDP answer `query` may get: 512 bytes, or its EDNS payload size.
pub fn udp_limit(query: &Query) -> usize {
    usize::from(query.request.max_payload())
}

/// Parses a query with exactly one question.
///
/// # Errors
/// A malformed message, a response, or not exactly one question.
pub fn parse_query(msg: &[u8]) -> anyhow::Result<Query> {
    let request = Message::from_vec(msg).context("malformed DNS message")?;
    if request.metadata.message_type != MessageType::Query {
        bail!("not a query");
    }
    let [question] = request.queries.as_slice() else {
        bail!("{} questions (one expected)", request.queries.len());
    };
    let name = question.name().to_ascii();
    Ok(Query {
        name: name.trim_end_matches('.').to_owned(),
        qtype: u16::from(question.query_type()),
        qclass: u16::from(question.query_class()),
        request,
    })
}

fn dns_name(name: &str) -> anyhow::Result<Name> {
    let mut name = Name::from_ascii(name.trim_end_matches('.'))
        .with_context(|| format!("{name:?} is not a DNS name"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Builds the response to `query` with `answer`; `domain` is the zone for the SOA
/// that negative answers carry. Non-IN classes get REFUSED. Names are
/// compressed; an answer longer than `limit` bytes (see [`udp_limit`]; 65535
/// over TCP) is sent empty with the TC bit, so the client asks again over TCP.
///
/// # Errors
/// A name in the answer is not a DNS name.
pub fn build_response(
    query: &Query,
    answer: &Answer,
    domain: &str,
    limit: usize,
) -> anyhow::Result<Vec<u8>> {
    let request = &query.request;
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata.authoritative = true;
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        response.set_edns(Edns::new());
    }
    let (code, records): (ResponseCode, &[Record]) = match answer {
        _ if query.qclass != u16::from(DNSClass::IN) => (ResponseCode::Refused, &[]),
        Answer::Records(r) => (ResponseCode::NoError, r),
        Answer::NoData => (ResponseCode::NoError, &[]),
        Answer::NxDomain => (ResponseCode::NXDomain, &[]),
    };
    response.metadata.response_code = code;
    for r in records {
        let record = match r {
            Record::A(name, ip) => HRecord::from_rdata(dns_name(name)?, TTL, RData::A(A(*ip))),
            Record::Cname(name, target) => {
                HRecord::from_rdata(dns_name(name)?, TTL, RData::CNAME(CNAME(dns_name(target)?)))
            }
            Record::Srv(name, port, target) => HRecord::from_rdata(
                dns_name(name)?,
                TTL,
                RData::SRV(SRV::new(0, 100, *port, dns_name(target)?)),
            ),
        };
        response.add_answer(record);
    }
    if records.is_empty() && code != ResponseCode::Refused {
        let soa = SOA::new(
            dns_name(&format!("ns.dns.{domain}"))?,
            dns_name(&format!("hostmaster.{domain}"))?,
            1,
            7200,
            1800,
            86400,
            TTL,
        );
        response.add_authority(HRecord::from_rdata(dns_name(domain)?, TTL, RData::SOA(soa)));
    }
    let bytes = response.to_vec().context("encoding the response")?;
    if bytes.len() <= limit {
        return Ok(bytes);
    }
    response
        .truncate()
        .to_vec()
        .context("encoding the truncated response")
}

/// A query for `name`/`qtype` with the given id (recursion desired, as stub resolvers send).
///
/// # Errors
/// `name` is not a DNS name.
pub fn build_query(id: u16, name: &str, qtype: u16) -> anyhow::Result<Vec<u8>> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(HQuery::query(dns_name(name)?, RecordType::from(qtype)));
    message.to_vec().context("encoding the query")
}

/// Reads the answers of a response: rcode, the TC bit, and the addresses of its A records.
///
/// # Errors
/// A malformed response.
pub fn parse_a_answers(msg: &[u8]) -> anyhow::Result<(u16, bool, Vec<Ipv4Addr>)> {
    let response = Message::from_vec(msg).context("malformed DNS response")?;
    let ips = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    Ok((
        u16::from(response.metadata.response_code.low()),
        response.metadata.truncation,
        ips,
    ))
}

/// Asks `server` over UDP for the A records of `name`.
///
/// # Errors
/// No answer within `timeout`, a malformed answer, or an error rcode.
pub async fn query_a(
    server: SocketAddr,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<Vec<Ipv4Addr>> {
    let socket = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
    let id = (std::process::id() as u16) ^ 0x5a5a;
    socket
        .send_to(&build_query(id, name, TYPE_A)?, server)
        .await?;
    let mut buf = vec![0u8; 1500];
    let (n, _) = tokio::time::timeout(timeout, socket.recv_from(&mut buf))
        .await
        .context("no answer")??;
    let (rcode, truncated, ips) = parse_a_answers(&buf[..n])?;
    anyhow::ensure!(rcode == 0, "rcode {rcode}");
    anyhow::ensure!(!truncated, "the answer was truncated (ask over TCP)");
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(name: &str, n: u16) -> Port {
        Port {
            name: name.into(),
            protocol: "tcp".into(),
            port: n,
        }
    }

    fn zone() -> Vec<ServiceEntry> {
        vec![
            ServiceEntry {
                name: "web".into(),
                namespace: "t1".into(),
                cluster_ip: Some(Ipv4Addr::new(10, 96, 0, 20)),
                external_name: None,
                ports: vec![port("http", 80)],
                endpoints: vec![],
            },
            ServiceEntry {
                name: "kafka".into(),
                namespace: "t1".into(),
                cluster_ip: None,
                external_name: None,
                ports: vec![port("kafka", 9092)],
                endpoints: vec![
                    Endpoint {
                        ip: Ipv4Addr::new(10, 244, 0, 7),
                        hostname: Some("kafka-0".into()),
                        ports: vec![port("kafka", 9092)],
                    },
                    Endpoint {
                        ip: Ipv4Addr::new(10, 244, 0, 8),
                        hostname: None,
                        ports: vec![port("kafka", 9092)],
                    },
                ],
            },
            ServiceEntry {
                name: "ext".into(),
                namespace: "t1".into(),
                cluster_ip: None,
                external_name: Some("db.example.org".into()),
                ports: vec![],
                endpoints: vec![],
            },
        ]
    }

    fn a(name: &str, ip: [u8; 4]) -> Record {
        Record::A(name.into(), Ipv4Addr::from(ip))
    }

    #[test]
    fn services_resolve_to_cluster_ips_and_headless_to_endpoints() {
        let z = zone();
        assert_eq!(
            resolve(&z, "cluster.local", "web.t1.svc.cluster.local.", TYPE_A),
            Answer::Records(vec![a("web.t1.svc.cluster.local", [10, 96, 0, 20])])
        );
        assert_eq!(
            resolve(&z, "cluster.local", "Kafka.T1.svc.cluster.local", TYPE_A),
            Answer::Records(vec![
                a("kafka.t1.svc.cluster.local", [10, 244, 0, 7]),
                a("kafka.t1.svc.cluster.local", [10, 244, 0, 8])
            ])
        );
        assert_eq!(
            resolve(
                &z,
                "cluster.local",
                "kafka-0.kafka.t1.svc.cluster.local",
                TYPE_A
            ),
            Answer::Records(vec![a(
                "kafka-0.kafka.t1.svc.cluster.local",
                [10, 244, 0, 7]
            )])
        );
        assert_eq!(
            resolve(
                &z,
                "cluster.local",
                "10-244-0-8.kafka.t1.svc.cluster.local",
                TYPE_A
            ),
            Answer::Records(vec![a(
                "10-244-0-8.kafka.t1.svc.cluster.local",
                [10, 244, 0, 8]
            )])
        );
        assert_eq!(
            resolve(&z, "cluster.local", "ext.t1.svc.cluster.local", TYPE_A),
            Answer::Records(vec![Record::Cname(
                "ext.t1.svc.cluster.local".into(),
                "db.example.org".into()
            )])
        );
    }

    #[test]
    fn srv_records_name_ports_and_targets() {
        let z = zone();
        assert_eq!(
            resolve(
                &z,
                "cluster.local",
                "_http._tcp.web.t1.svc.cluster.local",
                TYPE_SRV
            ),
            Answer::Records(vec![Record::Srv(
                "_http._tcp.web.t1.svc.cluster.local".into(),
                80,
                "web.t1.svc.cluster.local".into()
            )])
        );
        assert_eq!(
            resolve(
                &z,
                "cluster.local",
                "_kafka._tcp.kafka.t1.svc.cluster.local",
                TYPE_SRV
            ),
            Answer::Records(vec![
                Record::Srv(
                    "_kafka._tcp.kafka.t1.svc.cluster.local".into(),
                    9092,
                    "kafka-0.kafka.t1.svc.cluster.local".into()
                ),
                Record::Srv(
                    "_kafka._tcp.kafka.t1.svc.cluster.local".into(),
                    9092,
                    "10-244-0-8.kafka.t1.svc.cluster.local".into()
                ),
            ])
        );
        assert_eq!(
            resolve(
                &z,
                "cluster.local",
                "_nope._tcp.web.t1.svc.cluster.local",
                TYPE_SRV
            ),
            Answer::NxDomain
        );
    }

    #[test]
    fn other_names_and_types_are_negative() {
        let z = zone();
        assert_eq!(
            resolve(&z, "cluster.local", "web.t1.svc.cluster.local", TYPE_AAAA),
            Answer::NoData
        );
        assert_eq!(
            resolve(&z, "cluster.local", "missing.t1.svc.cluster.local", TYPE_A),
            Answer::NxDomain
        );
        assert_eq!(
            resolve(
                &z,
                "cluster.local",
                "kafka-9.kafka.t1.svc.cluster.local",
                TYPE_A
            ),
            Answer::NxDomain
        );
        assert_eq!(
            resolve(&z, "cluster.local", "example.org", TYPE_A),
            Answer::NxDomain
        );
        assert_eq!(
            resolve(&z, "cluster.local", "t1.svc.cluster.local", TYPE_A),
            Answer::NoData
        );
    }

    #[test]
    fn wire_round_trip() {
        let query_bytes = build_query(0x1234, "web.t1.svc.cluster.local", TYPE_A).unwrap();
        let query = parse_query(&query_bytes).unwrap();
        assert_eq!(
            (query.name.as_str(), query.qtype, udp_limit(&query)),
            ("web.t1.svc.cluster.local", TYPE_A, 512)
        );
        let answer = resolve(&zone(), "cluster.local", &query.name, query.qtype);
        let response = build_response(&query, &answer, "cluster.local", 512).unwrap();
        assert_eq!(&response[..2], &[0x12, 0x34], "the id is echoed");
        assert_eq!(
            parse_a_answers(&response).unwrap(),
            (0, false, vec![Ipv4Addr::new(10, 96, 0, 20)])
        );
        let missing =
            parse_query(&build_query(7, "nope.t1.svc.cluster.local", TYPE_A).unwrap()).unwrap();
        let response = build_response(&missing, &Answer::NxDomain, "cluster.local", 512).unwrap();
        assert_eq!(parse_a_answers(&response).unwrap(), (3, false, vec![]));
        assert!(parse_query(&response).is_err(), "a response is not a query");
        assert!(parse_query(&query_bytes[..15]).is_err());
    }

    /// A headless Service with many ready pods: names compressed, and over UDP's
    /// 512 bytes the answer is empty with the TC bit; over TCP it is whole.
    #[test]
    fn long_answers_are_compressed_and_truncated_for_udp() {
        let endpoints = (1..=60)
            .map(|i| Endpoint {
                ip: Ipv4Addr::new(10, 244, 1, i),
                hostname: None,
                ports: vec![],
            })
            .collect();
        let zone = vec![ServiceEntry {
            name: "many".into(),
            namespace: "t1".into(),
            cluster_ip: None,
            external_name: None,
            ports: vec![],
            endpoints,
        }];
        let name = "many.t1.svc.cluster.local";
        let query = parse_query(&build_query(9, name, TYPE_A).unwrap()).unwrap();
        let answer = resolve(&zone, "cluster.local", name, TYPE_A);
        let whole = build_response(&query, &answer, "cluster.local", 65535).unwrap();
        let (_, truncated, ips) = parse_a_answers(&whole).unwrap();
        assert_eq!((truncated, ips.len()), (false, 60));
        // Uncompressed, each record would repeat the 27-byte name: 60 * (27 + 14).
        assert!(
            whole.len() < 60 * 20,
            "{} bytes: names not compressed",
            whole.len()
        );
        let udp = build_response(&query, &answer, "cluster.local", udp_limit(&query)).unwrap();
        assert!(udp.len() <= 512);
        assert_eq!(parse_a_answers(&udp).unwrap(), (0, true, vec![]));
    }
}
