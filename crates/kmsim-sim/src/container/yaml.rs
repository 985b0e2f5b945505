//! JSON values written as block-style YAML, for manifests a person reads and diffs (Kubernetes
//! reads JSON too, but a reviewer of `deploy/kubernetes/` should not have to). No YAML crate:
//! the manifests are built as `serde_json` values, whose maps keep their keys sorted, and this
//! writer needs only maps, lists and scalars. A string is written plain only when no YAML 1.1
//! or 1.2 reader can take it for anything but that string; otherwise it is double-quoted.

use serde_json::Value;

/// `value` as a YAML document (no `---`), ending in a newline.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => block(&mut out, value, 0),
        Value::Array(a) if !a.is_empty() => block(&mut out, value, 0),
        other => {
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
    out
}

/// Writes a map or a list at `indent` spaces, each entry on its own line.
fn block(out: &mut String, value: &Value, indent: usize) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                out.push_str(&pad);
                out.push_str(&string(key));
                out.push(':');
                nested(out, v, indent + 2);
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                match item {
                    // The first key on the dash's line, the others under it.
                    Value::Object(map) if !map.is_empty() => {
                        out.push(' ');
                        let mut inner = String::new();
                        block(&mut inner, item, indent + 2);
                        out.push_str(&inner[indent + 2..]);
                    }
                    _ => nested(out, item, indent + 2),
                }
            }
        }
        scalar => {
            out.push_str(&pad);
            out.push_str(&inline(scalar));
            out.push('\n');
        }
    }
}

/// What follows a `key:` or a `-`: a scalar or an empty collection on the same line, else a
/// block on the next lines (a list under a key is indented like a map).
fn nested(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            block(out, value, indent);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            block(out, value, indent);
        }
        _ => {
            out.push(' ');
            out.push_str(&inline(value));
            out.push('\n');
        }
    }
}

/// A scalar or an empty collection on one line.
fn inline(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string, plain when that is unambiguous, else double-quoted with everything but printable
/// ASCII escaped (a raw NEL or LINE SEPARATOR would be a line break to a YAML 1.1 reader).
fn string(s: &str) -> String {
    if is_plain(s) {
        return s.to_string();
    }
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            ' '..='~' => q.push(c),
            c if u32::from(c) <= 0xffff => q.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => q.push_str(&format!("\\U{:08x}", u32::from(c))),
        }
    }
    q.push('"');
    q
}

/// Words YAML 1.1 (which Kubernetes' and PyYAML's readers follow) or 1.2 reads as booleans or
/// null, compared without case.
const RESERVED: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// Whether `s` reads back as itself when written plain: letters, digits and `. _ / -`, starting
/// with a letter or `/` (so never a number, `.inf`, `-` or `~`), and no reserved word.
fn is_plain(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
        && !RESERVED.iter().any(|w| w.eq_ignore_ascii_case(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_and_lists_are_written_as_blocks() {
        let v = json!({
            "kind": "Service",
            "metadata": {"name": "kmsim-us-east-1", "labels": {"app.kubernetes.io/name": "kmsim"}},
            "spec": {
                "ports": [{"name": "grpc", "port": 4601}, {"name": "aws", "port": 4701}],
                "args": ["node", "$(KMSIM_POD_NAME)"],
                "empty": {},
                "none": [],
            },
        });
        let want = "\
kind: Service
metadata:
  labels:
    app.kubernetes.io/name: kmsim
  name: kmsim-us-east-1
spec:
  args:
    - node
    - \"$(KMSIM_POD_NAME)\"
  empty: {}
  none: []
  ports:
    - name: grpc
      port: 4601
    - name: aws
      port: 4701
";
        assert_eq!(to_yaml(&v), want);
    }

    #[test]
    fn strings_a_reader_could_take_for_something_else_are_quoted() {
        for plain in [
            "kmsim",
            "/cluster/topology.toml",
            "IfNotPresent",
            "None",
            "a.b_c-d",
        ] {
            assert_eq!(string(plain), plain);
        }
        for quoted in [
            "", "1Gi", "100m", "0440", "true", "No", "on", "null", "~", "-", ".inf", "1e3", "a b",
            "a: b", "#x", "*x", "x\ny", "\"x\"",
        ] {
            assert!(string(quoted).starts_with('"'), "{quoted}");
        }
    }

    /// Whatever the value, the YAML reads back as it: a real YAML parser is the judge.
    #[test]
    fn any_value_reads_back_as_itself() {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "(?s).{0,12}".prop_map(Value::String),
            "[a-z0-9./_-]{0,8}".prop_map(Value::String),
        ];
        let values = leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-zA-Z0-9./ :_-]{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        proptest::proptest!(|(v in values)| {
            let text = to_yaml(&v);
            let back: Value = serde_yaml::from_str(&text).map_err(|e| {
                TestCaseError::fail(format!("{e}\n{text}"))
            })?;
            prop_assert_eq!(back, v, "{}", text);
        });
    }
}
