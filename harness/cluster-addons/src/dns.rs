//! Cluster DNS: the `cluster.local` zone computed from Services and Endpoints,
//! and the small part of the DNS wire format it needs (one question per query;
//! A, SRV, CNAME answers; NXDOMAIN for names it does not hold; no recursion).
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

/// A parsed query: id, flags, the question's name, type and class, and the raw
/// question section (echoed in the response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Message id.
    pub id: u16,
    /// Header flags of the query.
    pub flags: u16,
    /// Question name, dotted, without trailing dot.
    pub name: String,
    /// Question type.
    pub qtype: u16,
    /// Question class.
    pub qclass: u16,
    question: Vec<u8>,
}

/// Parses a query with exactly one question.
///
/// # Errors
/// Truncated or malformed messages, compression in the question, or not exactly one question.
pub fn parse_query(msg: &[u8]) -> anyhow::Result<Query> {
    if msg.len() < 12 {
        bail!("message shorter than a header");
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    if flags & 0x8000 != 0 {
        bail!("not a query");
    }
    let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
    if qdcount != 1 {
        bail!("{qdcount} questions (one expected)");
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(pos).context("truncated name")? as usize;
        if len == 0 {
            pos += 1;
            break;
        }
        if len & 0xC0 != 0 {
            bail!("compressed or extended label in a question");
        }
        let label = msg.get(pos + 1..pos + 1 + len).context("truncated label")?;
        labels.push(String::from_utf8_lossy(label).into_owned());
        pos += 1 + len;
        if pos > 12 + 255 {
            bail!("name longer than 255 bytes");
        }
    }
    let tail = msg.get(pos..pos + 4).context("truncated question")?;
    let qtype = u16::from_be_bytes([tail[0], tail[1]]);
    let qclass = u16::from_be_bytes([tail[2], tail[3]]);
    Ok(Query {
        id,
        flags,
        name: labels.join("."),
        qtype,
        qclass,
        question: msg[12..pos + 4].to_vec(),
    })
}

fn encode_name(out: &mut Vec<u8>, name: &str) {
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let bytes = &label.as_bytes()[..label.len().min(63)];
        out.push(bytes.len() as u8);
        out.extend_from_slice(bytes);
    }
    out.push(0);
}

fn encode_rr(out: &mut Vec<u8>, name: &str, rtype: u16, rdata: &[u8]) {
    encode_name(out, name);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&TTL.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(rdata);
}

/// Builds the response to `query` with `answer`; `domain` is the zone for the SOA
/// that negative answers carry. Non-IN classes get REFUSED.
pub fn build_response(query: &Query, answer: &Answer, domain: &str) -> Vec<u8> {
    let (rcode, records): (u16, &[Record]) = match answer {
        _ if query.qclass != 1 => (5, &[]),
        Answer::Records(r) => (0, r),
        Answer::NoData => (0, &[]),
        Answer::NxDomain => (3, &[]),
    };
    let negative = records.is_empty() && rcode != 5;
    // QR, opcode copied, AA, RD copied, RA clear.
    let flags = 0x8000 | (query.flags & 0x7800) | 0x0400 | (query.flags & 0x0100) | rcode;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query.id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&u16::from(negative).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&query.question);
    for r in records {
        match r {
            Record::A(name, ip) => encode_rr(&mut out, name, TYPE_A, &ip.octets()),
            Record::Cname(name, target) => {
                let mut rdata = Vec::new();
                encode_name(&mut rdata, target);
                encode_rr(&mut out, name, TYPE_CNAME, &rdata);
            }
            Record::Srv(name, port, target) => {
                let mut rdata = Vec::new();
                rdata.extend_from_slice(&0u16.to_be_bytes());
                rdata.extend_from_slice(&100u16.to_be_bytes());
                rdata.extend_from_slice(&port.to_be_bytes());
                encode_name(&mut rdata, target);
                encode_rr(&mut out, name, TYPE_SRV, &rdata);
            }
        }
    }
    if negative {
        let mut rdata = Vec::new();
        encode_name(&mut rdata, &format!("ns.dns.{domain}"));
        encode_name(&mut rdata, &format!("hostmaster.{domain}"));
        for v in [1u32, 7200, 1800, 86400, TTL] {
            rdata.extend_from_slice(&v.to_be_bytes());
        }
        encode_rr(&mut out, domain, TYPE_SOA, &rdata);
    }
    out
}

/// A query for `name`/`qtype` with the given id (recursion desired, as stub resolvers send).
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes());
    out.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    encode_name(&mut out, name);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out
}

/// Reads the answers of a response: rcode and the addresses of its A records.
///
/// # Errors
/// A malformed response.
pub fn parse_a_answers(msg: &[u8]) -> anyhow::Result<(u16, Vec<Ipv4Addr>)> {
    anyhow::ensure!(msg.len() >= 12, "response shorter than a header");
    let rcode = u16::from_be_bytes([msg[2], msg[3]]) & 0x000F;
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut pos = 12;
    let skip_name = |mut pos: usize| -> anyhow::Result<usize> {
        loop {
            let len = *msg.get(pos).context("truncated name")?;
            if len == 0 {
                return Ok(pos + 1);
            }
            if len & 0xC0 == 0xC0 {
                return Ok(pos + 2);
            }
            pos += 1 + len as usize;
        }
    };
    for _ in 0..qd {
        pos = skip_name(pos)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..an {
        pos = skip_name(pos)?;
        let head = msg.get(pos..pos + 10).context("truncated record")?;
        let rtype = u16::from_be_bytes([head[0], head[1]]);
        let len = u16::from_be_bytes([head[8], head[9]]) as usize;
        let data = msg
            .get(pos + 10..pos + 10 + len)
            .context("truncated record data")?;
        if rtype == TYPE_A && len == 4 {
            ips.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        pos += 10 + len;
    }
    Ok((rcode, ips))
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
        .send_to(&build_query(id, name, TYPE_A), server)
        .await?;
    let mut buf = vec![0u8; 1500];
    let (n, _) = tokio::time::timeout(timeout, socket.recv_from(&mut buf))
        .await
        .context("no answer")??;
    let (rcode, ips) = parse_a_answers(&buf[..n])?;
    anyhow::ensure!(rcode == 0, "rcode {rcode}");
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
        let query_bytes = build_query(0x1234, "web.t1.svc.cluster.local", TYPE_A);
        let query = parse_query(&query_bytes).unwrap();
        assert_eq!(
            (query.id, query.name.as_str(), query.qtype),
            (0x1234, "web.t1.svc.cluster.local", TYPE_A)
        );
        let answer = resolve(&zone(), "cluster.local", &query.name, query.qtype);
        let response = build_response(&query, &answer, "cluster.local");
        assert_eq!(
            parse_a_answers(&response).unwrap(),
            (0, vec![Ipv4Addr::new(10, 96, 0, 20)])
        );
        let missing = parse_query(&build_query(7, "nope.t1.svc.cluster.local", TYPE_A)).unwrap();
        let response = build_response(&missing, &Answer::NxDomain, "cluster.local");
        assert_eq!(parse_a_answers(&response).unwrap(), (3, vec![]));
        assert!(parse_query(&response).is_err(), "a response is not a query");
        assert!(parse_query(&query_bytes[..15]).is_err());
    }
}
