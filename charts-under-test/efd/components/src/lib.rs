//! The EFD's record mapping: a JSON telemetry record of topic `T` becomes one
//! InfluxDB point of measurement `T`, as the real connectors do — every scalar
//! is a field, arrays are flattened to `name0 … nameN-1`, nulls are dropped, and
//! the time is `private_efdStamp` (UTC seconds) at microsecond precision.

use std::fmt::Write as _;

use serde_json::Value;

/// Why a record cannot become a point.
#[derive(Debug, PartialEq, thiserror::Error)]
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
    /// An empty field name, or a topic or field name with a control character
    /// (a line break, a tab, NUL) or ending in a backslash, which line protocol
    /// cannot carry: a line break would end the point there and the rest of it
    /// poison the batch.
    #[error("record has a name line protocol cannot carry (empty, with a control character, or ending in a backslash): {0:?}")]
    BadName(String),
    /// An empty topic, or one starting with `#` (a comment in line protocol).
    #[error(
        "record's topic {0:?} cannot be a measurement name (empty, or a line protocol comment)"
    )]
    BadTopic(String),
    /// An integer beyond InfluxDB's 64-bit signed integers (as a float it
    /// would conflict with the field's integer type in other points).
    #[error("record's field {0:?} is an integer beyond 64-bit signed range")]
    IntegerOutOfRange(String),
    /// A `private_efdStamp` outside the times InfluxDB can store (about the
    /// years 1677 to 2262).
    #[error("record's private_efdStamp {0} is outside the times InfluxDB can store")]
    TimeOutOfRange(f64),
}

/// `name`, unless line protocol cannot carry it ([`MappingError::BadName`]).
fn plain(name: String) -> Result<String, MappingError> {
    if name.is_empty() || name.ends_with('\\') || name.chars().any(char::is_control) {
        Err(MappingError::BadName(name))
    } else {
        Ok(name)
    }
}

/// Escapes a measurement name (backslashes, commas and spaces).
fn escape_measurement(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace(' ', "\\ ")
}

/// Escapes a field key (backslashes, commas, equals signs and spaces).
fn escape_key(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
        .replace(' ', "\\ ")
}

/// The line protocol value of field `name`, if it has one (not null or nested).
fn field_value(name: &str, value: &Value) -> Result<Option<String>, MappingError> {
    if let Value::Number(n) = value {
        if n.is_u64() && !n.is_i64() {
            return Err(MappingError::IntegerOutOfRange(name.to_owned()));
        }
    }
    Ok(match value {
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_i64() => Some(format!("{n}i")),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| format!("{f:?}")),
        Value::String(s) => Some(format!(
            "\"{}\"",
            s.replace('\\', "\\\\").replace('"', "\\\"")
        )),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    })
}

/// The latest time InfluxDB stores, in microseconds (its nanoseconds' i64 range, less one).
const MAX_MICROS: f64 = 9_223_372_036_854_775.0;

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
                    let key = format!("{name}{i}");
                    if let Some(v) = field_value(&key, item)? {
                        let key = plain(key)?;
                        fields.push(format!("{}={v}", escape_key(&key)));
                    }
                }
            }
            other => {
                if let Some(v) = field_value(name, other)? {
                    let key = plain(name.clone())?;
                    fields.push(format!("{}={v}", escape_key(&key)));
                }
            }
        }
    }
    if fields.is_empty() {
        return Err(MappingError::NoFields);
    }
    let micros = (stamp * 1e6).round();
    if !(-MAX_MICROS..=MAX_MICROS).contains(&micros) {
        return Err(MappingError::TimeOutOfRange(stamp));
    }
    let micros = micros as i64;
    if topic.is_empty() || topic.starts_with('#') {
        return Err(MappingError::BadTopic(topic.to_owned()));
    }
    let mut line = escape_measurement(&plain(topic.to_owned())?);
    let _ = write!(line, " {} {micros}", fields.join(","));
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_line_protocol_cannot_carry_are_refused() {
        // Found by the efd_records fuzz target: the key ended the point early.
        let record = json!({"private_efdStamp": 1.0, "a\nb": 1, "ok": true});
        assert_eq!(
            to_line("lsst.sal.Test", &record),
            Err(MappingError::BadName("a\nb".into()))
        );
        let record = json!({"private_efdStamp": 1.0, "ok": true});
        assert_eq!(
            to_line("lsst.sal\r.Test", &record),
            Err(MappingError::BadName("lsst.sal\r.Test".into()))
        );
        let record = json!({"private_efdStamp": 1.0, "": 1});
        assert_eq!(to_line("t", &record), Err(MappingError::BadName("".into())));
        let record = json!({"private_efdStamp": 1.0, "ok": true});
        // Also found by it: an empty topic and a NUL in one; a `#` would make a comment.
        for topic in ["", "#lsst.sal.Test"] {
            assert_eq!(
                to_line(topic, &record),
                Err(MappingError::BadTopic(topic.into()))
            );
        }
        assert!(matches!(
            to_line("lsst\0sal", &record),
            Err(MappingError::BadName(_))
        ));
        // And a name ending in a backslash escaped the `=` after it; inside a
        // name one is escaped.
        let record = json!({"private_efdStamp": 1.0, "a\\": 1});
        assert_eq!(
            to_line("t", &record),
            Err(MappingError::BadName("a\\".into()))
        );
        let record = json!({"private_efdStamp": 1.0, "a\\b": 1});
        assert_eq!(
            to_line("t\\u", &record).unwrap(),
            "t\\\\u a\\\\b=1i,private_efdStamp=1.0 1000000"
        );
        // And integers and times InfluxDB cannot store.
        let record = json!({"private_efdStamp": 1.0, "n": u64::MAX});
        assert_eq!(
            to_line("t", &record),
            Err(MappingError::IntegerOutOfRange("n".into()))
        );
        let record = json!({"private_efdStamp": 1e13, "ok": true});
        assert_eq!(
            to_line("t", &record),
            Err(MappingError::TimeOutOfRange(1e13))
        );
        // A string value may span lines: it is quoted.
        let record = json!({"private_efdStamp": 1.0, "text": "two\nlines"});
        assert_eq!(
            to_line("t", &record).unwrap(),
            "t private_efdStamp=1.0,text=\"two\nlines\" 1000000"
        );
    }

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
