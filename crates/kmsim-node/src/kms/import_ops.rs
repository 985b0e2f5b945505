//! Imported key material (Origin EXTERNAL): GetParametersForImport, ImportKeyMaterial,
//! DeleteImportedKeyMaterial.
//!
//! The wrapping key pair of GetParametersForImport is never stored: its private half travels
//! inside the import token, sealed under the Region's domain key (`tokens.rs`), so any node of
//! the Region can take the ImportKeyMaterial that follows. The material is unwrapped on the
//! node that receives it, checked against the key's spec, and wrapped under the domain key
//! before it enters a Raft command.

use kmsim_core::ids::RefForms;
use kmsim_core::key::{
    ExpirationModel, ImportType, ImportedMaterial, KeySpec, RegionalMaterial, WrappingAlgorithm,
    WrappingKeySpec,
};
use kmsim_core::key_state::{check, Operation};
use kmsim_core::state::material::{import_version, ImportRequestView};
use kmsim_core::state::{Command, CommandOutput, DAY_MS};
use kmsim_core::KmsError;
use kmsim_crypto::{material_commitment, ImportWrappingKey};
use kmsim_proto::kms::v1 as pb;

use super::convert::secs;
use super::specs;
use super::tokens::{import_token, open_import_token};
use super::validate::{required, secret_len, str_len};
use super::{KmsApi, RequestContext};
use crate::material::{parse_material, Unwrapped};

/// How long an import token and its public key stay valid (24 hours, simulated clock).
pub const IMPORT_PARAMETERS_VALID_MS: i64 = DAY_MS;
/// The latest `ValidTo` AWS accepts: 365 days ahead.
pub const MAX_VALID_TO_MS: i64 = 365 * DAY_MS;

fn material_id(id: &str, member: &str) -> Result<(), KmsError> {
    let ok = id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if ok {
        Ok(())
    } else if id.len() != 64 {
        Err(kmsim_core::error::validation::too_long(
            Some(id),
            member,
            64,
        ))
    } else {
        Err(kmsim_core::error::validation::pattern(
            id,
            member,
            "^[a-f0-9]+$",
        ))
    }
}

impl KmsApi {
    /// GetParametersForImport.
    pub async fn get_parameters_for_import(
        &self,
        _ctx: &RequestContext,
        req: pb::GetParametersForImportRequest,
    ) -> Result<pb::GetParametersForImportResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let algorithm =
            WrappingAlgorithm::parse(&required(req.wrapping_algorithm, "wrappingAlgorithm")?)?;
        let wrapping_spec =
            WrappingKeySpec::parse(&required(req.wrapping_key_spec, "wrappingKeySpec")?)?;
        let arn = self.arn(&key);
        check(
            Operation::GetParametersForImport,
            key.regional.state,
            key.shared.origin,
            &arn,
        )?;
        match algorithm {
            WrappingAlgorithm::RsaesPkcs1V15 => {
                return Err(KmsError::Validation(
                    "The wrapping algorithm RSAES_PKCS1_V1_5 is no longer supported; use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256.".into(),
                ))
            }
            WrappingAlgorithm::Sm2Pke => {
                return Err(KmsError::UnsupportedOperation(
                    "The wrapping algorithm SM2PKE is available only in China Regions.".into(),
                ))
            }
            _ => {}
        }
        let bits = match wrapping_spec {
            WrappingKeySpec::Rsa2048 => 2048,
            WrappingKeySpec::Rsa3072 => 3072,
            WrappingKeySpec::Rsa4096 => 4096,
            WrappingKeySpec::Sm2 => {
                return Err(KmsError::UnsupportedOperation(
                    "The wrapping key spec SM2 is available only in China Regions.".into(),
                ))
            }
        };
        let oaep = matches!(
            algorithm,
            WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaesOaepSha256
        );
        let spec = key.shared.key_spec;
        if oaep && spec.family() == kmsim_core::key::KeyFamily::Rsa {
            return Err(KmsError::Validation(format!(
                "{spec} private key material is too large for {algorithm}: use RSA_AES_KEY_WRAP_SHA_1 or RSA_AES_KEY_WRAP_SHA_256."
            )));
        }
        if oaep && bits == 2048 && spec == KeySpec::EccNistP521 {
            return Err(KmsError::Validation(format!(
                "{algorithm} with wrapping key spec RSA_2048 cannot wrap {spec} key material: use RSA_3072 or larger, or RSA_AES_KEY_WRAP_SHA_256."
            )));
        }
        // RSA key generation takes up to seconds: keep it off the async workers.
        let entropy = self.entropy.clone();
        let wrapping = crate::heavy::run("wrapping key generation", move || {
            ImportWrappingKey::generate(bits, &mut entropy.rng())
        })
        .await?
        .map_err(|e| KmsError::Internal(format!("wrapping key generation failed: {e}")))?;
        let valid_to_ms = self.clock.now_ms() + IMPORT_PARAMETERS_VALID_MS;
        let token = import_token(
            &self.materials,
            &key.key_id,
            valid_to_ms,
            algorithm,
            &wrapping,
            &self.entropy,
        );
        Ok(pb::GetParametersForImportResponse {
            key_id: Some(arn),
            import_token: Some(token),
            public_key: Some(wrapping.public_key_der()),
            parameters_valid_to: Some(secs(valid_to_ms)),
        })
    }

    /// ImportKeyMaterial.
    pub async fn import_key_material(
        &self,
        ctx: &RequestContext,
        req: pb::ImportKeyMaterialRequest,
    ) -> Result<pb::ImportKeyMaterialResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        let token = required(req.import_token, "importToken")?;
        secret_len(&token, "importToken", 1, 6144)?;
        let encrypted = required(req.encrypted_key_material, "encryptedKeyMaterial")?;
        secret_len(&encrypted, "encryptedKeyMaterial", 1, 6144)?;
        let expiration = match req.expiration_model.as_deref() {
            Some(m) => ExpirationModel::parse(m)?,
            None => ExpirationModel::KeyMaterialExpires,
        };
        let import_type = req
            .import_type
            .as_deref()
            .map(ImportType::parse)
            .transpose()?;
        if let Some(id) = req.key_material_id.as_deref() {
            material_id(id, "keyMaterialId")?;
            if import_type == Some(ImportType::NewKeyMaterial) {
                return Err(KmsError::Validation(
                    "KeyMaterialId cannot be specified when ImportType is NEW_KEY_MATERIAL.".into(),
                ));
            }
        }
        if let Some(d) = req.key_material_description.as_deref() {
            str_len(d, "keyMaterialDescription", 0, 256)?;
            let ok = d
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || ":/_.-".contains(c));
            if !ok {
                return Err(kmsim_core::error::validation::pattern(
                    d,
                    "keyMaterialDescription",
                    r"^[a-zA-Z0-9:/_\s.-]+$",
                ));
            }
        }
        let now_ms = self.clock.now_ms();
        let valid_to_ms = match (expiration, req.valid_to) {
            (ExpirationModel::KeyMaterialExpires, None) => {
                return Err(KmsError::Validation(
                    "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
                        .into(),
                ))
            }
            (ExpirationModel::KeyMaterialDoesNotExpire, Some(_)) => {
                return Err(KmsError::Validation(
                    "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE".into(),
                ))
            }
            (ExpirationModel::KeyMaterialExpires, Some(t)) => {
                let t = (t * 1000.0) as i64;
                if t <= now_ms || t > now_ms + MAX_VALID_TO_MS {
                    return Err(KmsError::Validation(
                        "The validTo date must be in the future and at most 365 days from now."
                            .into(),
                    ));
                }
                Some(t)
            }
            (ExpirationModel::KeyMaterialDoesNotExpire, None) => None,
        };
        let arn = self.arn(&key);
        check(
            Operation::ImportKeyMaterial,
            key.regional.state,
            key.shared.origin,
            &arn,
        )?;

        let parameters = open_import_token(&self.materials, &token)?;
        if parameters.key_id != key.key_id {
            return Err(KmsError::InvalidImportToken(format!(
                "The import token was issued for another key, not for {arn}."
            )));
        }
        if parameters.valid_to_ms < now_ms {
            return Err(KmsError::ExpiredImportToken(format!(
                "The import token for {arn} has expired: get new parameters with GetParametersForImport."
            )));
        }
        let alg = specs::import_wrapping(parameters.algorithm)
            .ok_or_else(|| KmsError::InvalidImportToken("The import token is not valid.".into()))?;
        let raw = parameters
            .wrapping_key
            .unwrap_import(alg, &encrypted)
            .map_err(|_| KmsError::InvalidCiphertext(String::new()))?;
        let spec = key.shared.key_spec;
        let parsed = parse_material(spec, raw.expose()).map_err(|why| {
            KmsError::IncorrectKeyMaterial(format!("The key material does not fit {arn}: {why}."))
        })?;
        // The commitment of asymmetric material is over its public key: one private key has
        // several DER encodings but only one public key.
        let public_key = match &parsed {
            Unwrapped::Private(p) => Some(p.public_key_der()),
            _ => None,
        };
        let committed: &[u8] = public_key.as_deref().unwrap_or(raw.expose());
        let commitment = material_commitment(key.key_id.as_str(), committed);
        let material = ImportedMaterial {
            expiration_model: expiration,
            valid_to_ms,
            description: req.key_material_description,
        };
        let output = self
            .propose_new_version(&key.key_id, |k| {
                let view = ImportRequestView {
                    import_type,
                    requested_material_id: req.key_material_id.as_deref(),
                    commitment: &commitment,
                };
                let version = import_version(k, &arn, &view)?;
                Ok(self.audited(
                    ctx,
                    "ImportKeyMaterial",
                    serde_json::json!({
                        "keyId": k.key_id.as_str(),
                        "importType": import_type.map(|t| t.as_str()),
                        "expirationModel": expiration.as_str(),
                    }),
                    Command::ImportKeyMaterial {
                        key_id: k.key_id.clone(),
                        import_type,
                        requested_material_id: req.key_material_id.clone(),
                        commitment: commitment.clone(),
                        version,
                        public_key: public_key.clone(),
                        material: RegionalMaterial {
                            wrapped: self.materials.wrap(
                                &k.key_id,
                                version,
                                raw.expose(),
                                &self.entropy,
                            ),
                            import: Some(material.clone()),
                        },
                        now_ms,
                    },
                ))
            })
            .await?;
        let CommandOutput::Key(key) = output else {
            return Err(KmsError::Internal(format!(
                "unexpected command output {output:?}"
            )));
        };
        Ok(pb::ImportKeyMaterialResponse {
            key_id: Some(self.arn(&key)),
            key_material_id: Some(commitment),
        })
    }

    /// DeleteImportedKeyMaterial.
    pub async fn delete_imported_key_material(
        &self,
        _ctx: &RequestContext,
        req: pb::DeleteImportedKeyMaterialRequest,
    ) -> Result<pb::DeleteImportedKeyMaterialResponse, KmsError> {
        let key = self.resolve(&required(req.key_id, "keyId")?, RefForms::KeyOnly)?;
        if let Some(id) = req.key_material_id.as_deref() {
            material_id(id, "keyMaterialId")?;
        }
        let deleted = req.key_material_id.clone().or_else(|| {
            key.shared
                .current_material()
                .map(|m| m.key_material_id.clone())
        });
        let key = self
            .propose_key(Command::DeleteImportedMaterial {
                key_id: key.key_id.clone(),
                material_id: req.key_material_id,
                expired_at_ms: None,
            })
            .await?;
        // Every node, this one included, evicts the deleted material from its cache when it
        // applies the command (`app.rs`).
        Ok(pb::DeleteImportedKeyMaterialResponse {
            key_id: Some(self.arn(&key)),
            key_material_id: deleted,
        })
    }
}
