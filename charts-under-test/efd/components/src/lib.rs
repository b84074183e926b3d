//! The EFD's record mapping: a JSON telemetry record of topic `T` becomes one
//! InfluxDB point of measurement `T`, as the real connectors do — every scalar
//! is a field, arrays are flattened to `name0 … nameN-1`, nulls are dropped, and
//! the time is `private_efdStamp` (UTC seconds) at microsecond precision.

use std::fmt::Write as _;

use serde_json::Value;

/// Why a record cannot become a point.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    /// Not a JSON object.
    #[error("record is not a JSON object")]
    NotAnObject,
    /// No numeric `private_efdStamp`.
    #[error("record has no numeric private_efdStamp")]
    NoTimestamp,
    /// No field left after dropping nulls and nested objects.
    #[error("record has no scalar fields")]
    NoFields,
}

/// Escapes a measurement name (commas and spaces).
fn escape_measurement(s: &str) -> String {
    s.replace(',', "\\,").replace(' ', "\\ ")
}

/// Escapes a field key (commas, equals signs and spaces).
fn escape_key(s: &str) -> String {
    s.replace(',', "\\,")
        .replace('=', "\\=")
        .replace(' ', "\\ ")
}

fn field_value(value: &Value) -> Option<String> {
    match value {
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(format!("{n}i")),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| format!("{f:?}")),
        Value::String(s) => Some(format!(
            "\"{}\"",
            s.replace('\\', "\\\\").replace('"', "\\\"")
        )),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// Maps one record of `topic` to a line of InfluxDB line protocol (precision `u`).
///
/// # Errors
/// See [`MappingError`].
pub fn to_line(topic: &str, record: &Value) -> Result<String, MappingError> {
    let object = record.as_object().ok_or(MappingError::NotAnObject)?;
    let stamp = object
        .get("private_efdStamp")
        .and_then(Value::as_f64)
        .ok_or(MappingError::NoTimestamp)?;
    let mut fields = Vec::new();
    for (name, value) in object {
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(v) = field_value(item) {
                        fields.push(format!("{}={v}", escape_key(&format!("{name}{i}"))));
                    }
                }
            }
            other => {
                if let Some(v) = field_value(other) {
                    fields.push(format!("{}={v}", escape_key(name)));
                }
            }
        }
    }
    if fields.is_empty() {
        return Err(MappingError::NoFields);
    }
    let micros = (stamp * 1e6).round() as i64;
    let mut line = escape_measurement(topic);
    let _ = write!(line, " {} {micros}", fields.join(","));
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_arrays_and_time_map_like_the_real_connector() {
        let record = json!({
            "private_efdStamp": 1700000000.123456,
            "private_seqNum": 7,
            "private_identity": "harness@run \"1\"",
            "salIndex": null,
            "ok": true,
            "force": [1.5, 2.0, null],
        });
        let line = to_line("lsst.sal.MTM1M3.forceActuatorData", &record).unwrap();
        assert_eq!(
            line,
            "lsst.sal.MTM1M3.forceActuatorData force0=1.5,force1=2.0,ok=true,private_efdStamp=1700000000.123456,private_identity=\"harness@run \\\"1\\\"\",private_seqNum=7i 1700000000123456"
        );
    }

    #[test]
    fn unusable_records_are_named() {
        assert_eq!(to_line("t", &json!([1])), Err(MappingError::NotAnObject));
        assert_eq!(
            to_line("t", &json!({"x": 1})),
            Err(MappingError::NoTimestamp)
        );
        assert_eq!(
            to_line("t", &json!({"private_efdStamp": "soon"})),
            Err(MappingError::NoTimestamp)
        );
    }

    #[test]
    fn names_with_separators_are_escaped() {
        let line = to_line("a topic,x", &json!({"private_efdStamp": 1.0, "a b=c": 1})).unwrap();
        assert_eq!(
            line,
            "a\\ topic\\,x a\\ b\\=c=1i,private_efdStamp=1.0 1000000"
        );
    }
}
