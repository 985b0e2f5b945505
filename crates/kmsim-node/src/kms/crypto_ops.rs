//! Encryption operations (Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, GenerateDataKeyPair*,
//! GenerateRandom), served from this node's applied state and material cache. Symmetric keys
//! make kmsim ciphertext blobs; RSA keys make raw RSAES-OAEP ciphertexts that any RSA
//! implementation can produce from the public key.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kmsim_core::ids::{KeyId, RefForms};
use kmsim_core::key::{
    DataKeyPairSpec, DataKeySpec, EncryptionAlgorithm, KeyFamily, KeyRecord, KeySpec, KeyUsage,
};
use kmsim_core::key_state::{check, Operation};
use kmsim_core::KmsError;
use kmsim_crypto::{generate_data_key_pair, random_bytes, CiphertextBlob, SecretBytes};
use kmsim_proto::kms::v1 as pb;

use super::specs;
use super::validate::{encryption_context, range, required, secret_len};
use super::{KmsApi, RequestContext};
use crate::material::Unwrapped;

/// AWS's answer when a ciphertext names a key this Region does not have.
const FOREIGN_CIPHERTEXT: &str = "The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access.";

/// A fresh data key: its plaintext and its ciphertext under `key`.
struct DataKey {
    key: Arc<KeyRecord>,
    plaintext: SecretBytes,
    blob: Vec<u8>,
    material_id: Option<String>,
}

/// What a successful decryption yields.
struct Opened {
    key: Arc<KeyRecord>,
    plaintext: SecretBytes,
    algorithm: EncryptionAlgorithm,
    material_id: Option<String>,
}

/// A ciphertext and what made it.
struct Sealed {
    blob: Vec<u8>,
    algorithm: EncryptionAlgorithm,
    material_id: Option<String>,
}

fn recipient_unsupported() -> KmsError {
    KmsError::UnsupportedOperation(
        "Recipient (Nitro Enclaves attestation) is not supported by kmsim.".into(),
    )
}

impl KmsApi {
    /// AWS's `InvalidKeyUsageException` for a key whose usage does not allow `op`.
    pub(super) fn wrong_usage(&self, key: &KeyRecord, op: Operation) -> KmsError {
        KmsError::InvalidKeyUsage(format!(
            "{} key usage is {} which is not valid for {}.",
            self.arn(key),
            key.shared.key_usage,
            op.name()
        ))
    }

    /// AWS's `InvalidKeyUsageException` for an algorithm the key's spec does not offer.
    pub(super) fn incompatible(&self, algorithm: &str, key: &KeyRecord) -> KmsError {
        KmsError::InvalidKeyUsage(format!(
            "Algorithm {algorithm} is incompatible with key spec {}.",
            key.shared.key_spec
        ))
    }

    /// State, usage and algorithm checks of every operation that encrypts or decrypts under a
    /// key; returns the algorithm (default SYMMETRIC_DEFAULT).
    fn encryption_algorithm(
        &self,
        key: &KeyRecord,
        op: Operation,
        algorithm: Option<&str>,
    ) -> Result<EncryptionAlgorithm, KmsError> {
        check(op, key.regional.state, key.shared.origin, &self.arn(key))?;
        if key.shared.key_usage != KeyUsage::EncryptDecrypt {
            return Err(self.wrong_usage(key, op));
        }
        let a = match algorithm {
            Some(a) => EncryptionAlgorithm::parse(a)?,
            None => EncryptionAlgorithm::SymmetricDefault,
        };
        let spec = key.shared.key_spec;
        if !spec
            .encryption_algorithms(KeyUsage::EncryptDecrypt)
            .contains(&a)
        {
            return Err(self.incompatible(a.as_str(), key));
        }
        Ok(a)
    }

    /// Only symmetric encryption keys make data keys (`GenerateDataKey*`, `GenerateDataKeyPair*`).
    fn symmetric_only(&self, key: &KeyRecord, op: Operation) -> Result<(), KmsError> {
        if key.shared.key_spec != KeySpec::SymmetricDefault {
            return Err(self.wrong_usage(key, op));
        }
        Ok(())
    }

    /// The current material of `key`, unwrapped.
    pub(super) fn current(
        &self,
        key: &KeyRecord,
    ) -> Result<(Arc<Unwrapped>, u32, String), KmsError> {
        let (info, _) = key.current_material().ok_or_else(|| {
            KmsError::Internal(format!("{} has no current key material", self.arn(key)))
        })?;
        let m = self.materials.get(key, info.version)?;
        Ok((m, info.version, info.key_material_id.clone()))
    }

    fn seal(
        &self,
        key: &KeyRecord,
        algorithm: EncryptionAlgorithm,
        plaintext: &[u8],
        ctx: &BTreeMap<String, String>,
    ) -> Result<Sealed, KmsError> {
        let (material, version, material_id) = self.current(key)?;
        match (algorithm, material.as_ref()) {
            (EncryptionAlgorithm::SymmetricDefault, Unwrapped::Aes(aes)) => {
                let blob = CiphertextBlob::seal(
                    aes,
                    key.key_id.as_str(),
                    version,
                    plaintext,
                    ctx,
                    &mut self.entropy.rng(),
                )
                .map_err(|e| KmsError::Internal(format!("encryption failed: {e}")))?;
                Ok(Sealed {
                    blob,
                    algorithm,
                    material_id: Some(material_id),
                })
            }
            (a, Unwrapped::Private(private)) => {
                let oaep =
                    specs::rsa_encryption(a).ok_or_else(|| self.incompatible(a.as_str(), key))?;
                no_context_for_asymmetric(ctx)?;
                let bits = rsa_bits(key.shared.key_spec);
                let max = oaep.max_plaintext_len(bits);
                if plaintext.len() > max {
                    return Err(KmsError::Validation(format!(
                        "Algorithm {a} and key spec {} cannot encrypt data larger than {max} bytes.",
                        key.shared.key_spec
                    )));
                }
                let blob = private
                    .public_key()
                    .rsa_encrypt(oaep, plaintext, &mut self.entropy.rng())
                    .map_err(|e| KmsError::Internal(format!("encryption failed: {e}")))?;
                Ok(Sealed {
                    blob,
                    algorithm: a,
                    material_id: None,
                })
            }
            (a, _) => Err(self.incompatible(a.as_str(), key)),
        }
    }

    /// Decrypts a ciphertext. A symmetric blob names its key (which must be `expected` when
    /// given); an RSA ciphertext needs `expected`.
    async fn open(
        &self,
        blob: &[u8],
        expected: Option<&str>,
        ctx: &BTreeMap<String, String>,
        op: Operation,
        algorithm: Option<&str>,
    ) -> Result<Opened, KmsError> {
        let invalid = || KmsError::InvalidCiphertext(String::new());
        let expected_key = match expected {
            Some(k) => Some(self.resolve(k, RefForms::KeyOrAlias)?),
            None => None,
        };
        if let Some(key) = expected_key
            .as_ref()
            .filter(|k| k.shared.key_spec.family() == KeyFamily::Rsa)
        {
            let a = self.encryption_algorithm(key, op, algorithm)?;
            let oaep =
                specs::rsa_encryption(a).ok_or_else(|| self.incompatible(a.as_str(), key))?;
            no_context_for_asymmetric(ctx)?;
            let (material, _, _) = self.current(key)?;
            let blob = blob.to_vec();
            // An RSA-4096 private-key operation is milliseconds of CPU: off the async workers.
            let plaintext = crate::heavy::run("RSA decryption", move || match material.as_ref() {
                Unwrapped::Private(private) => private
                    .rsa_decrypt(oaep, &blob)
                    .map_err(|_| KmsError::InvalidCiphertext(String::new())),
                _ => Err(KmsError::Internal("RSA key without a private key".into())),
            })
            .await??;
            return Ok(Opened {
                key: key.clone(),
                plaintext,
                algorithm: a,
                material_id: None,
            });
        }
        let parsed = CiphertextBlob::parse(blob).map_err(|_| invalid())?;
        let blob_key = KeyId::parse(parsed.key_id()).ok_or_else(invalid)?;
        let key = match expected_key {
            Some(key) => {
                if key.key_id != blob_key {
                    return Err(KmsError::IncorrectKey(
                        "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                    ));
                }
                key
            }
            None => self
                .read(|s| s.key(&blob_key))?
                .ok_or_else(|| KmsError::AccessDenied(FOREIGN_CIPHERTEXT.into()))?,
        };
        let a = self.encryption_algorithm(&key, op, algorithm)?;
        if a != EncryptionAlgorithm::SymmetricDefault {
            return Err(self.incompatible(a.as_str(), &key));
        }
        let version = parsed.material_version();
        let (info, _) = key.material(version).ok_or_else(invalid)?;
        let material_id = info.key_material_id.clone();
        let material = self.materials.get(&key, version)?;
        let Unwrapped::Aes(aes) = material.as_ref() else {
            return Err(invalid());
        };
        let plaintext = parsed.open(aes, ctx).map_err(|_| invalid())?;
        Ok(Opened {
            key,
            plaintext: SecretBytes::from(plaintext),
            algorithm: a,
            material_id: Some(material_id),
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
        self.check_grant_tokens(&req.grant_tokens)?;
        let key = self.resolve(&key_id, RefForms::KeyOrAlias)?;
        let a = self.encryption_algorithm(
            &key,
            Operation::Encrypt,
            req.encryption_algorithm.as_deref(),
        )?;
        let enc_ctx = encryption_context(req.encryption_context);
        if req.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let sealed = self.seal(&key, a, &plaintext, &enc_ctx)?;
        Ok(pb::EncryptResponse {
            ciphertext_blob: Some(sealed.blob),
            key_id: Some(self.arn(&key)),
            encryption_algorithm: Some(sealed.algorithm.as_str().into()),
        })
    }

    /// Decrypt.
    pub async fn decrypt(
        &self,
        _ctx: &RequestContext,
        req: pb::DecryptRequest,
    ) -> Result<pb::DecryptResponse, KmsError> {
        self.check_grant_tokens(&req.grant_tokens)?;
        if req.recipient.is_some() {
            return Err(recipient_unsupported());
        }
        let ignore_ciphertext = req
            .dry_run_modifiers
            .iter()
            .any(|m| m == "IGNORE_CIPHERTEXT");
        if req.dry_run == Some(true) && ignore_ciphertext {
            if let Some(k) = req.key_id.as_deref() {
                let key = self.resolve(k, RefForms::KeyOrAlias)?;
                self.encryption_algorithm(
                    &key,
                    Operation::Decrypt,
                    req.encryption_algorithm.as_deref(),
                )?;
            }
            return Err(KmsError::dry_run());
        }
        let blob = required(req.ciphertext_blob, "ciphertextBlob")?;
        secret_len(&blob, "ciphertextBlob", 1, 6144)?;
        let enc_ctx = encryption_context(req.encryption_context);
        let opened = self
            .open(
                &blob,
                req.key_id.as_deref(),
                &enc_ctx,
                Operation::Decrypt,
                req.encryption_algorithm.as_deref(),
            )
            .await?;
        if req.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        Ok(pb::DecryptResponse {
            key_id: Some(self.arn(&opened.key)),
            plaintext: Some(opened.plaintext.expose().to_vec()),
            encryption_algorithm: Some(opened.algorithm.as_str().into()),
            ciphertext_for_recipient: None,
            key_material_id: opened.material_id,
        })
    }

    /// ReEncrypt.
    pub async fn re_encrypt(
        &self,
        _ctx: &RequestContext,
        req: pb::ReEncryptRequest,
    ) -> Result<pb::ReEncryptResponse, KmsError> {
        self.check_grant_tokens(&req.grant_tokens)?;
        let dest_id = required(req.destination_key_id, "destinationKeyId")?;
        let dest = self.resolve(&dest_id, RefForms::KeyOrAlias)?;
        let dest_alg = self.encryption_algorithm(
            &dest,
            Operation::ReEncrypt,
            req.destination_encryption_algorithm.as_deref(),
        )?;
        let blob = required(req.ciphertext_blob, "ciphertextBlob")?;
        secret_len(&blob, "ciphertextBlob", 1, 6144)?;
        let src_ctx = encryption_context(req.source_encryption_context);
        let opened = self
            .open(
                &blob,
                req.source_key_id.as_deref(),
                &src_ctx,
                Operation::ReEncrypt,
                req.source_encryption_algorithm.as_deref(),
            )
            .await?;
        if req.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let dest_ctx = encryption_context(req.destination_encryption_context);
        let sealed = self.seal(&dest, dest_alg, opened.plaintext.expose(), &dest_ctx)?;
        Ok(pb::ReEncryptResponse {
            ciphertext_blob: Some(sealed.blob),
            source_key_id: Some(self.arn(&opened.key)),
            key_id: Some(self.arn(&dest)),
            source_encryption_algorithm: Some(opened.algorithm.as_str().into()),
            destination_encryption_algorithm: Some(sealed.algorithm.as_str().into()),
            source_key_material_id: opened.material_id,
            destination_key_material_id: sealed.material_id,
        })
    }

    /// Resolves and checks the symmetric key that encrypts data keys and data key pairs.
    fn data_key_encryptor(
        &self,
        op: Operation,
        key_id: Option<String>,
        tokens: &[String],
    ) -> Result<Arc<KeyRecord>, KmsError> {
        let key_id = required(key_id, "keyId")?;
        self.check_grant_tokens(tokens)?;
        let key = self.resolve(&key_id, RefForms::KeyOrAlias)?;
        self.encryption_algorithm(&key, op, None)
            .map_err(|e| match e {
                // An RSA key fails the default-algorithm check; AWS names the usage instead.
                KmsError::InvalidKeyUsage(_) => self.wrong_usage(&key, op),
                other => other,
            })?;
        self.symmetric_only(&key, op)?;
        Ok(key)
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
        let key = self.data_key_encryptor(op, key_id, tokens)?;
        if dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let ctx = encryption_context(ctx);
        let plaintext = SecretBytes::from(random_bytes(len, &mut self.entropy.rng()));
        let sealed = self.seal(
            &key,
            EncryptionAlgorithm::SymmetricDefault,
            plaintext.expose(),
            &ctx,
        )?;
        Ok(DataKey {
            key,
            plaintext,
            blob: sealed.blob,
            material_id: sealed.material_id,
        })
    }

    /// GenerateDataKey.
    pub async fn generate_data_key(
        &self,
        _ctx: &RequestContext,
        req: pb::GenerateDataKeyRequest,
    ) -> Result<pb::GenerateDataKeyResponse, KmsError> {
        if req.recipient.is_some() {
            return Err(recipient_unsupported());
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
            plaintext: Some(plaintext.expose().to_vec()),
            key_id: Some(self.arn(&key)),
            ciphertext_for_recipient: None,
            key_material_id: material_id,
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
            key_material_id: material_id,
        })
    }

    /// The shared part of GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext: a fresh
    /// key pair, its private key (DER PKCS#8) encrypted under the key as a normal blob.
    #[allow(clippy::type_complexity)]
    async fn data_key_pair(
        &self,
        op: Operation,
        key_id: Option<String>,
        spec: Option<String>,
        ctx: HashMap<String, String>,
        tokens: &[String],
        dry_run: Option<bool>,
    ) -> Result<
        (
            Arc<KeyRecord>,
            DataKeyPairSpec,
            SecretBytes,
            Vec<u8>,
            Sealed,
        ),
        KmsError,
    > {
        let spec = DataKeyPairSpec::parse(&required(spec, "keyPairSpec")?)?;
        let key = self.data_key_encryptor(op, key_id, tokens)?;
        let pair_spec = specs::data_key_pair(spec).ok_or_else(|| {
            KmsError::UnsupportedOperation(format!(
                "KeyPairSpec {spec} is available only in China Regions."
            ))
        })?;
        if dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        // RSA key pairs take up to seconds: off the async workers.
        let entropy = self.entropy.clone();
        let (private, public) = crate::heavy::run("key pair generation", move || {
            generate_data_key_pair(pair_spec, &mut entropy.rng())
        })
        .await?
        .map_err(|e| KmsError::Internal(format!("key pair generation failed: {e}")))?;
        let sealed = self.seal(
            &key,
            EncryptionAlgorithm::SymmetricDefault,
            private.expose(),
            &encryption_context(ctx),
        )?;
        Ok((key, spec, private, public, sealed))
    }

    /// GenerateDataKeyPair.
    pub async fn generate_data_key_pair(
        &self,
        _ctx: &RequestContext,
        req: pb::GenerateDataKeyPairRequest,
    ) -> Result<pb::GenerateDataKeyPairResponse, KmsError> {
        if req.recipient.is_some() {
            return Err(recipient_unsupported());
        }
        let (key, spec, private, public, sealed) = self
            .data_key_pair(
                Operation::GenerateDataKeyPair,
                req.key_id,
                req.key_pair_spec,
                req.encryption_context,
                &req.grant_tokens,
                req.dry_run,
            )
            .await?;
        Ok(pb::GenerateDataKeyPairResponse {
            private_key_ciphertext_blob: Some(sealed.blob),
            private_key_plaintext: Some(private.expose().to_vec()),
            public_key: Some(public),
            key_id: Some(self.arn(&key)),
            key_pair_spec: Some(spec.as_str().into()),
            ciphertext_for_recipient: None,
            key_material_id: sealed.material_id,
        })
    }

    /// GenerateDataKeyPairWithoutPlaintext.
    pub async fn generate_data_key_pair_without_plaintext(
        &self,
        _ctx: &RequestContext,
        req: pb::GenerateDataKeyPairWithoutPlaintextRequest,
    ) -> Result<pb::GenerateDataKeyPairWithoutPlaintextResponse, KmsError> {
        let (key, spec, _, public, sealed) = self
            .data_key_pair(
                Operation::GenerateDataKeyPairWithoutPlaintext,
                req.key_id,
                req.key_pair_spec,
                req.encryption_context,
                &req.grant_tokens,
                req.dry_run,
            )
            .await?;
        Ok(pb::GenerateDataKeyPairWithoutPlaintextResponse {
            private_key_ciphertext_blob: Some(sealed.blob),
            public_key: Some(public),
            key_id: Some(self.arn(&key)),
            key_pair_spec: Some(spec.as_str().into()),
            key_material_id: sealed.material_id,
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
            return Err(recipient_unsupported());
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

/// An encryption context binds only symmetric ciphertexts.
fn no_context_for_asymmetric(ctx: &BTreeMap<String, String>) -> Result<(), KmsError> {
    if ctx.is_empty() {
        Ok(())
    } else {
        Err(KmsError::Validation(
            "EncryptionContext is supported only with symmetric encryption KMS keys.".into(),
        ))
    }
}

/// The modulus size of an RSA key spec.
fn rsa_bits(spec: KeySpec) -> usize {
    crate::material::asymmetric_spec(spec)
        .and_then(|a| a.rsa_bits())
        .unwrap_or(0)
}
