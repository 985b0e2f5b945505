//! What a CloudTrail record says about a request and its answer: `requestParameters` (the
//! request's members, lowerCamelCase, secret members left out) and `responseElements` (for the
//! few operations whose CloudTrail records carry them; `docs/AWS-BEHAVIOUR.md` §9).
//!
//! `requestParameters` is built on the request path of every call, so it is written straight
//! to JSON text through a serde adapter ([`Trail`]) that drops the secret members before they
//! are serialized: a plaintext, ciphertext or key is never encoded, copied or base64'd for the
//! audit log, and no intermediate `serde_json::Value` is built.

use std::fmt;
use std::marker::PhantomData;

use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

use kmsim_proto::kms::v1 as pb;

/// Request members never written to an audit record: data, signatures, MACs, key material,
/// import tokens, attestation documents, peer public keys, grant tokens.
pub const SECRET_MEMBERS: &[&str] = &[
    "Plaintext",
    "CiphertextBlob",
    "Message",
    "Signature",
    "Mac",
    "EncryptedKeyMaterial",
    "ImportToken",
    "PublicKey",
    "Recipient",
    "GrantTokens",
];

/// CloudTrail `requestParameters` of a request (AWS JSON shape): secret members left out, the
/// rest with lowerCamelCase member names (map keys, such as an encryption context's, are
/// caller data and kept verbatim). JSON text.
pub fn request_parameters<Req: Serialize>(req: &Req) -> String {
    serde_json::to_string(&Trail::<_>::new(req)).unwrap_or_else(|_| "null".into())
}

/// CloudTrail's `responseElements` holding one KeyMetadata (`keyMetadata` of CreateKey,
/// `replicaKeyMetadata` of ReplicateKey), plus `extra` members: lowerCamelCase members
/// (`aWSAccountId`, as CloudTrail spells it) and dates as CloudTrail writes them
/// (`Aug 10, 2022, 10:38:27 PM`). JSON text.
pub fn key_metadata_elements(
    member: &str,
    md: &pb::KeyMetadata,
    extra: &[(&str, serde_json::Value)],
) -> String {
    let mut md = serde_json::to_value(Trail::<_>::new(md)).unwrap_or(serde_json::Value::Null);
    if let Some(m) = md.as_object_mut() {
        for date in ["creationDate", "deletionDate", "validTo"] {
            if let Some(secs) = m.get(date).and_then(|v| v.as_f64()) {
                let ms = (secs * 1000.0).round() as i64;
                m.insert(date.into(), kmsim_core::audit::cloudtrail_date(ms).into());
            }
        }
    }
    let mut out = serde_json::Map::new();
    out.insert(member.into(), md);
    for (k, v) in extra {
        out.insert((*k).into(), v.clone());
    }
    serde_json::Value::Object(out).to_string()
}

/// Which struct members a serialized [`Trail`] view keeps, and how it names them.
pub trait View {
    /// Whether member `name` is left out, never serialized (so never encoded or copied).
    fn leaves_out(name: &str) -> bool;
    /// Whether member names are written lowerCamelCase (else as they are: AWS JSON's).
    const LOWER_CAMEL: bool;
}

/// What CloudTrail records: lowerCamelCase names, [`SECRET_MEMBERS`] left out.
pub struct CloudTrail;

impl View for CloudTrail {
    fn leaves_out(name: &str) -> bool {
        SECRET_MEMBERS.contains(&name)
    }
    const LOWER_CAMEL: bool = true;
}

/// What authorization reads (`authorize.rs`): AWS JSON names, only the members it reads
/// (`authorize::reads_member`: the key references, the encryption contexts, the members that
/// are condition keys, the `CiphertextBlob` that names the key of a Decrypt without `KeyId`);
/// payloads such as a plaintext or a message are never encoded.
pub struct Conditions;

impl View for Conditions {
    fn leaves_out(name: &str) -> bool {
        !super::authorize::reads_member(name)
    }
    const LOWER_CAMEL: bool = false;
}

/// The `Serialize` view of a value that `V` says: struct members `V` leaves out are skipped
/// before they are serialized, names cased as `V` says, everything else as it is. By default
/// what CloudTrail records.
pub struct Trail<'a, T: ?Sized, V: View = CloudTrail>(pub &'a T, PhantomData<V>);

impl<'a, T: ?Sized, V: View> Trail<'a, T, V> {
    /// The view `V` of `value`.
    pub fn new(value: &'a T) -> Self {
        Trail(value, PhantomData)
    }
}

impl<T: ?Sized + Serialize, V: View> Serialize for Trail<'_, T, V> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(TrailSerializer::<S, V>(s, PhantomData))
    }
}

/// A member name in lowerCamelCase, written without allocating.
struct LowerCamel(&'static str);

impl fmt::Display for LowerCamel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        if let Some(first) = chars.next() {
            write!(f, "{}", first.to_ascii_lowercase())?;
        }
        f.write_str(chars.as_str())
    }
}

impl Serialize for LowerCamel {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

struct TrailSerializer<S, V>(S, PhantomData<V>);

/// A compound serializer whose elements are wrapped in [`Trail`] again.
struct Nested<C, V>(C, PhantomData<V>);

impl<C, V> Nested<C, V> {
    fn new(inner: C) -> Self {
        Nested(inner, PhantomData)
    }
}

/// A struct written as a map: members named and left out as `V` says.
struct Members<M, V>(M, PhantomData<V>);

macro_rules! forward {
    ($($method:ident($ty:ty)),* $(,)?) => {
        $(fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.0.$method(v)
        })*
    };
}

impl<S: Serializer, V: View> Serializer for TrailSerializer<S, V> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Nested<S::SerializeSeq, V>;
    type SerializeTuple = Nested<S::SerializeTuple, V>;
    type SerializeTupleStruct = Nested<S::SerializeTupleStruct, V>;
    type SerializeTupleVariant = Nested<S::SerializeTupleVariant, V>;
    type SerializeMap = Nested<S::SerializeMap, V>;
    type SerializeStruct = Members<S::SerializeMap, V>;
    type SerializeStructVariant = Nested<S::SerializeStructVariant, V>;

    forward!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Trail::<_, V>::new(v))
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_struct(name, &Trail::<_, V>::new(v))
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Trail::<_, V>::new(v))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Nested::new)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Nested::new)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Nested::new)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Nested::new)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Nested::new)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        // The length is unknown: members are left out.
        self.0.serialize_map(None).map(|m| Members(m, PhantomData))
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Nested::new)
    }
}

impl<M: SerializeMap, V: View> SerializeStruct for Members<M, V> {
    type Ok = M::Ok;
    type Error = M::Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), M::Error> {
        if V::leaves_out(key) {
            return Ok(());
        }
        if V::LOWER_CAMEL {
            self.0
                .serialize_entry(&LowerCamel(key), &Trail::<_, V>::new(value))
        } else {
            self.0.serialize_entry(key, &Trail::<_, V>::new(value))
        }
    }

    fn end(self) -> Result<M::Ok, M::Error> {
        self.0.end()
    }
}

macro_rules! nested {
    ($trait:ident, $method:ident) => {
        impl<C: $trait, V: View> $trait for Nested<C, V> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $method<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), C::Error> {
                self.0.$method(&Trail::<_, V>::new(v))
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    };
}

nested!(SerializeSeq, serialize_element);
nested!(SerializeTuple, serialize_element);
nested!(SerializeTupleStruct, serialize_field);
nested!(SerializeTupleVariant, serialize_field);

impl<C: SerializeMap, V: View> SerializeMap for Nested<C, V> {
    type Ok = C::Ok;
    type Error = C::Error;

    /// Map keys are data (an encryption context's keys): kept as they are.
    fn serialize_key<T: ?Sized + Serialize>(&mut self, k: &T) -> Result<(), C::Error> {
        self.0.serialize_key(k)
    }

    fn serialize_value<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), C::Error> {
        self.0.serialize_value(&Trail::<_, V>::new(v))
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

impl<C: SerializeStructVariant, V: View> SerializeStructVariant for Nested<C, V> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), C::Error> {
        if V::leaves_out(key) {
            return self.0.skip_field(key);
        }
        self.0.serialize_field(key, &Trail::<_, V>::new(v))
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.0.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    #[test]
    fn secrets_are_left_out_and_names_recased() {
        let req = pb::EncryptRequest {
            key_id: Some("alias/a".into()),
            plaintext: Some(b"secret".to_vec()),
            encryption_context: [("Purpose".to_string(), "Test".to_string())].into(),
            grant_tokens: vec!["token".into()],
            encryption_algorithm: Some("SYMMETRIC_DEFAULT".into()),
            dry_run: None,
        };
        let text = request_parameters(&req);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["keyId"], "alias/a");
        assert_eq!(v["encryptionContext"]["Purpose"], "Test");
        assert_eq!(v["encryptionAlgorithm"], "SYMMETRIC_DEFAULT");
        assert!(v.get("plaintext").is_none() && v.get("grantTokens").is_none());
        assert!(
            !text.contains("c2VjcmV0") && !text.contains("token"),
            "{text}"
        );
        let tagged = pb::TagResourceRequest {
            key_id: Some("k".into()),
            tags: vec![pb::Tag {
                tag_key: Some("team".into()),
                tag_value: Some("kms".into()),
            }],
        };
        let v: Value = serde_json::from_str(&request_parameters(&tagged)).unwrap();
        assert_eq!(v["tags"][0]["tagKey"], "team");
        assert_eq!(v["tags"][0]["tagValue"], "kms");
    }

    #[test]
    fn the_conditions_view_keeps_aws_names_and_only_what_authorization_reads() {
        let req = pb::EncryptRequest {
            key_id: Some("alias/a".into()),
            plaintext: Some(b"secret".to_vec()),
            encryption_context: [("Purpose".to_string(), "Test".to_string())].into(),
            grant_tokens: vec!["token".into()],
            encryption_algorithm: None,
            dry_run: None,
        };
        let v = serde_json::to_value(Trail::<_, Conditions>::new(&req)).unwrap();
        assert_eq!(v["KeyId"], "alias/a");
        assert_eq!(v["EncryptionContext"]["Purpose"], "Test");
        assert!(
            v.get("Plaintext").is_none() && v.get("GrantTokens").is_none(),
            "{v}"
        );
        let dec = pb::DecryptRequest {
            ciphertext_blob: Some(b"blob".to_vec()),
            ..Default::default()
        };
        let v = serde_json::to_value(Trail::<_, Conditions>::new(&dec)).unwrap();
        assert_eq!(v["CiphertextBlob"], "YmxvYg==");
        let tagged = pb::TagResourceRequest {
            key_id: Some("k".into()),
            tags: vec![pb::Tag {
                tag_key: Some("team".into()),
                tag_value: Some("kms".into()),
            }],
        };
        let v = serde_json::to_value(Trail::<_, Conditions>::new(&tagged)).unwrap();
        assert_eq!(v["Tags"][0]["TagKey"], "team");
        assert_eq!(v["Tags"][0]["TagValue"], "kms");
        let create = pb::CreateKeyRequest {
            description: Some("not a condition key".into()),
            policy: Some("{}".into()),
            key_spec: Some("RSA_2048".into()),
            multi_region: Some(true),
            ..Default::default()
        };
        let v = serde_json::to_value(Trail::<_, Conditions>::new(&create)).unwrap();
        assert_eq!(v["KeySpec"], "RSA_2048");
        assert_eq!(v["MultiRegion"], true);
        assert!(
            v.get("Description").is_none() && v.get("Policy").is_none(),
            "{v}"
        );
    }

    #[test]
    fn key_metadata_elements_have_cloudtrail_names_and_dates() {
        let md = pb::KeyMetadata {
            aws_account_id: Some("111122223333".into()),
            key_id: Some("k".into()),
            creation_date: Some(1_660_171_107.5),
            enabled: Some(true),
            ..Default::default()
        };
        let v: Value = serde_json::from_str(&key_metadata_elements(
            "keyMetadata",
            &md,
            &[("replicaPolicy", "p".into())],
        ))
        .unwrap();
        assert_eq!(v["keyMetadata"]["aWSAccountId"], "111122223333");
        assert_eq!(
            v["keyMetadata"]["creationDate"],
            "Aug 10, 2022, 10:38:27 PM"
        );
        assert_eq!(v["keyMetadata"]["enabled"], true);
        assert_eq!(v["replicaPolicy"], "p");
    }

    proptest! {
        /// Whatever the request holds, the record is JSON, names no secret member, and keeps
        /// the context verbatim.
        #[test]
        fn records_are_json_and_never_hold_secrets(
            key in "\\PC{0,40}",
            data in proptest::collection::vec(any::<u8>(), 1..64),
            ctx in proptest::collection::hash_map("\\PC{1,12}", "\\PC{0,12}", 0..4),
        ) {
            let req = pb::DecryptRequest {
                ciphertext_blob: Some(data.clone()),
                encryption_context: ctx.clone(),
                key_id: Some(key.clone()),
                ..Default::default()
            };
            let text = request_parameters(&req);
            let v: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(v["keyId"].as_str(), Some(key.as_str()));
            prop_assert!(v.get("ciphertextBlob").is_none());
            for (k, val) in &ctx {
                prop_assert_eq!(v["encryptionContext"][k].as_str(), Some(val.as_str()));
            }
        }
    }
}
