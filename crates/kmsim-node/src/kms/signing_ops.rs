//! Asymmetric and HMAC operations: Sign, Verify, GetPublicKey, DeriveSharedSecret,
//! GenerateMac, VerifyMac. Served from this node's applied state and material cache.

use std::sync::Arc;

use kmsim_core::ids::RefForms;
use kmsim_core::key::{
    KeyAgreementAlgorithm, KeyRecord, KeyUsage, MacAlgorithm, MessageType, SigningAlgorithm,
};
use kmsim_core::key_state::{check, Operation};
use kmsim_core::KmsError;
use kmsim_crypto::{hmac, hmac_verify, CryptoError, Message, PrivateKey};
use kmsim_proto::kms::v1 as pb;

use super::convert::names;
use super::specs;
use super::validate::{required, secret_len};
use super::{KmsApi, RequestContext};
use crate::material::Unwrapped;

impl KmsApi {
    /// Resolves a key for `op` and checks its state and usage.
    fn key_for(
        &self,
        key_id: Option<String>,
        op: Operation,
        usage: KeyUsage,
        tokens: &[String],
    ) -> Result<Arc<KeyRecord>, KmsError> {
        let key_id = required(key_id, "keyId")?;
        self.check_grant_tokens(tokens)?;
        let key = self.resolve(&key_id, RefForms::KeyOrAlias)?;
        check(op, key.regional.state, key.shared.origin, &self.arn(&key))?;
        if key.shared.key_usage != usage {
            return Err(self.wrong_usage(&key, op));
        }
        Ok(key)
    }

    /// The private key of an asymmetric key.
    fn private_key(&self, key: &KeyRecord) -> Result<Arc<Unwrapped>, KmsError> {
        let (material, _, _) = self.current(key)?;
        match material.as_ref() {
            Unwrapped::Private(_) => Ok(material),
            _ => Err(KmsError::Internal(format!(
                "{} holds no private key",
                self.arn(key)
            ))),
        }
    }

    /// The checks Sign and Verify share: algorithm of the key, message type, message.
    fn signing_input(
        &self,
        key: &KeyRecord,
        algorithm: Option<String>,
        message_type: Option<&str>,
        message: &[u8],
    ) -> Result<
        (
            SigningAlgorithm,
            kmsim_crypto::SigningAlgorithm,
            MessageType,
        ),
        KmsError,
    > {
        secret_len(message, "message", 1, 4096)?;
        let alg = SigningAlgorithm::parse(&required(algorithm, "signingAlgorithm")?)?;
        let spec = key.shared.key_spec;
        let crypto_alg = specs::signing(alg)
            .filter(|_| spec.signing_algorithms(KeyUsage::SignVerify).contains(&alg))
            .ok_or_else(|| self.incompatible(alg.as_str(), key))?;
        let message_type = match message_type {
            Some(t) => MessageType::parse(t)?,
            None => MessageType::Raw,
        };
        match message_type {
            MessageType::Raw => {}
            MessageType::Digest => {
                if message.len() != crypto_alg.digest_len() {
                    return Err(KmsError::Validation(format!(
                        "Digest is invalid length for algorithm {alg}."
                    )));
                }
            }
            MessageType::ExternalMu => {
                return Err(KmsError::Validation(format!(
                    "MessageType EXTERNAL_MU is valid only for ML_DSA key specs, not {spec}."
                )))
            }
        }
        Ok((alg, crypto_alg, message_type))
    }

    /// Everything Sign and Verify check before they touch the key: key, state, usage,
    /// algorithm, message type and length, DryRun. Returns the key, the algorithm and its
    /// unwrapped private key.
    #[allow(clippy::too_many_arguments)]
    fn prepare_signing(
        &self,
        op: Operation,
        key_id: Option<String>,
        tokens: &[String],
        algorithm: Option<String>,
        message_type: Option<&str>,
        message: &[u8],
        dry_run: Option<bool>,
    ) -> Result<SigningCall, KmsError> {
        let key = self.key_for(key_id, op, KeyUsage::SignVerify, tokens)?;
        let (alg, crypto_alg, message_type) =
            self.signing_input(&key, algorithm, message_type, message)?;
        if dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let material = self.private_key(&key)?;
        Ok(SigningCall {
            key,
            alg,
            crypto_alg,
            message_type,
            material,
        })
    }

    /// Sign.
    pub async fn sign(
        &self,
        _ctx: &RequestContext,
        req: pb::SignRequest,
    ) -> Result<pb::SignResponse, KmsError> {
        let message = required(req.message, "message")?;
        let call = self.prepare_signing(
            Operation::Sign,
            req.key_id,
            &req.grant_tokens,
            req.signing_algorithm,
            req.message_type.as_deref(),
            &message,
            req.dry_run,
        )?;
        call.private()?;
        // An RSA-4096 signature is milliseconds of CPU: off the async workers.
        let material = call.material.clone();
        let (crypto_alg, message_type) = (call.crypto_alg, call.message_type);
        let entropy = self.entropy.clone();
        let signature = crate::heavy::run("signing", move || {
            let Unwrapped::Private(private) = material.as_ref() else {
                return Err(KmsError::Internal("not a private key".into()));
            };
            private
                .sign(
                    crypto_alg,
                    as_message(message_type, &message),
                    &mut entropy.rng(),
                )
                .map_err(|e| KmsError::Internal(format!("signing failed: {e}")))
        })
        .await??;
        Ok(pb::SignResponse {
            key_id: Some(self.arn(&call.key)),
            signature: Some(signature),
            signing_algorithm: Some(call.alg.as_str().into()),
        })
    }

    /// Verify. A wrong signature is `KMSInvalidSignatureException`, never `false`.
    pub async fn verify(
        &self,
        _ctx: &RequestContext,
        req: pb::VerifyRequest,
    ) -> Result<pb::VerifyResponse, KmsError> {
        let message = required(req.message, "message")?;
        let signature = required(req.signature, "signature")?;
        secret_len(&signature, "signature", 1, 6144)?;
        let call = self.prepare_signing(
            Operation::Verify,
            req.key_id,
            &req.grant_tokens,
            req.signing_algorithm,
            req.message_type.as_deref(),
            &message,
            req.dry_run,
        )?;
        let valid = call
            .private()?
            .public_key()
            .verify(
                call.crypto_alg,
                as_message(call.message_type, &message),
                &signature,
            )
            .map_err(|e| KmsError::Internal(format!("verification failed: {e}")))?;
        if !valid {
            return Err(KmsError::KmsInvalidSignature(String::new()));
        }
        Ok(pb::VerifyResponse {
            key_id: Some(self.arn(&call.key)),
            signature_valid: Some(true),
            signing_algorithm: Some(call.alg.as_str().into()),
        })
    }

    /// GetPublicKey.
    pub async fn get_public_key(
        &self,
        _ctx: &RequestContext,
        req: pb::GetPublicKeyRequest,
    ) -> Result<pb::GetPublicKeyResponse, KmsError> {
        let key_id = required(req.key_id, "keyId")?;
        self.check_grant_tokens(&req.grant_tokens)?;
        let key = self.resolve(&key_id, RefForms::KeyOrAlias)?;
        let arn = self.arn(&key);
        check(
            Operation::GetPublicKey,
            key.regional.state,
            key.shared.origin,
            &arn,
        )?;
        let (spec, usage) = (key.shared.key_spec, key.shared.key_usage);
        let public = key.shared.public_key.clone().filter(|_| spec.is_asymmetric()).ok_or_else(|| {
            KmsError::UnsupportedOperation(format!(
                "{arn} key spec is {spec}, which has no public key: GetPublicKey is valid only for asymmetric KMS keys."
            ))
        })?;
        Ok(pb::GetPublicKeyResponse {
            key_id: Some(arn),
            public_key: Some(public),
            customer_master_key_spec: Some(spec.as_str().into()),
            key_spec: Some(spec.as_str().into()),
            key_usage: Some(usage.as_str().into()),
            encryption_algorithms: names(spec.encryption_algorithms(usage)),
            signing_algorithms: names(spec.signing_algorithms(usage)),
            key_agreement_algorithms: names(spec.key_agreement_algorithms(usage)),
        })
    }

    /// DeriveSharedSecret (raw ECDH).
    pub async fn derive_shared_secret(
        &self,
        _ctx: &RequestContext,
        req: pb::DeriveSharedSecretRequest,
    ) -> Result<pb::DeriveSharedSecretResponse, KmsError> {
        if req.recipient.is_some() {
            return Err(KmsError::UnsupportedOperation(
                "Recipient (Nitro Enclaves attestation) is not supported by kmsim.".into(),
            ));
        }
        let key = self.key_for(
            req.key_id,
            Operation::DeriveSharedSecret,
            KeyUsage::KeyAgreement,
            &req.grant_tokens,
        )?;
        let alg = KeyAgreementAlgorithm::parse(&required(
            req.key_agreement_algorithm,
            "keyAgreementAlgorithm",
        )?)?;
        let peer = required(req.public_key, "publicKey")?;
        secret_len(&peer, "publicKey", 1, 8192)?;
        if req.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let material = self.private_key(&key)?;
        let Unwrapped::Private(private) = material.as_ref() else {
            return Err(KmsError::Internal("not a private key".into()));
        };
        let secret = derive(private, &peer, key.shared.key_spec.as_str())?;
        Ok(pb::DeriveSharedSecretResponse {
            key_id: Some(self.arn(&key)),
            shared_secret: Some(secret),
            ciphertext_for_recipient: None,
            key_agreement_algorithm: Some(alg.as_str().into()),
            key_origin: Some(key.shared.origin.as_str().into()),
        })
    }

    /// The HMAC key and algorithm of GenerateMac / VerifyMac.
    fn mac_input(
        &self,
        key: &KeyRecord,
        algorithm: Option<String>,
        message: &[u8],
    ) -> Result<MacAlgorithm, KmsError> {
        secret_len(message, "message", 1, 4096)?;
        let alg = MacAlgorithm::parse(&required(algorithm, "macAlgorithm")?)?;
        if !key
            .shared
            .key_spec
            .mac_algorithms(KeyUsage::GenerateVerifyMac)
            .contains(&alg)
        {
            return Err(self.incompatible(alg.as_str(), key));
        }
        Ok(alg)
    }

    fn mac_key(&self, key: &KeyRecord) -> Result<Arc<Unwrapped>, KmsError> {
        let (material, _, _) = self.current(key)?;
        match material.as_ref() {
            Unwrapped::Hmac(_) => Ok(material),
            _ => Err(KmsError::Internal(format!(
                "{} holds no HMAC key",
                self.arn(key)
            ))),
        }
    }

    /// GenerateMac.
    pub async fn generate_mac(
        &self,
        _ctx: &RequestContext,
        req: pb::GenerateMacRequest,
    ) -> Result<pb::GenerateMacResponse, KmsError> {
        let key = self.key_for(
            req.key_id,
            Operation::GenerateMac,
            KeyUsage::GenerateVerifyMac,
            &req.grant_tokens,
        )?;
        let message = required(req.message, "message")?;
        let alg = self.mac_input(&key, req.mac_algorithm, &message)?;
        if req.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let material = self.mac_key(&key)?;
        let Unwrapped::Hmac(secret) = material.as_ref() else {
            return Err(KmsError::Internal("not an HMAC key".into()));
        };
        Ok(pb::GenerateMacResponse {
            mac: Some(hmac(specs::mac(alg), secret.expose(), &message)),
            mac_algorithm: Some(alg.as_str().into()),
            key_id: Some(self.arn(&key)),
        })
    }

    /// VerifyMac. A wrong MAC is `KMSInvalidMacException`, never `false`.
    pub async fn verify_mac(
        &self,
        _ctx: &RequestContext,
        req: pb::VerifyMacRequest,
    ) -> Result<pb::VerifyMacResponse, KmsError> {
        let key = self.key_for(
            req.key_id,
            Operation::VerifyMac,
            KeyUsage::GenerateVerifyMac,
            &req.grant_tokens,
        )?;
        let message = required(req.message, "message")?;
        let mac = required(req.mac, "mac")?;
        secret_len(&mac, "mac", 1, 6144)?;
        let alg = self.mac_input(&key, req.mac_algorithm, &message)?;
        if req.dry_run == Some(true) {
            return Err(KmsError::dry_run());
        }
        let material = self.mac_key(&key)?;
        let Unwrapped::Hmac(secret) = material.as_ref() else {
            return Err(KmsError::Internal("not an HMAC key".into()));
        };
        if !hmac_verify(specs::mac(alg), secret.expose(), &message, &mac) {
            return Err(KmsError::KmsInvalidMac(String::new()));
        }
        Ok(pb::VerifyMacResponse {
            key_id: Some(self.arn(&key)),
            mac_valid: Some(true),
            mac_algorithm: Some(alg.as_str().into()),
        })
    }
}

/// A checked Sign or Verify call.
struct SigningCall {
    key: Arc<KeyRecord>,
    alg: SigningAlgorithm,
    crypto_alg: kmsim_crypto::SigningAlgorithm,
    message_type: MessageType,
    material: Arc<Unwrapped>,
}

impl SigningCall {
    fn private(&self) -> Result<&PrivateKey, KmsError> {
        match self.material.as_ref() {
            Unwrapped::Private(p) => Ok(p),
            _ => Err(KmsError::Internal("not a private key".into())),
        }
    }
}

fn as_message(t: MessageType, m: &[u8]) -> Message<'_> {
    match t {
        MessageType::Digest => Message::Digest(m),
        _ => Message::Raw(m),
    }
}

fn derive(private: &PrivateKey, peer: &[u8], spec: &str) -> Result<Vec<u8>, KmsError> {
    private
        .derive_shared_secret(peer)
        .map(|s| s.expose().to_vec())
        .map_err(|e| match e {
            CryptoError::InvalidPublicKey | CryptoError::KeySpecMismatch { .. } => {
                KmsError::Validation(format!(
                    "PublicKey is not a valid DER-encoded SubjectPublicKeyInfo of a key on the curve of {spec}."
                ))
            }
            other => KmsError::Internal(format!("key agreement failed: {other}")),
        })
}
