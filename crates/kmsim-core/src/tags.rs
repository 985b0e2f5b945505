//! Tag rules of TagResource and CreateKey (`docs/AWS-BEHAVIOUR.md` §8).

use crate::error::{validation, KmsError};
use crate::key::Tag;

/// The most tags one key may carry.
pub const MAX_TAGS: usize = 50;

/// Checks a list of tags from a request. `member` is the list's lowerCamel name (`tags`).
pub fn validate_tags(tags: &[Tag], member: &str) -> Result<(), KmsError> {
    for (i, t) in tags.iter().enumerate() {
        let n = i + 1;
        if t.key.is_empty() {
            return Err(validation::too_short(
                Some(&t.key),
                &format!("{member}.{n}.member.tagKey"),
                1,
            ));
        }
        if t.key.chars().count() > 128 {
            return Err(validation::too_long(
                Some(&t.key),
                &format!("{member}.{n}.member.tagKey"),
                128,
            ));
        }
        if t.value.chars().count() > 256 {
            return Err(validation::too_long(
                Some(&t.value),
                &format!("{member}.{n}.member.tagValue"),
                256,
            ));
        }
        if t.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(KmsError::Tag(
                "Tags beginning with aws: are reserved".into(),
            ));
        }
    }
    for (i, t) in tags.iter().enumerate() {
        if tags[..i].iter().any(|o| o.key == t.key) {
            return Err(KmsError::Tag("Duplicate tag keys".into()));
        }
    }
    Ok(())
}

/// Merges `new` into `existing` (overwriting values of existing keys, keeping insertion order)
/// and enforces the per-key quota.
pub fn merge_tags(existing: &[Tag], new: &[Tag]) -> Result<Vec<Tag>, KmsError> {
    let mut out = existing.to_vec();
    for t in new {
        match out.iter_mut().find(|o| o.key == t.key) {
            Some(o) => o.value = t.value.clone(),
            None => out.push(t.clone()),
        }
    }
    if out.len() > MAX_TAGS {
        return Err(KmsError::Tag("Too many tags".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn aws_tag_rules() {
        assert!(validate_tags(&[tag("a", ""), tag("b", "x")], "tags").is_ok());
        assert_eq!(
            validate_tags(&[tag("AWS:x", "v")], "tags")
                .unwrap_err()
                .message(),
            "Tags beginning with aws: are reserved"
        );
        assert_eq!(
            validate_tags(&[tag("a", "1"), tag("a", "2")], "tags")
                .unwrap_err()
                .message(),
            "Duplicate tag keys"
        );
        let e = validate_tags(&[tag(&"k".repeat(129), "v")], "tags").unwrap_err();
        assert!(e.message().contains("'tags.1.member.tagKey'"), "{e}");
        let many: Vec<Tag> = (0..51).map(|i| tag(&i.to_string(), "")).collect();
        assert_eq!(
            merge_tags(&[], &many).unwrap_err().message(),
            "Too many tags"
        );
    }

    #[test]
    fn merge_overwrites_in_place() {
        let merged = merge_tags(
            &[tag("a", "1"), tag("b", "2")],
            &[tag("a", "3"), tag("c", "4")],
        )
        .unwrap();
        assert_eq!(merged, vec![tag("a", "3"), tag("b", "2"), tag("c", "4")]);
    }
}
