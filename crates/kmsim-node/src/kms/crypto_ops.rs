//! Cryptographic operations, served from this node's applied state and material cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kmsim_core::ids::RefForms;
use kmsim_core::key::{DataKeySpec, EncryptionAlgorithm, KeyRecord, KeySpec, KeyUsage};
use kmsim_core::key_state::{check, Operation};
use kmsim_core::KmsError;
use kmsim_crypto::{random_bytes, CiphertextBlob};
use kmsim_proto::kms::v1 as pb;

use super::validate::{encryption_context, grant_tokens, range, required, secret_len};
use super::{KmsApi, RequestContext};

/// AWS's answer when a ciphertext names a key this Region does not have.
const FOREIGN_CIPHERTEXT: &str = "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.";

/// A fresh data key: its plaintext and its ciphertext under `key`.
struct DataKey {
    key: Arc<KeyRecord>,
    plaintext: zeroize::Zeroizing<Vec<u8>>,
    blob: Vec<u8>,
    material_id: String,
}

/// What a successful decryption yields.
struct Opened {
    key: Arc<KeyRecord>,
    plaintext: zeroize::Zeroizing<Vec<u8>>,
    material_id: String,
}

impl KmsApi {
    /// State, usage and algorithm checks shared by every operation that encrypts under a key.
    fn usable_for(
        &self,
        key: &KeyRecord,
        op: Operation,
        algorithm: Option<&str>,
    ) -> Result<(), KmsError> {
        let arn = self.arn(key);
        check(op, key.regional.state, key.shared.origin, &arn)?;
        if key.shared.key_usage != KeyUsage::EncryptDecrypt {
            return Err(self.wrong_usage(key, op));
        }
        if let Some(a) = algorithm {
            let a = EncryptionAlgorithm::parse(a)?;
            if key.shared.key_spec == KeySpec::SymmetricDefault
                && a != EncryptionAlgorithm::SymmetricDefault
            {
                return Err(KmsError::InvalidKeyUsage(format!(
                    "Algorithm {a} is incompatible with key spec {}.",
                    key.shared.key_spec
                )));
            }
        }
        Ok(())
    }

    /// Only symmetric encryption keys make data keys (`GenerateDataKey*`).
    /// AWS's `InvalidKeyUsageException` for a key whose usage does not allow `op`.
    fn wrong_usage(&self, key: &KeyRecord, op: Operation) -> KmsError {
        KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {}.",
            self.arn(key),
            key.shared.key_usage,
            op.name()
        ))
    }

    fn symmetric_only(&self, key: &KeyRecord, op: Operation) -> Result<(), KmsError> {
        if key.shared.key_spec != KeySpec::SymmetricDefault {
            return Err(self.wrong_usage(key, op));
        }
        Ok(())
    }

    fn seal(
        &self,
        key: &KeyRecord,
        plaintext: &[u8],
        ctx: &BTreeMap<String, String>,
    ) -> Result<(Vec<u8>, String), KmsError> {
        let m = key.shared.current_material().ok_or_else(|| {
            KmsError::Internal(format!("{} has no current key material", self.arn(key)))
        })?;
        let material = self.materials.get(&key.key_id, m)?;
        let blob = CiphertextBlob::seal(
            &material,
            key.key_id.as_str(),
            m.version,
            plaintext,
            ctx,
            &mut self.entropy.rng(),
        )
        .map_err(|e| KmsError::Internal(format!("encryption failed: {e}")))?;
        Ok((blob, m.key_material_id.clone()))
    }

    /// Decrypts a blob with the key it names (which must be `expected` when given).
    fn open(
        &self,
        blob: &[u8],
        expected: Option<&str>,
        ctx: &BTreeMap<String, String>,
        op: Operation,
        algorithm: Option<&str>,
    ) -> Result<Opened, KmsError> {
        let invalid = || KmsError::InvalidCiphertext(String::new());
        let parsed = CiphertextBlob::parse(blob).map_err(|_| invalid())?;
        let blob_key = kmsim_core::ids::KeyId::parse(parsed.key_id()).ok_or_else(invalid)?;
        let key = match expected {
            Some(k) => {
                let key = self.resolve(k, RefForms::KeyOrAlias)?;
                if key.key_id != blob_key {
                    return Err(KmsError::IncorrectKey(
                        "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                    ));
                }
                key
            }
            None => self
                .read(|s| s.key(&blob_key))
                .ok_or_else(|| KmsError::AccessDenied(FOREIGN_CIPHERTEXT.into()))?,
        };
        self.usable_for(&key, op, algorithm)?;
        let m = key
            .shared
            .material(parsed.material_version())
            .ok_or_else(invalid)?;
        let material = self.materials.get(&key.key_id, m)?;
        let plaintext = parsed.open(&material, ctx).map_err(|_| invalid())?;
        Ok(Opened {
            material_id: m.key_material_id.clone(),
            key,
            plaintext,
        })
    }

    /// Encrypt.
    pub async fn encrypt(
        &self,
        _ctx: &RequestContext,
        req: pb::EncryptRequest,
    ) -> Result<pb::EncryptResponse, KmsError> {
        let key_id = required(req.key_id, "keyId")?;
        let plaintext = required(req.plaintext, "plaintext")?;
        secret_len(&plaintext, "plaintext", 1, 4096)?;
        grant_tokens(&req.grant_tokens)?;
        let key = self.resolve(&key_id, RefForms::KeyOrAlias)?;
        self.usable_for(
            &key,
            Operation::Encrypt,
            req.encryption_algorithm.as_deref(),
        )?;
        let ctx = encryption_context(req.encryption_context);
        if req.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let (blob, _) = self.seal(&key, &plaintext, &ctx)?;
        Ok(pb::EncryptResponse {
            ciphertext_blob: Some(blob),
            key_id: Some(self.arn(&key)),
            encryption_algorithm: Some(EncryptionAlgorithm::SymmetricDefault.as_str().into()),
        })
    }

    /// Decrypt.
    pub async fn decrypt(
        &self,
        _ctx: &RequestContext,
        req: pb::DecryptRequest,
    ) -> Result<pb::DecryptResponse, KmsError> {
        grant_tokens(&req.grant_tokens)?;
        if req.recipient.is_some() {
            return Err(KmsError::UnsupportedOperation(
                "Recipient (Nitro Enclaves attestation) is not supported by kmsim.".into(),
            ));
        }
        let ignore_ciphertext = req
            .dry_run_modifiers
            .iter()
            .any(|m| m == "IGNORE_CIPHERTEXT");
        if req.dry_run == Some(true) && ignore_ciphertext {
            if let Some(k) = req.key_id.as_deref() {
                let key = self.resolve(k, RefForms::KeyOrAlias)?;
                self.usable_for(
                    &key,
                    Operation::Decrypt,
                    req.encryption_algorithm.as_deref(),
                )?;
            }
            return Err(KmsError::dry_run());
        }
        let blob = required(req.ciphertext_blob, "ciphertextBlob")?;
        secret_len(&blob, "ciphertextBlob", 1, 6144)?;
        let ctx = encryption_context(req.encryption_context);
        let opened = self.open(
            &blob,
            req.key_id.as_deref(),
            &ctx,
            Operation::Decrypt,
            req.encryption_algorithm.as_deref(),
        )?;
        if req.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        Ok(pb::DecryptResponse {
            key_id: Some(self.arn(&opened.key)),
            plaintext: Some(opened.plaintext.to_vec()),
            encryption_algorithm: Some(EncryptionAlgorithm::SymmetricDefault.as_str().into()),
            ciphertext_for_recipient: None,
            key_material_id: Some(opened.material_id),
        })
    }

    /// ReEncrypt.
    pub async fn re_encrypt(
        &self,
        _ctx: &RequestContext,
        req: pb::ReEncryptRequest,
    ) -> Result<pb::ReEncryptResponse, KmsError> {
        grant_tokens(&req.grant_tokens)?;
        let dest_id = required(req.destination_key_id, "destinationKeyId")?;
        let dest = self.resolve(&dest_id, RefForms::KeyOrAlias)?;
        self.usable_for(
            &dest,
            Operation::ReEncrypt,
            req.destination_encryption_algorithm.as_deref(),
        )?;
        let blob = required(req.ciphertext_blob, "ciphertextBlob")?;
        secret_len(&blob, "ciphertextBlob", 1, 6144)?;
        let src_ctx = encryption_context(req.source_encryption_context);
        let opened = self.open(
            &blob,
            req.source_key_id.as_deref(),
            &src_ctx,
            Operation::ReEncrypt,
            req.source_encryption_algorithm.as_deref(),
        )?;
        if req.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let dest_ctx = encryption_context(req.destination_encryption_context);
        let (new_blob, dest_material) = self.seal(&dest, &opened.plaintext, &dest_ctx)?;
        let alg = Some(EncryptionAlgorithm::SymmetricDefault.as_str().to_string());
        Ok(pb::ReEncryptResponse {
            ciphertext_blob: Some(new_blob),
            source_key_id: Some(self.arn(&opened.key)),
            key_id: Some(self.arn(&dest)),
            source_encryption_algorithm: alg.clone(),
            destination_encryption_algorithm: alg,
            source_key_material_id: Some(opened.material_id),
            destination_key_material_id: Some(dest_material),
        })
    }

    /// The shared part of GenerateDataKey and GenerateDataKeyWithoutPlaintext.
    #[allow(clippy::too_many_arguments)]
    fn data_key(
        &self,
        op: Operation,
        key_id: Option<String>,
        number_of_bytes: Option<i32>,
        key_spec: Option<String>,
        ctx: HashMap<String, String>,
        tokens: &[String],
        dry_run: Option<bool>,
    ) -> Result<DataKey, KmsError> {
        let key_id = required(key_id, "keyId")?;
        grant_tokens(tokens)?;
        let len = match (number_of_bytes, key_spec.as_deref()) {
            (Some(n), None) => {
                range(i64::from(n), "numberOfBytes", 1, 1024)?;
                n as usize
            }
            (None, Some(s)) => DataKeySpec::parse(s)?.byte_len(),
            _ => {
                return Err(KmsError::Validation(
                    "Please specify either number of bytes or key spec.".into(),
                ))
            }
        };
        let key = self.resolve(&key_id, RefForms::KeyOrAlias)?;
        self.usable_for(&key, op, None)?;
        self.symmetric_only(&key, op)?;
        if dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let ctx = encryption_context(ctx);
        let plaintext = random_bytes(len, &mut self.entropy.rng());
        let (blob, material_id) = self.seal(&key, &plaintext, &ctx)?;
        Ok(DataKey {
            key,
            plaintext,
            blob,
            material_id,
        })
    }

    /// GenerateDataKey.
    pub async fn generate_data_key(
        &self,
        _ctx: &RequestContext,
        req: pb::GenerateDataKeyRequest,
    ) -> Result<pb::GenerateDataKeyResponse, KmsError> {
        if req.recipient.is_some() {
            return Err(KmsError::UnsupportedOperation(
                "Recipient (Nitro Enclaves attestation) is not supported by kmsim.".into(),
            ));
        }
        let DataKey {
            key,
            plaintext,
            blob,
            material_id,
        } = self.data_key(
            Operation::GenerateDataKey,
            req.key_id,
            req.number_of_bytes,
            req.key_spec,
            req.encryption_context,
            &req.grant_tokens,
            req.dry_run,
        )?;
        Ok(pb::GenerateDataKeyResponse {
            ciphertext_blob: Some(blob),
            plaintext: Some(plaintext.to_vec()),
            key_id: Some(self.arn(&key)),
            ciphertext_for_recipient: None,
            key_material_id: Some(material_id),
        })
    }

    /// GenerateDataKeyWithoutPlaintext.
    pub async fn generate_data_key_without_plaintext(
        &self,
        _ctx: &RequestContext,
        req: pb::GenerateDataKeyWithoutPlaintextRequest,
    ) -> Result<pb::GenerateDataKeyWithoutPlaintextResponse, KmsError> {
        let DataKey {
            key,
            blob,
            material_id,
            ..
        } = self.data_key(
            Operation::GenerateDataKeyWithoutPlaintext,
            req.key_id,
            req.number_of_bytes,
            req.key_spec,
            req.encryption_context,
            &req.grant_tokens,
            req.dry_run,
        )?;
        Ok(pb::GenerateDataKeyWithoutPlaintextResponse {
            ciphertext_blob: Some(blob),
            key_id: Some(self.arn(&key)),
            key_material_id: Some(material_id),
        })
    }

    /// GenerateRandom.
    pub async fn generate_random(
        &self,
        _ctx: &RequestContext,
        req: pb::GenerateRandomRequest,
    ) -> Result<pb::GenerateRandomResponse, KmsError> {
        if req.custom_key_store_id.is_some() {
            return Err(KmsError::UnsupportedOperation(
                "Custom key stores are not supported by kmsim.".into(),
            ));
        }
        if req.recipient.is_some() {
            return Err(KmsError::UnsupportedOperation(
                "Recipient (Nitro Enclaves attestation) is not supported by kmsim.".into(),
            ));
        }
        let n = req
            .number_of_bytes
            .ok_or_else(|| KmsError::Validation("NumberOfBytes is required.".into()))?;
        range(i64::from(n), "numberOfBytes", 1, 1024)?;
        Ok(pb::GenerateRandomResponse {
            plaintext: Some(random_bytes(n as usize, &mut self.entropy.rng()).to_vec()),
            ciphertext_for_recipient: None,
        })
    }
}
