//! Broker addresses in the brokers' answers, replaced by the local ports of
//! their forwards (messages parsed with the `kafka-protocol` crate).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, FetchResponse, FindCoordinatorResponse, MetadataResponse, ProduceResponse,
    ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::access::{route, Relay};

/// Whether answers to `key` at `version` can name brokers: Metadata and
/// FindCoordinator, and Produce (v10+) and Fetch (v16+), whose answers name a
/// partition's new leader when it moved (KIP-951) — as when a broker dies.
pub(super) fn carries_addresses(key: ApiKey, version: i16) -> bool {
    match key {
        ApiKey::Metadata | ApiKey::FindCoordinator => true,
        ApiKey::Produce => version >= 10,
        ApiKey::Fetch => version >= 16,
        _ => false,
    }
}

/// Replaces the broker addresses in an answer (see [`carries_addresses`]) by
/// the local ports of their forwards.
pub(super) fn rewrite(
    relay: &Arc<Relay>,
    key: ApiKey,
    version: i16,
    frame: Bytes,
) -> Result<Bytes, String> {
    let header_version = key.response_header_version(version);
    let mut body = frame.clone();
    let header = ResponseHeader::decode(&mut body, header_version)
        .map_err(|e| format!("decoding a {key:?} v{version} answer header: {e}"))?;
    let mut out = BytesMut::new();
    header
        .encode(&mut out, header_version)
        .map_err(|e| format!("encoding a {key:?} answer header: {e}"))?;
    // Each answer type, and where in it brokers are named.
    let relocated = match key {
        ApiKey::Metadata => {
            relocate::<MetadataResponse>(relay, &mut body, version, &mut out, |a| {
                a.brokers
                    .iter_mut()
                    .map(|b| (&mut b.host, &mut b.port))
                    .collect()
            })
        }
        ApiKey::FindCoordinator => {
            relocate::<FindCoordinatorResponse>(relay, &mut body, version, &mut out, |a| {
                let mut named = Vec::new();
                if !a.host.is_empty() {
                    named.push((&mut a.host, &mut a.port));
                }
                named.extend(
                    a.coordinators
                        .iter_mut()
                        .filter(|c| !c.host.is_empty())
                        .map(|c| (&mut c.host, &mut c.port)),
                );
                named
            })
        }
        ApiKey::Produce => relocate::<ProduceResponse>(relay, &mut body, version, &mut out, |a| {
            a.node_endpoints
                .iter_mut()
                .map(|n| (&mut n.host, &mut n.port))
                .collect()
        }),
        ApiKey::Fetch => relocate::<FetchResponse>(relay, &mut body, version, &mut out, |a| {
            a.node_endpoints
                .iter_mut()
                .map(|n| (&mut n.host, &mut n.port))
                .collect()
        }),
        _ => return Ok(frame),
    }?;
    // Most Produce and Fetch answers name no broker: passed on as they came.
    let Some(addresses) = relocated else {
        return Ok(frame);
    };
    relay.rewrote(addresses);
    Ok(out.freeze())
}

/// Decodes an answer of type `T` from `body`, points the broker addresses
/// `nodes` picks out of it at their forwards and encodes it into `out`;
/// returns how many it rewrote, or `None` (nothing encoded) when it names none.
fn relocate<T: Decodable + Encodable>(
    relay: &Arc<Relay>,
    body: &mut Bytes,
    version: i16,
    out: &mut BytesMut,
    nodes: impl FnOnce(&mut T) -> Vec<(&mut StrBytes, &mut i32)>,
) -> Result<Option<u64>, String> {
    let name = std::any::type_name::<T>()
        .rsplit("::")
        .next()
        .unwrap_or("answer");
    let mut answer =
        T::decode(body, version).map_err(|e| format!("decoding a {name} v{version}: {e}"))?;
    let addresses = nodes(&mut answer);
    if addresses.is_empty() {
        return Ok(None);
    }
    let count = addresses.len() as u64;
    for (host, port) in addresses {
        (*host, *port) = local_address(relay, host, *port)?;
    }
    answer
        .encode(out, version)
        .map_err(|e| format!("encoding a {name}: {e}"))?;
    Ok(Some(count))
}

/// The local (host, port) for an advertised broker address. The pod is the first
/// label of the advertised name (`<pod>.<service>.<namespace>.svc…`, as
/// StatefulSet brokers advertise themselves).
fn local_address(relay: &Arc<Relay>, host: &str, port: i32) -> Result<(StrBytes, i32), String> {
    let pod = host.split('.').next().unwrap_or(host);
    let port = u16::try_from(port).map_err(|_| format!("advertised port {port} of {host}"))?;
    let local = route(relay, pod, port).map_err(|e| e.to_string())?;
    Ok((
        StrBytes::from_string(local.ip().to_string()),
        i32::from(local.port()),
    ))
}
