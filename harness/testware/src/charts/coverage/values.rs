//! Value keys: those a chart's `values.yaml` defines (its leaves, with their
//! lines) and those its templates read (`.Values.a.b`, `$.Values.a.b`), read
//! from the text. A key read inside `with` or `range` as `.b` (relative to the
//! pipeline) is not seen; `index .Values "a" "b"` is.

/// A key path (`persistence.size`) and the 1-based line it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Dotted path.
    pub path: String,
    /// Line in its file.
    pub line: usize,
}

/// The leaves of a `values.yaml`: every scalar, list and empty map, by path,
/// with the line of its key (first occurrence of the key's name at its depth
/// after its parent's line — YAML keeps no positions in serde's values).
pub fn defined(values_yaml: &str) -> Vec<Key> {
    let Ok(value) = serde_yaml_ng::from_str::<serde_yaml_ng::Value>(values_yaml) else {
        return Vec::new();
    };
    let lines: Vec<&str> = values_yaml.lines().collect();
    let mut keys = Vec::new();
    walk(&value, "", 0, &lines, &mut keys);
    keys
}

fn walk(
    value: &serde_yaml_ng::Value,
    path: &str,
    from: usize,
    lines: &[&str],
    keys: &mut Vec<Key>,
) {
    match value {
        serde_yaml_ng::Value::Mapping(map) if !map.is_empty() => {
            for (k, v) in map {
                let Some(name) = k.as_str() else { continue };
                let child = if path.is_empty() {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                let at = lines
                    .iter()
                    .enumerate()
                    .skip(from)
                    .find(|(_, l)| {
                        let t = l.trim_start();
                        t.strip_prefix(name)
                            .or_else(|| t.strip_prefix(&format!("\"{name}\"")))
                            .is_some_and(|r| r.trim_start().starts_with(':'))
                    })
                    .map_or(from, |(i, _)| i);
                walk(v, &child, at, lines, keys);
            }
        }
        _ if !path.is_empty() => keys.push(Key {
            path: path.to_owned(),
            line: from + 1,
        }),
        _ => {}
    }
}

/// The keys a template's text reads, each with the byte offset of the read.
pub fn read(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(at) = text[pos..].find(".Values") {
        let start = pos + at;
        let mut end = start + ".Values".len();
        let preceded = text[..start]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_');
        let mut path = Vec::new();
        if !preceded {
            if text[..start].trim_end().ends_with("index") {
                // index .Values "a" "b"
                let mut rest = &text[end..];
                while let Some(quoted) = rest.trim_start().strip_prefix('"') {
                    let Some(close) = quoted.find('"') else { break };
                    path.push(quoted[..close].to_owned());
                    rest = &quoted[close + 1..];
                }
            } else {
                while text[end..].starts_with('.') {
                    let name: String = text[end + 1..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if name.is_empty() {
                        break;
                    }
                    end += 1 + name.len();
                    path.push(name);
                }
            }
        }
        if !path.is_empty() {
            found.push((path.join("."), start));
        }
        pos = end.max(start + 1);
    }
    found
}

/// Whether reading `read` reads defined key `defined`: the same key, a map
/// above it (`toYaml .Values.resources`), or a key below a leaf (an empty
/// map `{}` in values.yaml filled by a value set).
pub fn covers(read: &str, defined: &str) -> bool {
    let under =
        |a: &str, b: &str| a.len() > b.len() && a.starts_with(b) && a.as_bytes()[b.len()] == b'.';
    read == defined || under(defined, read) || under(read, defined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_with_their_lines() {
        let keys = defined("image:\n  repository: x\n  tag: \"1\"\nresources: {}\nlist: [a]\nnested:\n  deeper:\n    tag: y\n");
        let pairs: Vec<(&str, usize)> = keys.iter().map(|k| (k.path.as_str(), k.line)).collect();
        assert_eq!(
            pairs,
            [
                ("image.repository", 2),
                ("image.tag", 3),
                ("resources", 4),
                ("list", 5),
                ("nested.deeper.tag", 8)
            ]
        );
    }

    #[test]
    fn reads_dotted_and_indexed() {
        let reads: Vec<String> = read("{{ .Values.a.b }} {{ $.Values.c }} {{ index .Values \"d\" \"e\" }} {{ .Values }} x.Valuesy")
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(reads, ["a.b", "c", "d.e"]);
    }

    #[test]
    fn a_map_read_whole_covers_its_leaves() {
        assert!(covers("resources", "resources.limits.cpu"));
        assert!(covers("podAnnotations.x", "podAnnotations"));
        assert!(!covers("image", "imagePullSecrets"));
    }
}
