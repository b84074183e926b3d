//! EFD telemetry records as the connector reads them from Kafka: any JSON
//! record of any topic becomes one point of InfluxDB line protocol or an error.
//! The oracle is InfluxDB's own line-protocol parser: the line must parse as
//! exactly one point, of the topic as measurement, with one field per scalar
//! and per array item that is not null or nested, named as the record names it.

use serde_json::Value;

/// The field names a record should map to, sorted.
fn expected_keys(record: &serde_json::Map<String, Value>) -> Vec<String> {
    let scalar = |v: &Value| !matches!(v, Value::Null | Value::Array(_) | Value::Object(_));
    let mut keys = Vec::new();
    for (name, value) in record {
        match value {
            Value::Array(items) => keys.extend(
                items
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| scalar(v))
                    .map(|(i, _)| format!("{name}{i}")),
            ),
            v if scalar(v) => keys.push(name.clone()),
            _ => {}
        }
    }
    keys.sort();
    keys
}

/// Panics where the input shows a bug.
pub fn check(data: &[u8]) {
    // The topic up to the first newline, the record after it.
    let (topic, record) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"lsst.sal.Test.scalars"[..], data),
    };
    let (Ok(topic), Ok(record)) = (
        std::str::from_utf8(topic),
        serde_json::from_slice::<Value>(record),
    ) else {
        return;
    };
    let Ok(line) = efd_components::to_line(topic, &record) else {
        return;
    };
    let points: Vec<_> = influxdb_line_protocol::parse_lines(&line).collect();
    assert_eq!(points.len(), 1, "one point, one line: {line:?}");
    let point = match &points[0] {
        Ok(point) => point,
        Err(e) => panic!("{line:?} is not line protocol: {e}"),
    };
    assert_eq!(point.series.measurement.to_string(), topic, "{line:?}");
    let mut keys: Vec<String> = point.field_set.iter().map(|(k, _)| k.to_string()).collect();
    keys.sort();
    let want = expected_keys(record.as_object().expect("a mapped record is an object"));
    assert_eq!(keys, want, "{line:?}");
}
