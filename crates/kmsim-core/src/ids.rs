//! Identifiers: Regions, partitions, accounts, key IDs, ARNs and aliases. Parse, don't validate:
//! a value of these types is well-formed.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{validation, KmsError};

/// An AWS Region name such as `us-east-1` (pattern `^([a-z]+-){2,3}\d+$`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Region(String);

impl Region {
    /// Parses a Region name; `member` names the request member for the validation message.
    pub fn parse_member(s: &str, member: &str) -> Result<Region, KmsError> {
        if s.len() > 32 {
            return Err(validation::too_long(Some(s), member, 32));
        }
        let (words, digits) = match s.rsplit_once('-') {
            Some(split) => split,
            None => return Err(validation::pattern(s, member, r"^([a-z]+-){2,3}\d+$")),
        };
        let parts: Vec<&str> = words.split('-').collect();
        let words_ok = (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()));
        let digits_ok = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        if words_ok && digits_ok {
            Ok(Region(s.to_string()))
        } else {
            Err(validation::pattern(s, member, r"^([a-z]+-){2,3}\d+$"))
        }
    }

    /// Parses a Region name.
    pub fn parse(s: &str) -> Result<Region, KmsError> {
        Region::parse_member(s, "region")
    }

    /// The Region name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The partition AWS puts this Region in (`aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`).
    pub fn default_partition(&self) -> Partition {
        if self.0.starts_with("cn-") {
            Partition("aws-cn".into())
        } else if self.0.starts_with("us-gov-") {
            Partition("aws-us-gov".into())
        } else {
            Partition("aws".into())
        }
    }
}

/// Deserializing parses, like every other way of making one of these identifiers: a value read
/// from a sync message, a Raft command or a stored record is as well-formed as one built by
/// `parse` (bytes from another Region never carry an unchecked name).
macro_rules! parse_on_deserialize {
    ($($t:ty => $parse:expr),* $(,)?) => {$(
        impl TryFrom<String> for $t {
            type Error = String;
            fn try_from(s: String) -> Result<$t, String> {
                $parse(&s)
            }
        }
    )*};
}

parse_on_deserialize! {
    Region => |s: &str| Region::parse(s).map_err(|e| e.to_string()),
    Partition => |s: &str| Partition::parse(s).map_err(|e| e.to_string()),
    AccountId => |s: &str| AccountId::parse(s).map_err(|e| e.to_string()),
    KeyId => |s: &str| KeyId::parse(s).ok_or_else(|| format!("invalid key id '{s}'")),
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An AWS partition (`aws`, `aws-cn`, `aws-us-gov`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Partition(String);

impl Partition {
    /// Parses a partition name: lowercase letters, digits and dashes, starting with `aws`.
    pub fn parse(s: &str) -> Result<Partition, KmsError> {
        let ok = s.starts_with("aws")
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Partition(s.to_string()))
        } else {
            Err(KmsError::Validation(format!("invalid partition '{s}'")))
        }
    }

    /// The partition name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether multi-Region keys exist in this partition's Regions. AWS: "Multi-Region keys are
    /// supported in all AWS Regions that AWS KMS supports except for China (Beijing) and China
    /// (Ningxia)", the two Regions of `aws-cn`. The one place that rule lives.
    pub fn supports_multi_region_keys(&self) -> bool {
        self.0 != "aws-cn"
    }

    /// Refuses a multi-Region key (CreateKey `MultiRegion=true`, a replica, a new primary) in
    /// `region`, a Region of this partition, when the partition has none. The message is
    /// kmsim's own (AWS has not been recorded answering it).
    pub fn check_multi_region_keys(&self, region: &Region) -> Result<(), KmsError> {
        if self.supports_multi_region_keys() {
            Ok(())
        } else {
            Err(KmsError::UnsupportedOperation(format!(
                "Multi-Region keys are not supported in {region}."
            )))
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A 12-digit AWS account ID.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct AccountId(String);

impl AccountId {
    /// Parses a 12-digit account ID.
    pub fn parse(s: &str) -> Result<AccountId, KmsError> {
        if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(AccountId(s.to_string()))
        } else {
            Err(KmsError::Validation(format!("invalid account id '{s}'")))
        }
    }

    /// The account ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A KMS key ID: a lowercase hyphenated UUID for single-Region keys, `mrk-` + 32 lowercase hex
/// for multi-Region keys.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct KeyId(String);

impl KeyId {
    /// Parses a key ID; anything else is `None`.
    pub fn parse(s: &str) -> Option<KeyId> {
        if is_uuid(s) || is_mrk(s) {
            Some(KeyId(s.to_string()))
        } else {
            None
        }
    }

    /// Builds a single-Region key ID from 16 random bytes (a version-4 UUID).
    pub fn single_region_from_bytes(mut b: [u8; 16]) -> KeyId {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex_lower(&b);
        KeyId(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }

    /// Builds a multi-Region key ID from 16 random bytes.
    pub fn multi_region_from_bytes(b: [u8; 16]) -> KeyId {
        KeyId(format!("mrk-{}", hex_lower(&b)))
    }

    /// True for `mrk-` key IDs.
    pub fn is_multi_region(&self) -> bool {
        self.0.starts_with("mrk-")
    }

    /// The key ID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn hex_lower(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for byte in b {
        s.push(HEX[(byte >> 4) as usize] as char);
        s.push(HEX[(byte & 0xf) as usize] as char);
    }
    s
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && is_lower_hex(g))
}

fn is_mrk(s: &str) -> bool {
    s.strip_prefix("mrk-")
        .is_some_and(|h| h.len() == 32 && is_lower_hex(h))
}

/// An alias name, always starting with `alias/`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AliasName(String);

impl AliasName {
    /// Parses an alias name as given to CreateAlias/UpdateAlias/DeleteAlias (`aliasName` member).
    pub fn parse(s: &str) -> Result<AliasName, KmsError> {
        if s.is_empty() {
            return Err(validation::too_short(Some(s), "aliasName", 1));
        }
        if s.len() > 256 {
            return Err(validation::too_long(Some(s), "aliasName", 256));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":/_-".contains(&b))
        {
            return Err(validation::pattern(s, "aliasName", "^[a-zA-Z0-9:/_-]+$"));
        }
        if !s.starts_with("alias/") {
            return Err(KmsError::Validation(
                "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into(),
            ));
        }
        if s.len() == "alias/".len() {
            return Err(KmsError::InvalidAliasName(format!(
                "Alias name {s} is not valid."
            )));
        }
        Ok(AliasName(s.to_string()))
    }

    /// True for the names AWS reserves for AWS managed keys (`alias/aws/…`).
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with("alias/aws/")
    }

    /// The full name including `alias/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a Region's keys live: partition, Region and account. Builds the ARNs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scope {
    /// The partition of the Region.
    pub partition: Partition,
    /// The Region.
    pub region: Region,
    /// The owning account.
    pub account: AccountId,
}

impl Scope {
    /// `arn:<partition>:kms:<region>:<account>:key/<id>`
    pub fn key_arn(&self, id: &KeyId) -> String {
        format!(
            "arn:{}:kms:{}:{}:key/{}",
            self.partition, self.region, self.account, id
        )
    }

    /// The ARN the key `id` has in another Region of the same partition and account (related
    /// multi-Region keys differ only in the Region field).
    pub fn key_arn_in(&self, region: &Region, id: &KeyId) -> String {
        format!(
            "arn:{}:kms:{}:{}:key/{}",
            self.partition, region, self.account, id
        )
    }

    /// The ARN of a key ID that may be malformed (used in "does not exist" messages).
    pub fn key_arn_str(&self, id: &str) -> String {
        format!(
            "arn:{}:kms:{}:{}:key/{}",
            self.partition, self.region, self.account, id
        )
    }

    /// `arn:<partition>:kms:<region>:<account>:alias/<name>` (name without `alias/`).
    pub fn alias_arn(&self, alias: &AliasName) -> String {
        let bare = alias.as_str().trim_start_matches("alias/");
        format!(
            "arn:{}:kms:{}:{}:alias/{}",
            self.partition, self.region, self.account, bare
        )
    }

    /// `arn:<partition>:iam::<account>:root`
    pub fn account_root_arn(&self) -> String {
        format!("arn:{}:iam::{}:root", self.partition, self.account)
    }
}

/// A reference to a key as a caller wrote it, resolved against one Region's [`Scope`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// A key ID or a key ARN of this Region.
    Key(KeyId),
    /// An alias name or an alias ARN of this Region.
    Alias(AliasName),
}

/// Which identifier forms an operation accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefForms {
    /// Key ID or key ARN only (management operations).
    KeyOnly,
    /// Key ID, key ARN, alias name or alias ARN (cryptographic operations, DescribeKey, …).
    KeyOrAlias,
}

impl KeyRef {
    /// Parses a `KeyId` request member the way AWS does, for a request served in `scope`.
    ///
    /// Errors (recorded AWS behaviour): a malformed ID is `Invalid keyId '<input>'`; an ARN of
    /// another Region is `Invalid arn <region>`; both `NotFoundException`.
    pub fn parse(input: &str, scope: &Scope, forms: RefForms) -> Result<KeyRef, KmsError> {
        if input.is_empty() {
            return Err(validation::too_short(Some(input), "keyId", 1));
        }
        if input.len() > 2048 {
            return Err(validation::too_long(Some(input), "keyId", 2048));
        }
        let invalid_id = || KmsError::NotFound(format!("Invalid keyId '{input}'"));
        if let Some(rest) = input.strip_prefix("arn:") {
            let parts: Vec<&str> = rest.splitn(5, ':').collect();
            if parts.len() != 5 || parts[1] != "kms" {
                return Err(KmsError::InvalidArn(format!("Invalid arn {input}")));
            }
            let (partition, region, account, resource) = (parts[0], parts[2], parts[3], parts[4]);
            if region != scope.region.as_str() {
                return Err(KmsError::NotFound(format!("Invalid arn {region}")));
            }
            if partition != scope.partition.as_str() || account != scope.account.as_str() {
                return Err(KmsError::NotFound(format!("Invalid arn {input}")));
            }
            if let Some(id) = resource.strip_prefix("key/") {
                return KeyId::parse(id).map(KeyRef::Key).ok_or_else(invalid_id);
            }
            if let Some(name) = resource.strip_prefix("alias/") {
                if forms == RefForms::KeyOnly {
                    return Err(invalid_id());
                }
                let alias = AliasName::parse(&format!("alias/{name}")).map_err(|_| invalid_id())?;
                return Ok(KeyRef::Alias(alias));
            }
            return Err(KmsError::InvalidArn(format!("Invalid arn {input}")));
        }
        if input.starts_with("alias/") {
            if forms == RefForms::KeyOnly {
                return Err(invalid_id());
            }
            return AliasName::parse(input)
                .map(KeyRef::Alias)
                .map_err(|_| invalid_id());
        }
        KeyId::parse(input).map(KeyRef::Key).ok_or_else(invalid_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scope() -> Scope {
        Scope {
            partition: Partition::parse("aws").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
            account: AccountId::parse("111122223333").unwrap(),
        }
    }

    #[test]
    fn key_ids_follow_aws_formats() {
        assert!(KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ab").is_some());
        assert!(KeyId::parse("mrk-1234abcd12ab34cd56ef1234567890ab").is_some());
        assert!(KeyId::parse("mrk-fake-key-id").is_none());
        assert!(KeyId::parse("134f2428cec14b25a1ae9048164dba47").is_none());
        assert!(KeyId::parse("1234ABCD-12ab-34cd-56ef-1234567890ab").is_none());
        assert!(KeyId::parse("").is_none());
    }

    #[test]
    fn generated_ids_parse() {
        let id = KeyId::single_region_from_bytes([0xab; 16]);
        assert_eq!(KeyId::parse(id.as_str()), Some(id.clone()));
        assert!(!id.is_multi_region());
        let mrk = KeyId::multi_region_from_bytes([7; 16]);
        assert_eq!(KeyId::parse(mrk.as_str()), Some(mrk.clone()));
        assert!(mrk.is_multi_region());
    }

    #[test]
    fn every_reference_form_resolves() {
        let s = scope();
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let key = KeyRef::Key(KeyId::parse(id).unwrap());
        assert_eq!(KeyRef::parse(id, &s, RefForms::KeyOnly).unwrap(), key);
        assert_eq!(
            KeyRef::parse(&s.key_arn_str(id), &s, RefForms::KeyOnly).unwrap(),
            key
        );
        let alias = KeyRef::Alias(AliasName::parse("alias/app").unwrap());
        assert_eq!(
            KeyRef::parse("alias/app", &s, RefForms::KeyOrAlias).unwrap(),
            alias
        );
        let alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/app";
        assert_eq!(
            KeyRef::parse(alias_arn, &s, RefForms::KeyOrAlias).unwrap(),
            alias
        );
    }

    #[test]
    fn errors_match_recorded_aws_messages() {
        let s = scope();
        let e = KeyRef::parse("fake-key-id", &s, RefForms::KeyOrAlias).unwrap_err();
        assert_eq!(e, KmsError::NotFound("Invalid keyId 'fake-key-id'".into()));
        let other = "arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        let e = KeyRef::parse(other, &s, RefForms::KeyOnly).unwrap_err();
        assert_eq!(e, KmsError::NotFound("Invalid arn us-west-2".into()));
        let e = KeyRef::parse("alias/app", &s, RefForms::KeyOnly).unwrap_err();
        assert_eq!(e.code(), "NotFoundException");
        assert_eq!(
            KeyRef::parse("", &s, RefForms::KeyOnly).unwrap_err().code(),
            "ValidationException"
        );
    }

    #[test]
    fn alias_names_are_checked() {
        assert!(AliasName::parse("alias/ok_name-1:x/y").is_ok());
        assert_eq!(
            AliasName::parse("noprefix").unwrap_err().code(),
            "ValidationException"
        );
        assert_eq!(
            AliasName::parse("alias/").unwrap_err().code(),
            "InvalidAliasNameException"
        );
        assert_eq!(
            AliasName::parse("alias/sp ace").unwrap_err().code(),
            "ValidationException"
        );
        assert!(AliasName::parse("alias/aws/s3").unwrap().is_reserved());
    }

    #[test]
    fn regions_follow_the_model_pattern() {
        for ok in ["us-east-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"] {
            assert!(Region::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "NOT A REGION",
            "us-east",
            "useast-1",
            "us--east-1",
            "-us-east-1",
            "",
        ] {
            assert!(Region::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Region::parse("cn-north-1")
                .unwrap()
                .default_partition()
                .as_str(),
            "aws-cn"
        );
    }

    #[test]
    fn multi_region_keys_exist_in_every_partition_but_aws_cn() {
        for (region, supported) in [
            ("us-east-1", true),
            ("us-gov-west-1", true),
            ("cn-north-1", false),
            ("cn-northwest-1", false),
        ] {
            let region = Region::parse(region).unwrap();
            let partition = region.default_partition();
            assert_eq!(
                partition.supports_multi_region_keys(),
                supported,
                "{region}"
            );
            assert_eq!(
                partition.check_multi_region_keys(&region).is_ok(),
                supported
            );
        }
        // The partition decides, not the Region's name.
        let cn = Region::parse("cn-north-1").unwrap();
        assert!(Partition::parse("aws")
            .unwrap()
            .check_multi_region_keys(&cn)
            .is_ok());
        let e = Partition::parse("aws-cn")
            .unwrap()
            .check_multi_region_keys(&cn)
            .unwrap_err();
        assert_eq!(e.code(), "UnsupportedOperationException");
        assert_eq!(
            e.message(),
            "Multi-Region keys are not supported in cn-north-1."
        );
    }

    #[test]
    fn deserializing_parses() {
        let region: Region = serde_json::from_str("\"eu-west-1\"").unwrap();
        assert_eq!(region.as_str(), "eu-west-1");
        assert_eq!(serde_json::to_string(&region).unwrap(), "\"eu-west-1\"");
        assert!(serde_json::from_str::<Region>("\"EU_WEST\"").is_err());
        assert!(serde_json::from_str::<Partition>("\"gcp\"").is_err());
        assert!(serde_json::from_str::<AccountId>("\"12345\"").is_err());
        let id = KeyId::multi_region_from_bytes([7; 16]);
        let bytes = postcard::to_allocvec(&id).unwrap();
        assert_eq!(postcard::from_bytes::<KeyId>(&bytes).unwrap(), id);
        let bad = postcard::to_allocvec("mrk-not-a-key").unwrap();
        assert!(postcard::from_bytes::<KeyId>(&bad).is_err());
    }

    proptest! {
        #[test]
        fn deserialized_ids_are_the_parsed_ones(s in "[a-z0-9-]{0,40}") {
            let json = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(serde_json::from_str::<Region>(&json).ok(), Region::parse(&s).ok());
            prop_assert_eq!(serde_json::from_str::<KeyId>(&json).ok(), KeyId::parse(&s));
        }

        #[test]
        fn key_ref_parse_never_panics(s in ".{0,300}") {
            let _ = KeyRef::parse(&s, &scope(), RefForms::KeyOrAlias);
        }

        #[test]
        fn arn_of_any_generated_key_round_trips(b in any::<[u8; 16]>(), mrk in any::<bool>()) {
            let id = if mrk { KeyId::multi_region_from_bytes(b) } else { KeyId::single_region_from_bytes(b) };
            let s = scope();
            prop_assert_eq!(KeyRef::parse(&s.key_arn(&id), &s, RefForms::KeyOnly).unwrap(), KeyRef::Key(id));
        }
    }
}
