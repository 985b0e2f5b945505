//! Parameter values as the AWS CLI reads them: `file://` and `fileb://` references, base64
//! blobs, the shorthand syntax (`TagKey=k,TagValue=v`, `k=v,k2=v2`,
//! `EncryptionContextSubset={k=v}`), timestamps and JSON documents. Every public function here
//! is a clap value parser, so a bad value is a usage error (exit code 2).

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::DeserializeOwned;

use kmsim_proto::kms::v1::{GrantConstraints, Tag};

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
    shorthand_map(&value).map(StringMap)
}

/// `--constraints` of a grant: a JSON object (`{"EncryptionContextSubset":{"k":"v"}}`), or the
/// shorthand `EncryptionContextSubset={k=v,k2=v2},EncryptionContextEquals={k=v}`; either may be
/// given as `file://PATH`.
pub fn grant_constraints(value: &str) -> Result<GrantConstraints, String> {
    let value = text(value)?;
    if value.trim_start().starts_with('{') {
        return serde_json::from_str(&value)
            .map_err(|e| format!("Invalid JSON grant constraints: {e}"));
    }
    let mut constraints = GrantConstraints::default();
    let mut seen = Vec::new();
    for (name, body) in shorthand_map_members(&value)? {
        let member = match name.as_str() {
            "EncryptionContextSubset" => &mut constraints.encryption_context_subset,
            "EncryptionContextEquals" => &mut constraints.encryption_context_equals,
            _ => {
                return Err(format!(
                    "Unknown member '{name}': constraints are EncryptionContextSubset={{k=v}} \
                     and/or EncryptionContextEquals={{k=v}}"
                ))
            }
        };
        if seen.contains(&name) {
            return Err(format!("Member '{name}' is given twice"));
        }
        if !body.trim().is_empty() {
            *member = shorthand_map(body)?;
        }
        seen.push(name);
    }
    Ok(constraints)
}

/// A timestamp parameter (`--valid-to`), as the AWS CLI reads it: epoch seconds (`1798761600`,
/// a fraction allowed) or ISO 8601 (`2027-01-01T00:00:00Z`, `2027-01-01T01:00:00.5+01:00`,
/// `2027-01-01`); a time without an offset is UTC, as botocore takes it. Returns epoch seconds.
pub fn timestamp(value: &str) -> Result<f64, String> {
    let trimmed = value.trim();
    if let Ok(secs) = trimmed.parse::<f64>() {
        if secs.is_finite() {
            return Ok(secs);
        }
    }
    iso8601(trimmed).ok_or_else(|| {
        format!(
            "Invalid timestamp '{value}': expected epoch seconds (1798761600) or ISO 8601 \
             (2027-01-01T00:00:00Z)"
        )
    })
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

/// Shorthand `k=v` pairs as a map; a key given twice is an error.
fn shorthand_map(s: &str) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for (k, v) in shorthand(s)? {
        if map.contains_key(&k) {
            return Err(format!("Key '{k}' is given twice"));
        }
        map.insert(k, v);
    }
    Ok(map)
}

/// The AWS CLI shorthand for a structure of maps, `Member={k=v,k2=v2},Member2={k=v}`: each
/// member's name and the text between its braces (for [`shorthand`]).
fn shorthand_map_members(s: &str) -> Result<Vec<(String, &str)>, String> {
    let mut members = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| format!("Expected MEMBER={{KEY=VALUE,…}}, found '{rest}'"))?;
        let name = name.trim();
        let body = after
            .trim_start()
            .strip_prefix('{')
            .ok_or_else(|| format!("Expected '{{' after '{name}=' in '{s}'"))?;
        let end = closing_brace(body)
            .ok_or_else(|| format!("Unterminated '{{' in the value of '{name}'"))?;
        members.push((name.to_string(), &body[..end]));
        rest = body[end + 1..].trim_start();
        if !rest.is_empty() {
            rest = rest
                .strip_prefix(',')
                .map(str::trim_start)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| format!("Expected ',' and a member after the value of '{name}'"))?;
        }
    }
    Ok(members)
}

/// The byte index of the `}` that closes a shorthand map body: the first one that is neither
/// escaped with `\` nor inside a quoted value (a value quoted right after its `=`).
fn closing_brace(body: &str) -> Option<usize> {
    let mut quote = None;
    let mut escaped = false;
    let mut value_start = false;
    for (i, c) in body.char_indices() {
        if escaped {
            escaped = false;
            value_start = false;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => escaped = c == '\\',
            None => match c {
                '\\' => escaped = true,
                '"' | '\'' if value_start => quote = Some(c),
                '}' => return Some(i),
                _ => {}
            },
        }
        value_start = quote.is_none() && (c == '=' || (value_start && c == ' '));
    }
    None
}

/// An ISO 8601 date (`YYYY-MM-DD`) or date and time (`YYYY-MM-DDTHH:MM[:SS[.fff]]`, then `Z`,
/// `±HH:MM`, `±HHMM`, `±HH` or nothing for UTC) as epoch seconds.
fn iso8601(s: &str) -> Option<f64> {
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut ymd = date.split('-');
    let year = digits(ymd.next()?, 4)?;
    let month = digits(ymd.next()?, 2)?;
    let day = digits(ymd.next()?, 2)?;
    if ymd.next().is_some() {
        return None;
    }
    // The calendar (month lengths, leap years, days since the epoch) is the `time` crate's.
    let date = time::Date::from_calendar_date(
        i32::try_from(year).ok()?,
        time::Month::try_from(u8::try_from(month).ok()?).ok()?,
        u8::try_from(day).ok()?,
    )
    .ok()?;
    let midnight = date.midnight().assume_utc().unix_timestamp();
    let Some(time) = time else {
        return Some(midnight as f64);
    };
    let (clock, offset) = match time.strip_suffix(['Z', 'z']) {
        Some(clock) => (clock, 0),
        None => match time.find(['+', '-']) {
            Some(i) => (&time[..i], utc_offset(&time[i..])?),
            None => (time, 0),
        },
    };
    let mut hms = clock.split(':');
    let hour = digits(hms.next()?, 2)?;
    let minute = digits(hms.next()?, 2)?;
    let (second, fraction) = match hms.next() {
        None => (0, 0.0),
        Some(sec) => match sec.split_once('.') {
            None => (digits(sec, 2)?, 0.0),
            Some((whole, frac)) => {
                let all_digits = !frac.is_empty() && frac.bytes().all(|b| b.is_ascii_digit());
                (
                    digits(whole, 2)?,
                    format!("0.{frac}").parse().ok().filter(|_| all_digits)?,
                )
            }
        },
    };
    if hms.next().is_some() || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let secs = midnight + hour * 3_600 + minute * 60 + second - offset;
    Some(secs as f64 + fraction)
}

/// `±HH:MM`, `±HHMM` or `±HH` as seconds east of UTC.
fn utc_offset(s: &str) -> Option<i64> {
    let (sign, hhmm) = match s.split_at_checked(1)? {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let (hours, minutes) = match hhmm.len() {
        2 => (digits(hhmm, 2)?, 0),
        4 => (digits(&hhmm[..2], 2)?, digits(&hhmm[2..], 2)?),
        5 if &hhmm[2..3] == ":" => (digits(&hhmm[..2], 2)?, digits(&hhmm[3..], 2)?),
        _ => return None,
    };
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3_600 + minutes * 60))
}

/// Exactly `n` ASCII digits as a number.
fn digits(s: &str, n: usize) -> Option<i64> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
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
    fn grant_constraints_shorthand_and_json() {
        let subset = |pairs| GrantConstraints {
            encryption_context_subset: map(pairs).0,
            ..Default::default()
        };
        assert_eq!(
            grant_constraints("EncryptionContextSubset={tenant=a,dept=it}"),
            Ok(subset(&[("tenant", "a"), ("dept", "it")]))
        );
        assert_eq!(
            grant_constraints(
                r#" EncryptionContextEquals = { k="a,}b" } , EncryptionContextSubset={x=1}"#
            ),
            Ok(GrantConstraints {
                encryption_context_subset: map(&[("x", "1")]).0,
                encryption_context_equals: map(&[("k", "a,}b")]).0,
            })
        );
        assert_eq!(
            grant_constraints(r"EncryptionContextSubset={k=a\}b}"),
            Ok(subset(&[("k", "a}b")]))
        );
        assert_eq!(
            grant_constraints("EncryptionContextSubset={}"),
            Ok(GrantConstraints::default())
        );
        assert_eq!(
            grant_constraints(r#"{"EncryptionContextSubset":{"tenant":"a"}}"#),
            Ok(subset(&[("tenant", "a")]))
        );
        for bad in [
            "Subset={a=b}",
            "EncryptionContextSubset=a=b",
            "EncryptionContextSubset={a=b",
            "EncryptionContextSubset={a=b},",
            "EncryptionContextSubset={a=b}x",
            "EncryptionContextSubset={a=b},EncryptionContextSubset={c=d}",
            "EncryptionContextSubset={a=1,a=2}",
            "EncryptionContextSubset",
            r#"{"EncryptionContextSubset":{"a":1}}"#,
        ] {
            assert!(grant_constraints(bad).is_err(), "{bad} parses");
        }
    }

    #[test]
    fn timestamps_are_epoch_seconds_or_iso_8601() {
        assert_eq!(timestamp("1798761600"), Ok(1_798_761_600.0));
        assert_eq!(timestamp("1798761600.25"), Ok(1_798_761_600.25));
        assert_eq!(timestamp("2027-01-01T00:00:00Z"), Ok(1_798_761_600.0));
        assert_eq!(timestamp("2027-01-01"), Ok(1_798_761_600.0));
        assert_eq!(timestamp("2027-01-01T00:00:00"), Ok(1_798_761_600.0));
        assert_eq!(timestamp("2027-01-01 00:00"), Ok(1_798_761_600.0));
        assert_eq!(timestamp("2027-01-01T01:00:00+01:00"), Ok(1_798_761_600.0));
        assert_eq!(timestamp("2026-12-31T19:00:00-0500"), Ok(1_798_761_600.0));
        assert_eq!(timestamp("2027-01-01T02:00:00.5+02"), Ok(1_798_761_600.5));
        assert_eq!(timestamp("1970-01-01T00:00:00Z"), Ok(0.0));
        assert_eq!(timestamp("2024-02-29T12:00:00Z"), Ok(1_709_208_000.0));
        assert_eq!(timestamp("2000-03-01T00:00:00Z"), Ok(951_868_800.0));
        for bad in [
            "",
            "soon",
            "nan",
            "inf",
            "2027-13-01",
            "2027-02-29",
            "2027-1-1",
            "2027-01-01T24:00:00Z",
            "2027-01-01T00:60Z",
            "2027-01-01T00:00:00.Z",
            "2027-01-01T00:00:00+1:00",
            "2027-01-01T00:00:00Zjunk",
            "2027-01-01T00",
        ] {
            assert!(timestamp(bad).is_err(), "{bad} parses");
        }
    }

    proptest::proptest! {
        /// Every RFC 3339 time of years 0–9999 (any offset, milliseconds) is the second the
        /// `time` crate's own RFC 3339 parser gives, and whole-second UTC times round-trip.
        #[test]
        fn iso_8601_agrees_with_rfc_3339(
            secs in -62_167_219_200i64..=253_402_300_799,
            millis in 0i64..1000,
            offset_min in -1439i64..=1439,
        ) {
            use time::format_description::well_known::Rfc3339;
            let offset = time::UtcOffset::from_whole_seconds((offset_min * 60) as i32).unwrap();
            let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else {
                return Ok(());
            };
            let t = (t + time::Duration::milliseconds(millis)).to_offset(offset);
            if !(0..=9999).contains(&t.year()) {
                return Ok(());
            }
            let text = t.format(&Rfc3339).unwrap();
            let ours = timestamp(&text).unwrap();
            let theirs = time::OffsetDateTime::parse(&text, &Rfc3339).unwrap();
            let expected = theirs.unix_timestamp_nanos() as f64 / 1e9;
            // The same millisecond: seconds as f64 carry ~16 digits, so far years keep
            // milliseconds but not nanoseconds.
            proptest::prop_assert!((ours - expected).abs() < 5e-4, "{} {} {}", text, ours, expected);
            let whole = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
            if (0..=9999).contains(&whole.year()) {
                let date = whole.date();
                let day = format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day());
                let midnight = date.midnight().assume_utc().unix_timestamp() as f64;
                proptest::prop_assert_eq!(timestamp(&day), Ok(midnight));
            }
        }
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
