//! Parameter values as the AWS CLI reads them: `file://` and `fileb://` references, base64
//! blobs, the shorthand syntax (`TagKey=k,TagValue=v`, `k=v,k2=v2`) and JSON documents. Every
//! function here is a clap value parser, so a bad value is a usage error (exit code 2).

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::DeserializeOwned;

use kmsim_proto::kms::v1::Tag;

/// A blob parameter (`--plaintext`, `--ciphertext-blob`), decoded to raw bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

/// A string-to-string map parameter (`--encryption-context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringMap(pub HashMap<String, String>);

/// The tags of one `--tags` value (one shorthand structure, or a JSON list of them).
#[derive(Debug, Clone, PartialEq)]
pub struct Tags(pub Vec<Tag>);

/// An `--output-blob MEMBER:PATH` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputBlob {
    /// The AWS member of the response holding the blob (`Plaintext`, `CiphertextBlob`, …).
    pub member: String,
    /// Where to write its raw bytes; `-` is standard output.
    pub path: String,
}

/// A text parameter: `file://PATH` is the content of the file (UTF-8), anything else itself.
pub fn text(value: &str) -> Result<String, String> {
    match value.strip_prefix("file://") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("Unable to load paramfile file://{path}: {e}")),
        None => Ok(value.to_string()),
    }
}

/// A blob parameter, as AWS CLI v2 reads it: `fileb://PATH` is the raw bytes of the file;
/// `file://PATH` and a literal value are base64 (whitespace ignored) and decoded.
pub fn blob(value: &str) -> Result<Blob, String> {
    if let Some(path) = value.strip_prefix("fileb://") {
        return std::fs::read(path)
            .map(Blob)
            .map_err(|e| format!("Unable to load paramfile fileb://{path}: {e}"));
    }
    let encoded = text(value)?;
    let compact: String = encoded
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD.decode(compact.as_bytes()).map(Blob).map_err(|e| {
        format!(
            "Invalid base64 ({e}): a literal or file:// blob is base64, as in AWS CLI v2; \
             use fileb://PATH to pass raw bytes"
        )
    })
}

/// A string map: a JSON object (`{"k":"v"}`), or the shorthand `k=v,k2=v2`; either may be
/// given as `file://PATH`.
pub fn string_map(value: &str) -> Result<StringMap, String> {
    let value = text(value)?;
    if value.trim_start().starts_with('{') {
        return serde_json::from_str(&value)
            .map(StringMap)
            .map_err(|e| format!("Invalid JSON object of strings: {e}"));
    }
    let mut map = HashMap::new();
    for (k, v) in shorthand(&value)? {
        if map.contains_key(&k) {
            return Err(format!("Key '{k}' is given twice"));
        }
        map.insert(k, v);
    }
    Ok(StringMap(map))
}

/// One `--tags` value: the shorthand `TagKey=k,TagValue=v`, or a JSON list of
/// `{"TagKey":…,"TagValue":…}` objects; either may be given as `file://PATH`.
pub fn tags(value: &str) -> Result<Tags, String> {
    let value = text(value)?;
    if value.trim_start().starts_with('[') {
        return serde_json::from_str(&value)
            .map(Tags)
            .map_err(|e| format!("Invalid JSON list of tags: {e}"));
    }
    let mut tag = Tag::default();
    for (k, v) in shorthand(&value)? {
        let member = match k.as_str() {
            "TagKey" => &mut tag.tag_key,
            "TagValue" => &mut tag.tag_value,
            _ => {
                return Err(format!(
                    "Unknown member '{k}': a tag is TagKey=KEY,TagValue=VALUE"
                ))
            }
        };
        if member.replace(v).is_some() {
            return Err(format!("Member '{k}' is given twice"));
        }
    }
    Ok(Tags(vec![tag]))
}

/// `--cli-input-json`: a JSON request in the AWS JSON spelling (literal or `file://PATH`).
pub fn input_json<T: DeserializeOwned>(value: &str) -> Result<T, String> {
    let value = text(value)?;
    serde_json::from_str(&value).map_err(|e| format!("Invalid JSON request: {e}"))
}

/// `--output-blob MEMBER:PATH`
pub fn output_blob(value: &str) -> Result<OutputBlob, String> {
    let (member, path) = value
        .split_once(':')
        .ok_or("expected MEMBER:PATH, e.g. Plaintext:- or CiphertextBlob:out.bin")?;
    if member.is_empty() || !member.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!(
            "'{member}' is not a response member name such as Plaintext"
        ));
    }
    if path.is_empty() {
        return Err("the PATH after ':' is empty (use - for standard output)".into());
    }
    Ok(OutputBlob {
        member: member.to_string(),
        path: path.to_string(),
    })
}

/// The AWS CLI shorthand for a flat structure or map: `key=value` pairs separated by commas.
/// Whitespace around keys and unquoted values is ignored; a value may be quoted with `"` or `'`
/// (then it may hold commas and `=`), and `\` escapes the next character in any value.
pub fn shorthand(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut key = String::new();
        let mut has_value = false;
        for c in chars.by_ref() {
            if c == '=' {
                has_value = true;
                break;
            }
            if c == ',' {
                break;
            }
            key.push(c);
        }
        let key = key.trim().to_string();
        if !has_value || key.is_empty() {
            return Err(format!("Expected KEY=VALUE, found '{key}' in '{s}'"));
        }
        while chars.peek().is_some_and(|c| *c == ' ') {
            chars.next();
        }
        let mut value = String::new();
        match chars.peek().copied() {
            Some(q @ ('"' | '\'')) => {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next()),
                        c if c == q => {
                            closed = true;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                if !closed {
                    return Err(format!("Unterminated {q} in the value of '{key}'"));
                }
                while chars.peek().is_some_and(|c| *c == ' ') {
                    chars.next();
                }
                if chars.peek().is_some_and(|c| *c != ',') {
                    return Err(format!("Expected ',' after the quoted value of '{key}'"));
                }
            }
            _ => {
                while let Some(c) = chars.peek().copied() {
                    if c == ',' {
                        break;
                    }
                    chars.next();
                    if c == '\\' {
                        value.extend(chars.next());
                    } else {
                        value.push(c);
                    }
                }
                value = value.trim_end().to_string();
            }
        }
        pairs.push((key, value));
        match chars.next() {
            None => return Ok(pairs),
            Some(',') => {}
            Some(c) => return Err(format!("Unexpected '{c}' in '{s}'")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use kmsim_proto::kms::v1::EncryptRequest;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            tag_key: Some(k.into()),
            tag_value: Some(v.into()),
        }
    }

    fn map(pairs: &[(&str, &str)]) -> StringMap {
        StringMap(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn fileb_reads_raw_bytes_and_literals_are_base64() {
        let dir = tempfile::tempdir().expect("temp dir");
        let raw = dir.path().join("raw.bin");
        std::fs::write(&raw, [0u8, 0xff, b'\n', 7]).expect("write");
        assert_eq!(
            blob(&format!("fileb://{}", raw.display())),
            Ok(Blob(vec![0, 0xff, b'\n', 7]))
        );
        assert_eq!(blob("aGVsbG8="), Ok(Blob(b"hello".to_vec())));
        // file:// holds base64 text, as with AWS CLI v2; its trailing newline is ignored.
        let b64 = dir.path().join("b64.txt");
        std::fs::write(&b64, "aGVs\nbG8=\n").expect("write");
        assert_eq!(
            blob(&format!("file://{}", b64.display())),
            Ok(Blob(b"hello".to_vec()))
        );
        assert!(blob("hello").is_err_and(|e| e.contains("fileb://")));
        assert!(blob("fileb:///nonexistent/kmsim/x").is_err_and(|e| e.contains("Unable to load")));
    }

    #[test]
    fn file_reads_text() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("policy.json");
        std::fs::write(&p, "{\"Version\":\"2012-10-17\"}").expect("write");
        assert_eq!(
            text(&format!("file://{}", p.display())).as_deref(),
            Ok("{\"Version\":\"2012-10-17\"}")
        );
        assert_eq!(text("plain").as_deref(), Ok("plain"));
    }

    #[test]
    fn tags_shorthand_and_json() {
        assert_eq!(tags("TagKey=k,TagValue=v"), Ok(Tags(vec![tag("k", "v")])));
        assert_eq!(
            tags(" TagValue = v , TagKey=k "),
            Ok(Tags(vec![tag("k", "v")]))
        );
        assert_eq!(
            tags(r#"TagKey=k,TagValue="a,b=c""#),
            Ok(Tags(vec![tag("k", "a,b=c")]))
        );
        assert_eq!(
            tags(r"TagKey=k,TagValue=a\,b"),
            Ok(Tags(vec![tag("k", "a,b")]))
        );
        assert_eq!(tags("TagKey=k,TagValue="), Ok(Tags(vec![tag("k", "")])));
        assert_eq!(
            tags(r#"[{"TagKey":"a","TagValue":"1"},{"TagKey":"b","TagValue":""}]"#),
            Ok(Tags(vec![tag("a", "1"), tag("b", "")]))
        );
        assert!(tags("Key=k,Value=v").is_err());
        assert!(tags("TagKey=k,TagKey=j").is_err());
        assert!(tags("TagKey").is_err());
        assert!(tags("[{\"TagKey\":1}]").is_err());
    }

    #[test]
    fn encryption_context_shorthand_and_json() {
        assert_eq!(
            string_map("purpose=test,dept=it"),
            Ok(map(&[("purpose", "test"), ("dept", "it")]))
        );
        assert_eq!(
            string_map(r#"{"purpose":"test","a=b":"c,d"}"#),
            Ok(map(&[("purpose", "test"), ("a=b", "c,d")]))
        );
        assert_eq!(string_map(r#"k='x y'"#), Ok(map(&[("k", "x y")])));
        assert!(string_map("a=1,a=2").is_err());
        assert!(string_map("a=1,b").is_err());
        assert!(string_map("=1").is_err());
        assert!(string_map(r#"k="open"#).is_err());
        assert!(string_map(r#"{"a":1}"#).is_err());
    }

    #[test]
    fn cli_input_json_parses_aws_json() {
        let r: EncryptRequest = input_json(
            r#"{"KeyId":"alias/a","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}"#,
        )
        .expect("parses");
        assert_eq!(r.key_id.as_deref(), Some("alias/a"));
        assert_eq!(r.plaintext.as_deref(), Some(&b"hello"[..]));
        assert_eq!(r.encryption_context, map(&[("a", "b")]).0);
        assert!(input_json::<EncryptRequest>(r#"{"Plaintext":"%%%"}"#).is_err());
        assert!(input_json::<EncryptRequest>("not json").is_err());
    }

    #[test]
    fn output_blob_spec() {
        assert_eq!(
            output_blob("Plaintext:-"),
            Ok(OutputBlob {
                member: "Plaintext".into(),
                path: "-".into()
            })
        );
        assert_eq!(
            output_blob("CiphertextBlob:C:/x").map(|o| o.path),
            Ok("C:/x".to_string())
        );
        assert!(output_blob("Plaintext").is_err());
        assert!(output_blob("Plaintext:").is_err());
        assert!(output_blob(":x").is_err());
    }
}
