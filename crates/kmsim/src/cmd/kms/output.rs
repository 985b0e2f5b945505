//! Printing a response like the AWS CLI: `--output json` (4-space indented JSON, blobs base64,
//! nothing at all for an empty response) or `--output text` (the AWS CLI's tab-separated
//! format), after `--output-blob` has taken out the blobs it writes raw.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use super::params::OutputBlob;

/// `--output`
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// JSON indented by 4 spaces, as the AWS CLI prints it.
    #[default]
    Json,
    /// The AWS CLI's text format: scalars tab-separated, one line per structure.
    Text,
}

/// Takes each `--output-blob` member out of `response` and writes its bytes, decoded from
/// base64, to its path (`-`: standard output). Returns whether standard output was used, in
/// which case nothing else may be printed there.
pub fn write_blobs(response: &mut Value, blobs: &[OutputBlob]) -> anyhow::Result<bool> {
    let mut to_stdout = false;
    for b in blobs {
        let member = response
            .as_object_mut()
            .and_then(|o| o.remove(&b.member))
            .ok_or_else(|| anyhow::anyhow!("the response has no member {}", b.member))?;
        let Value::String(encoded) = member else {
            anyhow::bail!("the response member {} is not a blob", b.member);
        };
        let bytes = STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| anyhow::anyhow!("the response member {} is not a blob: {e}", b.member))?;
        if b.path == "-" {
            crate::stdout::write_bytes(&bytes);
            to_stdout = true;
        } else {
            write_owner_only(&b.path, &bytes)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", b.path))?;
        }
    }
    Ok(to_stdout)
}

/// Writes a blob to a file only its owner can read (0600 when the file is created): a blob may
/// be a plaintext or a private key.
fn write_owner_only(path: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}

/// Renders `response` in `format`; empty for a response without members, as the AWS CLI.
pub fn render(response: &Value, format: OutputFormat) -> anyhow::Result<String> {
    if response.as_object().is_some_and(|o| o.is_empty()) {
        return Ok(String::new());
    }
    match format {
        OutputFormat::Json => {
            let mut buf = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
            response.serialize(&mut ser)?;
            buf.push(b'\n');
            Ok(String::from_utf8(buf)?)
        }
        OutputFormat::Text => {
            let mut out = String::new();
            text(response, None, None, &mut out);
            Ok(out)
        }
    }
}

/// The AWS CLI's text format (`awscli/text.py`): a structure prints its scalar members in key
/// order on one tab-separated line, prefixed by its member name in capitals when nested; lists
/// of structures print one such line per item, with the scalar columns of all items.
fn text(item: &Value, identifier: Option<&str>, columns: Option<&[String]>, out: &mut String) {
    match item {
        Value::Object(map) => {
            let mut scalars = Vec::new();
            let mut nested = Vec::new();
            match columns {
                None => {
                    // `serde_json::Map` iterates in key order, as the AWS CLI sorts keys.
                    for (k, v) in map {
                        if is_scalar(v) {
                            scalars.push(scalar(v));
                        } else {
                            nested.push((k.as_str(), v));
                        }
                    }
                }
                Some(columns) => {
                    for c in columns {
                        scalars.push(map.get(c).map(scalar).unwrap_or_default());
                    }
                    for (k, v) in map {
                        if !columns.contains(k) {
                            nested.push((k.as_str(), v));
                        }
                    }
                }
            }
            if !scalars.is_empty() {
                if let Some(id) = identifier {
                    scalars.insert(0, id.to_uppercase());
                }
                out.push_str(&scalars.join("\t"));
                out.push('\n');
            }
            for (k, v) in nested {
                text(v, Some(k), None, out);
            }
        }
        Value::Array(items) => {
            if items.is_empty() {
                return;
            }
            if items.iter().any(Value::is_object) {
                let mut columns: Vec<String> = items
                    .iter()
                    .filter_map(Value::as_object)
                    .flat_map(|o| {
                        o.iter()
                            .filter(|(_, v)| is_scalar(v))
                            .map(|(k, _)| k.clone())
                    })
                    .collect();
                columns.sort();
                columns.dedup();
                for i in items {
                    text(i, identifier, Some(&columns), out);
                }
            } else {
                let (scalars, nested): (Vec<&Value>, Vec<&Value>) =
                    items.iter().partition(|v| is_scalar(v));
                if !scalars.is_empty() {
                    match identifier {
                        Some(id) => {
                            for s in scalars {
                                out.push_str(&format!("{}\t{}\n", id.to_uppercase(), scalar(s)));
                            }
                        }
                        None => {
                            let line: Vec<String> = scalars.into_iter().map(scalar).collect();
                            out.push_str(&line.join("\t"));
                            out.push('\n');
                        }
                    }
                }
                for n in nested {
                    text(n, identifier, None, out);
                }
            }
        }
        v => {
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

/// A scalar as Python's `str()` writes it, which is what the AWS CLI prints.
fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_indented_by_four_spaces_and_empty_responses_print_nothing() {
        let v = json!({"KeyId": "k", "Keys": [{"KeyId": "a"}], "Truncated": false});
        assert_eq!(
            render(&v, OutputFormat::Json).expect("renders"),
            "{\n    \"KeyId\": \"k\",\n    \"Keys\": [\n        {\n            \"KeyId\": \"a\"\n        }\n    ],\n    \"Truncated\": false\n}\n"
        );
        assert_eq!(render(&json!({}), OutputFormat::Json).expect("renders"), "");
        assert_eq!(render(&json!({}), OutputFormat::Text).expect("renders"), "");
    }

    #[test]
    fn text_follows_the_aws_cli_format() {
        let encrypt = json!({"CiphertextBlob": "AQID", "KeyId": "arn:k", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"});
        assert_eq!(
            render(&encrypt, OutputFormat::Text).expect("renders"),
            "AQID\tSYMMETRIC_DEFAULT\tarn:k\n"
        );
        let list = json!({"Keys": [{"KeyId": "a", "KeyArn": "arn:a"}, {"KeyId": "b", "KeyArn": "arn:b"}], "Truncated": false});
        assert_eq!(
            render(&list, OutputFormat::Text).expect("renders"),
            "False\nKEYS\tarn:a\ta\nKEYS\tarn:b\tb\n"
        );
        let describe = json!({"KeyMetadata": {"KeyId": "a", "Enabled": true, "CreationDate": 1.5,
            "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"]}});
        assert_eq!(
            render(&describe, OutputFormat::Text).expect("renders"),
            "KEYMETADATA\t1.5\tTrue\ta\nENCRYPTIONALGORITHMS\tSYMMETRIC_DEFAULT\n"
        );
        let policies = json!({"PolicyNames": ["default"]});
        assert_eq!(
            render(&policies, OutputFormat::Text).expect("renders"),
            "POLICYNAMES\tdefault\n"
        );
    }

    #[test]
    fn output_blob_takes_the_member_out_and_writes_it_raw() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pt.bin");
        let mut v = json!({"Plaintext": "aGVsbG8=", "KeyId": "k"});
        let spec = OutputBlob {
            member: "Plaintext".into(),
            path: path.display().to_string(),
        };
        assert!(!write_blobs(&mut v, std::slice::from_ref(&spec)).expect("writes"));
        assert_eq!(std::fs::read(&path).expect("read"), b"hello");
        assert_eq!(v, json!({"KeyId": "k"}));
        assert!(write_blobs(&mut v, &[spec]).is_err(), "member gone");
        let key = OutputBlob {
            member: "KeyId".into(),
            path: path.display().to_string(),
        };
        assert!(write_blobs(&mut json!({"KeyId": "not base64!"}), &[key]).is_err());
    }
}
