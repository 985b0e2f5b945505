//! Management operations: keys, aliases, tags, policies, deletion. Each becomes a Raft command.

use kmsim_core::ids::{AliasName, KeyId, KeyRef, RefForms};
use std::collections::BTreeMap;

use kmsim_core::key::{
    KeyFamily, KeyRecord, KeySpec, KeyState, KeyUsage, MaterialInfo, MultiRegion, Origin,
    RegionalMaterial, RegionalProps, RotationConfig, SharedProps, Tag,
};
use kmsim_core::policy::{default_key_policy, validate_policy};
use kmsim_core::state::Command;
use kmsim_core::tags::validate_tags;
use kmsim_core::KmsError;
use kmsim_crypto::{generate_hmac_key, material_commitment, KeyMaterial, PrivateKey, SecretBytes};
use kmsim_proto::kms::v1 as pb;

use super::convert::{alias_entry, key_metadata, secs};
use super::validate::{limit, range, required, str_len};
use super::{KmsApi, RequestContext};

/// One key as a Region shows it to its clients (see [`KmsApi::shown_keys`]).
#[derive(Clone, Debug)]
pub struct ShownKey {
    /// What DescribeKey answers.
    pub metadata: pb::KeyMetadata,
    /// How many rotations ListKeyRotations lists (`None` where it refuses the key).
    pub rotations: Option<usize>,
    /// The names of the key's aliases, in name order (ListAliases with its `KeyId`).
    pub aliases: Vec<String>,
}

pub(super) fn tags_from(list: Vec<pb::Tag>) -> Result<Vec<Tag>, KmsError> {
    list.into_iter()
        .enumerate()
        .map(|(i, t)| {
            let n = i + 1;
            Ok(Tag {
                key: required(t.tag_key, &format!("tags.{n}.member.tagKey"))?,
                value: required(t.tag_value, &format!("tags.{n}.member.tagValue"))?,
            })
        })
        .collect()
}

pub(super) fn pb_tag(t: &Tag) -> pb::Tag {
    pb::Tag {
        tag_key: Some(t.key.clone()),
        tag_value: Some(t.value.clone()),
    }
}

fn check_description(d: &str) -> Result<(), KmsError> {
    str_len(d, "description", 0, 8192)
}

fn policy_name(name: Option<String>) -> Result<(), KmsError> {
    match name.as_deref() {
        None | Some("default") => Ok(()),
        Some(other) => Err(KmsError::NotFound(format!(
            "Policy {other} does not exist: the only key policy name is default"
        ))),
    }
}

impl KmsApi {
    /// Fresh material for a new key of `spec` (raw, to be wrapped) and, for an asymmetric key,
    /// its public key. RSA generation takes up to seconds, so it runs off the async workers
    /// ([`crate::heavy`]).
    pub(super) async fn generate_material(
        &self,
        spec: KeySpec,
    ) -> Result<(SecretBytes, Option<Vec<u8>>), KmsError> {
        let failed = |e: String| KmsError::Internal(format!("key generation failed: {e}"));
        match spec.family() {
            KeyFamily::Symmetric => {
                let m = KeyMaterial::generate(&mut self.entropy.rng());
                Ok((SecretBytes::from_slice(m.expose()), None))
            }
            KeyFamily::Hmac => {
                let h = super::specs::hmac_spec(spec).ok_or_else(|| failed(spec.to_string()))?;
                Ok((generate_hmac_key(h, &mut self.entropy.rng()), None))
            }
            KeyFamily::Rsa | KeyFamily::Ecc => {
                let a = crate::material::asymmetric_spec(spec)
                    .ok_or_else(|| failed(spec.to_string()))?;
                let entropy = self.entropy.clone();
                let (private, der) = crate::heavy::run("key generation", move || {
                    PrivateKey::generate_parsed(a, &mut entropy.rng())
                })
                .await?
                .map_err(|e| failed(e.to_string()))?;
                Ok((der, Some(private.public_key_der())))
            }
            KeyFamily::Unsupported => Err(KmsError::UnsupportedOperation(format!(
                "KeySpec {spec} is not supported by kmsim."
            ))),
        }
    }

    /// CreateKey.
    pub async fn create_key(
        &self,
        ctx: &RequestContext,
        req: pb::CreateKeyRequest,
    ) -> Result<pb::CreateKeyResponse, KmsError> {
        let spec = match (req.key_spec.as_deref(), req.customer_master_key_spec.as_deref()) {
            (Some(a), Some(b)) if a != b => {
                return Err(KmsError::Validation(
                    "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.".into(),
                ))
            }
            (Some(s), _) => KeySpec::parse(s)?,
            (None, Some(s)) => KeySpec::parse(s).map_err(|_| {
                kmsim_core::error::validation::not_in_enum(s, "customerMasterKeySpec", KeySpec::WIRE)
            })?,
            (None, None) => KeySpec::SymmetricDefault,
        };
        let usage = match req.key_usage.as_deref() {
            Some(u) => KeyUsage::parse(u)?,
            None if spec == KeySpec::SymmetricDefault => KeyUsage::EncryptDecrypt,
            None => {
                return Err(KmsError::Validation(
                    "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.".into(),
                ))
            }
        };
        if !spec.allowed_usages().contains(&usage) {
            return Err(KmsError::Validation(format!(
                "KeyUsage {usage} is not compatible with KeySpec {spec}"
            )));
        }
        let origin = match req.origin.as_deref() {
            Some(o) => Origin::parse(o)?,
            None => Origin::AwsKms,
        };
        if req.custom_key_store_id.is_some()
            || matches!(origin, Origin::AwsCloudhsm | Origin::ExternalKeyStore)
        {
            return Err(KmsError::UnsupportedOperation(
                "Custom key stores (AWS_CLOUDHSM, EXTERNAL_KEY_STORE) are not supported by kmsim."
                    .into(),
            ));
        }
        if req.xks_key_id.is_some() {
            return Err(KmsError::UnsupportedOperation(
                "XksKeyId requires an external key store, which kmsim does not support.".into(),
            ));
        }
        if !spec.is_supported() {
            return Err(KmsError::UnsupportedOperation(format!(
                "KeySpec {spec} is not supported by kmsim."
            )));
        }
        let description = req.description.unwrap_or_default();
        check_description(&description)?;
        let given_policy = req.policy.is_some();
        let policy = match req.policy {
            Some(p) => {
                validate_policy(&p)?;
                p
            }
            None => default_key_policy(&self.scope),
        };
        let tags = tags_from(req.tags)?;
        validate_tags(&tags, "tags")?;
        if tags.len() > kmsim_core::tags::MAX_TAGS {
            return Err(KmsError::Tag("Too many tags".into()));
        }
        let multi_region = req.multi_region.unwrap_or(false);
        if multi_region {
            self.scope
                .partition
                .check_multi_region_keys(&self.scope.region)?;
        }

        // Everything random or time-dependent is decided here, before proposing.
        let key_id = if multi_region {
            KeyId::multi_region_from_bytes(self.entropy.bytes())
        } else {
            KeyId::single_region_from_bytes(self.entropy.bytes())
        };
        // The default policy gives the account `kms:*`; a given one must not lock the caller
        // out (AWS checks only a policy the request gives).
        if given_policy {
            self.check_new_key_policy(
                ctx,
                "CreateKey",
                &policy,
                &self.scope.key_arn(&key_id),
                &self.scope.region,
                req.bypass_policy_lockout_safety_check.unwrap_or(false),
            )?;
        }
        let now = self.clock.now_ms();
        let mut shared = SharedProps {
            key_spec: spec,
            key_usage: usage,
            origin,
            mrk: multi_region.then(|| MultiRegion {
                primary: self.scope.region.clone(),
                replicas: Vec::new(),
                epoch: 1,
                version: 1,
            }),
            materials: Vec::new(),
            current_version: None,
            public_key: None,
            rotation: RotationConfig::default(),
        };
        let mut materials = BTreeMap::new();
        let state = if origin == Origin::External {
            // Imported material comes later, through GetParametersForImport + ImportKeyMaterial.
            KeyState::PendingImport
        } else {
            let (raw, public_key) = self.generate_material(spec).await?;
            shared.public_key = public_key;
            shared.materials.push(MaterialInfo {
                version: 0,
                // A commitment to the material, as for imported material: every Region of a
                // multi-Region set checks the material it receives against it.
                key_material_id: material_commitment(key_id.as_str(), raw.expose()),
                created_ms: now,
                rotation: None,
            });
            shared.current_version = Some(0);
            materials.insert(
                0,
                RegionalMaterial {
                    wrapped: self.materials.wrap(&key_id, 0, raw.expose(), &self.entropy),
                    import: None,
                },
            );
            KeyState::Enabled
        };
        let key = KeyRecord {
            key_id,
            shared,
            regional: RegionalProps {
                creation_ms: now,
                description,
                state,
                deletion_ms: None,
                pending_window_days: None,
                policy,
                tags,
                materials,
                sync: Default::default(),
            },
        };
        let params = serde_json::json!({
            "keySpec": spec.as_str(),
            "keyUsage": usage.as_str(),
            "origin": origin.as_str(),
            "multiRegion": multi_region,
        });
        let response = super::trail::key_metadata_elements(
            "keyMetadata",
            &key_metadata(&self.scope, &key),
            &[],
        );
        let created = self
            .propose_key(self.audited_with_response(
                ctx,
                "CreateKey",
                params,
                Some(response),
                Command::CreateKey { key },
            ))
            .await?;
        Ok(pb::CreateKeyResponse {
            key_metadata: Some(key_metadata(&self.scope, &created)),
        })
    }

    /// DescribeKey.
    pub async fn describe_key(
        &self,
        _ctx: &RequestContext,
        req: pb::DescribeKeyRequest,
    ) -> Result<pb::DescribeKeyResponse, KmsError> {
        let key_id = required(req.key_id, "keyId")?;
        self.check_grant_tokens(&req.grant_tokens)?;
        let key = self.resolve(&key_id, RefForms::KeyOrAlias)?;
        Ok(pb::DescribeKeyResponse {
            key_metadata: Some(key_metadata(&self.scope, &key)),
        })
    }

    /// The keys of `ids` that this Region holds, in the order asked, each as DescribeKey,
    /// ListKeyRotations and ListAliases would show it, after the Region's read index (the
    /// admin `ReadKeyViews`): one read of many keys, answered from the same state and by the
    /// same code as those operations.
    pub async fn shown_keys(&self, ids: &[KeyId]) -> Result<Vec<ShownKey>, KmsError> {
        self.reads.barrier().await?;
        let held = self.read(|s| {
            ids.iter()
                .filter_map(|id| Some((s.key(id)?, s.aliases_of(id))))
                .collect::<Vec<_>>()
        })?;
        Ok(held
            .into_iter()
            .map(|(key, aliases)| ShownKey {
                metadata: key_metadata(&self.scope, &key),
                rotations: self.rotations_listable(&key).ok().map(|()| {
                    key.shared
                        .materials
                        .iter()
                        .filter(|m| m.rotation.is_some())
                        .count()
                }),
                aliases: aliases.iter().map(|a| a.name.to_string()).collect(),
            })
            .collect())
    }

    /// ListKeys.
    pub async fn list_keys(
        &self,
        _ctx: &RequestContext,
        req: pb::ListKeysRequest,
    ) -> Result<pb::ListKeysResponse, KmsError> {
        let limit = limit(req.limit, 100, 1000)?;
        let after = match req.marker.as_deref() {
            None => None,
            Some(m) => Some(
                KeyId::parse(m).ok_or_else(|| KmsError::InvalidMarker("Invalid marker".into()))?,
            ),
        };
        let (keys, next) = self.read(|s| s.list_keys(after.as_ref(), limit))?;
        Ok(pb::ListKeysResponse {
            keys: keys
                .iter()
                .map(|k| pb::KeyListEntry {
                    key_id: Some(k.key_id.to_string()),
                    key_arn: Some(self.arn(k)),
                })
                .collect(),
            truncated: Some(next.is_some()),
            next_marker: next.map(|m| m.to_string()),
        })
    }

    /// EnableKey.
    pub async fn enable_key(
        &self,
        _ctx: &RequestContext,
        req: pb::EnableKeyRequest,
    ) -> Result<pb::EnableKeyResponse, KmsError> {
        self.set_enabled(req.key_id, true).await?;
        Ok(pb::EnableKeyResponse {})
    }

    /// DisableKey.
    pub async fn disable_key(
        &self,
        _ctx: &RequestContext,
        req: pb::DisableKeyRequest,
    ) -> Result<pb::DisableKeyResponse, KmsError> {
        self.set_enabled(req.key_id, false).await?;
        Ok(pb::DisableKeyResponse {})
    }

    async fn set_enabled(&self, key_id: Option<String>, enabled: bool) -> Result<(), KmsError> {
        let key = self.resolve(&required(key_id, "keyId")?, RefForms::KeyOnly)?;
        self.propose_done(Command::SetEnabled {
            key_id: key.key_id.clone(),
            enabled,
        })
        .await
    }

    /// UpdateKeyDescription.
    pub async fn update_key_description(
        &self,
        _ctx: &RequestContext,
        req: pb::UpdateKeyDescriptionRequest,
    ) -> Result<pb::UpdateKeyDescriptionResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let description = required(req.description, "description")?;
        check_description(&description)?;
        self.propose_done(Command::UpdateKeyDescription {
            key_id: key.key_id.clone(),
            description,
        })
        .await?;
        Ok(pb::UpdateKeyDescriptionResponse {})
    }

    fn target_key(&self, target: Option<String>) -> Result<KeyId, KmsError> {
        let target = required(target, "targetKeyId")?;
        match KeyRef::parse(&target, &self.scope, RefForms::KeyOnly)? {
            KeyRef::Key(id) => Ok(id),
            KeyRef::Alias(_) => Err(KmsError::NotFound(format!("Invalid keyId '{target}'"))),
        }
    }

    fn alias_name(&self, name: Option<String>) -> Result<AliasName, KmsError> {
        let name = AliasName::parse(&required(name, "aliasName")?)?;
        if name.is_reserved() {
            return Err(KmsError::InvalidAliasName(format!(
                "Alias {name} is reserved for AWS managed keys and cannot be created, changed or deleted."
            )));
        }
        Ok(name)
    }

    /// CreateAlias.
    pub async fn create_alias(
        &self,
        _ctx: &RequestContext,
        req: pb::CreateAliasRequest,
    ) -> Result<pb::CreateAliasResponse, KmsError> {
        let name = self.alias_name(req.alias_name)?;
        let target = self.target_key(req.target_key_id)?;
        let now_ms = self.clock.now_ms();
        self.propose_done(Command::CreateAlias {
            name,
            target,
            now_ms,
        })
        .await?;
        Ok(pb::CreateAliasResponse {})
    }

    /// UpdateAlias.
    pub async fn update_alias(
        &self,
        _ctx: &RequestContext,
        req: pb::UpdateAliasRequest,
    ) -> Result<pb::UpdateAliasResponse, KmsError> {
        let name = self.alias_name(req.alias_name)?;
        let target = self.target_key(req.target_key_id)?;
        let now_ms = self.clock.now_ms();
        self.propose_done(Command::UpdateAlias {
            name,
            target,
            now_ms,
        })
        .await?;
        Ok(pb::UpdateAliasResponse {})
    }

    /// DeleteAlias.
    pub async fn delete_alias(
        &self,
        _ctx: &RequestContext,
        req: pb::DeleteAliasRequest,
    ) -> Result<pb::DeleteAliasResponse, KmsError> {
        let name = self.alias_name(req.alias_name)?;
        self.propose_done(Command::DeleteAlias { name }).await?;
        Ok(pb::DeleteAliasResponse {})
    }

    /// ListAliases.
    pub async fn list_aliases(
        &self,
        _ctx: &RequestContext,
        req: pb::ListAliasesRequest,
    ) -> Result<pb::ListAliasesResponse, KmsError> {
        let limit = limit(req.limit, 50, 100)?;
        let target = match req.key_id {
            Some(k) => Some(self.resolve(&k, RefForms::KeyOnly)?.key_id.clone()),
            None => None,
        };
        let after = match req.marker.as_deref() {
            None => None,
            Some(m) => Some(
                AliasName::parse(m)
                    .map_err(|_| KmsError::InvalidMarker("Invalid marker".into()))?,
            ),
        };
        let (aliases, next) =
            self.read(|s| s.list_aliases(target.as_ref(), after.as_ref(), limit))?;
        Ok(pb::ListAliasesResponse {
            aliases: aliases
                .iter()
                .map(|a| alias_entry(&self.scope, a))
                .collect(),
            truncated: Some(next.is_some()),
            next_marker: next.map(|m| m.to_string()),
        })
    }

    /// TagResource.
    pub async fn tag_resource(
        &self,
        _ctx: &RequestContext,
        req: pb::TagResourceRequest,
    ) -> Result<pb::TagResourceResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let tags = tags_from(req.tags)?;
        validate_tags(&tags, "tags")?;
        self.propose_done(Command::TagResource {
            key_id: key.key_id.clone(),
            tags,
        })
        .await?;
        Ok(pb::TagResourceResponse {})
    }

    /// UntagResource.
    pub async fn untag_resource(
        &self,
        _ctx: &RequestContext,
        req: pb::UntagResourceRequest,
    ) -> Result<pb::UntagResourceResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        for k in &req.tag_keys {
            str_len(k, "tagKeys", 1, 128)?;
        }
        self.propose_done(Command::UntagResource {
            key_id: key.key_id.clone(),
            tag_keys: req.tag_keys,
        })
        .await?;
        Ok(pb::UntagResourceResponse {})
    }

    /// ListResourceTags.
    pub async fn list_resource_tags(
        &self,
        _ctx: &RequestContext,
        req: pb::ListResourceTagsRequest,
    ) -> Result<pb::ListResourceTagsResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let limit = limit(req.limit, 50, 50)?;
        let start = match req.marker.as_deref() {
            None => 0,
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= key.regional.tags.len())
                .ok_or_else(|| KmsError::InvalidMarker("Invalid marker".into()))?,
        };
        let tags = &key.regional.tags[start..];
        let end = tags.len().min(limit);
        let truncated = tags.len() > limit;
        Ok(pb::ListResourceTagsResponse {
            tags: tags[..end].iter().map(pb_tag).collect(),
            next_marker: truncated.then(|| (start + end).to_string()),
            truncated: Some(truncated),
        })
    }

    /// PutKeyPolicy.
    pub async fn put_key_policy(
        &self,
        ctx: &RequestContext,
        req: pb::PutKeyPolicyRequest,
    ) -> Result<pb::PutKeyPolicyResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        policy_name(req.policy_name)?;
        let policy = required(req.policy, "policy")?;
        validate_policy(&policy)?;
        self.check_new_key_policy(
            ctx,
            "PutKeyPolicy",
            &policy,
            &self.arn(&key),
            &self.scope.region,
            req.bypass_policy_lockout_safety_check.unwrap_or(false),
        )?;
        self.propose_done(Command::PutKeyPolicy {
            key_id: key.key_id.clone(),
            policy,
        })
        .await?;
        Ok(pb::PutKeyPolicyResponse {})
    }

    /// GetKeyPolicy.
    pub async fn get_key_policy(
        &self,
        _ctx: &RequestContext,
        req: pb::GetKeyPolicyRequest,
    ) -> Result<pb::GetKeyPolicyResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        policy_name(req.policy_name)?;
        Ok(pb::GetKeyPolicyResponse {
            policy: Some(key.regional.policy.clone()),
            policy_name: Some("default".into()),
        })
    }

    /// ListKeyPolicies.
    pub async fn list_key_policies(
        &self,
        _ctx: &RequestContext,
        req: pb::ListKeyPoliciesRequest,
    ) -> Result<pb::ListKeyPoliciesResponse, KmsError> {
        self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        limit(req.limit, 100, 1000)?;
        Ok(pb::ListKeyPoliciesResponse {
            policy_names: vec!["default".into()],
            next_marker: None,
            truncated: Some(false),
        })
    }

    /// ScheduleKeyDeletion.
    pub async fn schedule_key_deletion(
        &self,
        ctx: &RequestContext,
        req: pb::ScheduleKeyDeletionRequest,
    ) -> Result<pb::ScheduleKeyDeletionResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let window = req.pending_window_in_days.unwrap_or(30);
        range(i64::from(window), "pendingWindowInDays", 7, 30)?;
        let now_ms = self.clock.now_ms();
        let params =
            serde_json::json!({"keyId": key.key_id.as_str(), "pendingWindowInDays": window});
        let key = self
            .propose_key(self.audited(
                ctx,
                "ScheduleKeyDeletion",
                params,
                Command::ScheduleKeyDeletion {
                    key_id: key.key_id.clone(),
                    window_days: window as u32,
                    now_ms,
                },
            ))
            .await?;
        Ok(pb::ScheduleKeyDeletionResponse {
            key_id: Some(self.arn(&key)),
            deletion_date: key
                .regional
                .deletion_ms
                .filter(|_| key.regional.state == KeyState::PendingDeletion)
                .map(secs),
            key_state: Some(key.regional.state.as_str().into()),
            pending_window_in_days: Some(window),
        })
    }

    /// CancelKeyDeletion.
    pub async fn cancel_key_deletion(
        &self,
        ctx: &RequestContext,
        req: pb::CancelKeyDeletionRequest,
    ) -> Result<pb::CancelKeyDeletionResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let params = serde_json::json!({"keyId": key.key_id.as_str()});
        let key = self
            .propose_key(self.audited(
                ctx,
                "CancelKeyDeletion",
                params,
                Command::CancelKeyDeletion {
                    key_id: key.key_id.clone(),
                },
            ))
            .await?;
        Ok(pb::CancelKeyDeletionResponse {
            key_id: Some(self.arn(&key)),
        })
    }
}
