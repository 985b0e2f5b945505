//! Sealing synchronizer messages between two Regions (docs/ARCHITECTURE.md, "The envelope"),
//! format version 2: forward secret, authenticated by the sender's signature, and with answers
//! bound to the request they answer.
//!
//! Keys:
//! - each Region's static [`TransportKeyPair`] (P-384), certified by the partition's trust anchor
//!   ([`crate::TrustAnchor`]). In this format it only *signs*: session-key statements
//!   ([`crate::SessionKeyClaim`]) and requests. It never enters a key agreement.
//! - each receiving node's short-lived [`SessionKeyPair`] (P-384, memory only, rotated and wiped
//!   by the node), whose public half the node's Region signs for a sender's fresh challenge.
//! - a fresh ephemeral P-384 key per request, drawn and dropped inside [`seal_request`].
//!
//! A request: Z = ECDH(ephemeral, session); T = the transcript (key ID, source, destination,
//! stamp, the whole clear message, the session public key, the ephemeral public key, a 32-byte
//! random challenge); K_req ‖ K_ans = HKDF-SHA-384(salt = challenge, IKM = Z, info = label ‖
//! SHA-384(T)); the secret is AES-256-GCM under K_req with T as associated data; the sender
//! signs T and the ciphertext with ECDSA P-384 under its static key. The answer is the clear
//! answer message with HMAC-SHA-384 under K_ans, so it counts only for the request whose
//! ephemeral key and challenge derived K_ans.
//!
//! What each part gives: the ephemeral-session ECDH makes the secret unreadable once the
//! session private key is wiped, even to someone holding both static keys (forward secrecy);
//! the signature means only the holder of the sender's static key can make a request that
//! opens, so a stolen *recipient* key (static or session) does not let anyone impersonate the
//! sender to it (no key-compromise impersonation); an answer is bound to one request's fresh
//! challenge and ephemeral key, so a recorded answer never satisfies another request.

use std::fmt;

use ecdsa::signature::{RandomizedSigner, Verifier};
use elliptic_curve::ecdh::diffie_hellman;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use p384::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p384::pkcs8::{EncodePrivateKey, EncodePublicKey};
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha384};
use zeroize::Zeroizing;

use crate::aead::{open_detached, seal_appending, NONCE_LEN};
use crate::encoding::{prefixed_fields_u16, put_field_u16, put_field_u32, Reader};
use crate::key_der::{ec_secret_key, PrivateDer};
use crate::public_key::PublicInner;
use crate::session_key::{SessionKeyPair, SESSION_KEY_ID_LEN};
use crate::{AsymmetricSpec, CryptoError, PublicKey, SecretBytes};

/// First byte of every sealed request and answer. Version 1 (static-static ECDH) is gone: no
/// node accepts it any more.
const TRANSPORT_FORMAT_V2: u8 = 0x02;
/// Domain separation of the request transcript (also the associated data of the secret).
const REQUEST_LABEL: &[u8] = b"kmsim/sync/v2/request";
/// Domain separation of what the sender signs: never a signature over anything else.
const SIGNATURE_LABEL: &[u8] = b"kmsim/sync/v2/request-signature";
/// HKDF info prefix of the two message keys.
const KEYS_LABEL: &[u8] = b"kmsim/sync/v2/keys";
/// Domain separation of the answer's MAC input.
const ANSWER_LABEL: &[u8] = b"kmsim/sync/v2/answer";
/// The sender's random challenge: the HKDF salt, and what makes every request unique.
pub const CHALLENGE_LEN: usize = 32;
/// HMAC-SHA-384 tag of an answer.
const ANSWER_TAG_LEN: usize = 48;

/// A Region's static P-384 transport key pair. The private half is stored wrapped under the
/// Region's domain key; the public half is what the trust anchor certifies. It signs the
/// Region's session-key statements and requests (ECDSA P-384 / SHA-384). Redacted `Debug`.
pub struct TransportKeyPair {
    key: SigningKey,
}

impl TransportKeyPair {
    /// A fresh key pair (the launcher does this).
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> TransportKeyPair {
        TransportKeyPair {
            key: SigningKey::random(rng),
        }
    }

    /// The private key as PKCS#8 DER, to be domain-wrapped.
    pub fn to_pkcs8_der(&self) -> SecretBytes {
        p384_pkcs8(&p384::SecretKey::from(self.key.as_nonzero_scalar()))
    }

    /// Parses what [`TransportKeyPair::to_pkcs8_der`] wrote; a key on another curve is
    /// [`CryptoError::KeySpecMismatch`], garbage [`CryptoError::InvalidPrivateKey`].
    pub fn from_pkcs8_der(der: &[u8]) -> Result<TransportKeyPair, CryptoError> {
        p384_from_der(der).map(|secret| TransportKeyPair {
            key: SigningKey::from(secret),
        })
    }

    /// The public key as DER SubjectPublicKeyInfo, for the certificate.
    pub fn public_key_der(&self) -> Vec<u8> {
        p384_spki(&p384::PublicKey::from(self.key.verifying_key()))
    }

    /// ECDSA P-384 / SHA-384 signature (DER) over `message`, which the caller has prefixed with
    /// a label of its own.
    pub(crate) fn sign(&self, message: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
        let signature: DerSignature = self
            .key
            .try_sign_with_rng(rng, message)
            .expect("invariant: ecdsa p-384 signing only fails with probability 2^-384");
        signature.as_bytes().to_vec()
    }
}

impl fmt::Debug for TransportKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransportKeyPair(<redacted>)")
    }
}

/// Checks a [`TransportKeyPair::sign`] signature under a certified public key (SPKI DER). A key
/// that is no P-384 SPKI gives [`CryptoError::InvalidPublicKey`] /
/// [`CryptoError::KeySpecMismatch`]; a signature that does not verify, `failed`.
pub(crate) fn verify_signature(
    public_der: &[u8],
    message: &[u8],
    signature: &[u8],
    failed: CryptoError,
) -> Result<(), CryptoError> {
    let PublicInner::P384(key) = PublicKey::from_spki_der(AsymmetricSpec::EccNistP384, public_der)?
        .inner()
        .clone()
    else {
        return Err(CryptoError::InvalidPublicKey);
    };
    let signature = Signature::from_der(signature).map_err(|_| failed.clone())?;
    VerifyingKey::verify(&key, message, &signature).map_err(|_| failed)
}

/// What a sealed message is bound to. Every field is authenticated: opening with any other value
/// of any field fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportAad<'a> {
    /// The KMS key the message is about.
    pub key_id: &'a str,
    /// The sending Region (of a request; of an answer, the answering Region).
    pub source: &'a str,
    /// The receiving Region.
    pub destination: &'a str,
    /// The key's (epoch, version) stamp the message carries (0 for notices).
    pub version: u64,
    /// The caller's serialized message, so that the whole message is authenticated.
    pub context: &'a [u8],
}

impl TransportAad<'_> {
    /// `label` ‖ u16 len + key_id ‖ u16 len + source ‖ u16 len + destination ‖ u64 BE version
    /// ‖ u32 len + context.
    fn encode(&self, label: &[u8]) -> Vec<u8> {
        let mut out = prefixed_fields_u16(
            label,
            &[
                self.key_id.as_bytes(),
                self.source.as_bytes(),
                self.destination.as_bytes(),
            ],
        );
        out.reserve(8 + 4 + self.context.len());
        out.extend_from_slice(&self.version.to_be_bytes());
        put_field_u32(&mut out, self.context);
        out
    }

    /// The request transcript T: [`TransportAad::encode`] under the request label ‖ u16 len +
    /// session public key ‖ u16 len + ephemeral public key ‖ challenge.
    fn transcript(
        &self,
        session_public: &[u8],
        ephemeral_public: &[u8],
        challenge: &[u8],
    ) -> Vec<u8> {
        let mut out = self.encode(REQUEST_LABEL);
        put_field_u16(&mut out, session_public);
        put_field_u16(&mut out, ephemeral_public);
        out.extend_from_slice(challenge);
        out
    }
}

/// The key that authenticates the answer to one request: both sides derive it from the
/// request's ECDH secret and transcript. Wiped on drop, redacted `Debug`.
pub struct AnswerKey(Zeroizing<[u8; 32]>);

impl AnswerKey {
    /// The answering side: `0x02` ‖ HMAC-SHA-384(K_ans, answer label ‖ the encoded `aad`).
    pub fn seal_answer(&self, aad: &TransportAad<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + ANSWER_TAG_LEN);
        out.push(TRANSPORT_FORMAT_V2);
        out.extend_from_slice(&self.mac(aad).finalize().into_bytes());
        out
    }

    /// The requesting side: whether `sealed` is the answer to *this* request with exactly these
    /// fields (constant-time comparison). Anything else is [`CryptoError::TransportOpenFailed`].
    pub fn open_answer(&self, aad: &TransportAad<'_>, sealed: &[u8]) -> Result<(), CryptoError> {
        match sealed.split_first() {
            Some((&TRANSPORT_FORMAT_V2, tag)) if tag.len() == ANSWER_TAG_LEN => self
                .mac(aad)
                .verify_slice(tag)
                .map_err(|_| CryptoError::TransportOpenFailed),
            _ => Err(CryptoError::TransportOpenFailed),
        }
    }

    fn mac(&self, aad: &TransportAad<'_>) -> Hmac<Sha384> {
        let mut mac = <Hmac<Sha384> as Mac>::new_from_slice(&*self.0)
            .expect("invariant: hmac takes a key of any length");
        mac.update(&aad.encode(ANSWER_LABEL));
        mac
    }
}

impl fmt::Debug for AnswerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AnswerKey(<redacted>)")
    }
}

/// What [`open_request`] gives the receiver.
pub struct OpenedRequest {
    /// The secret part.
    pub secret: SecretBytes,
    /// The sender's random challenge: unique per genuine request (the receiver's replay check).
    pub challenge: [u8; CHALLENGE_LEN],
    /// The key to authenticate the answer with.
    pub answer_key: AnswerKey,
}

impl fmt::Debug for OpenedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OpenedRequest(<redacted>)")
    }
}

/// A sealed request, parsed (nothing checked yet).
struct SealedRequest<'a> {
    ephemeral_public: &'a [u8],
    challenge: &'a [u8],
    session_id: &'a [u8],
    nonce: &'a [u8],
    ciphertext: &'a [u8],
    signature: &'a [u8],
}

impl<'a> SealedRequest<'a> {
    /// `[0]=0x02` ‖ u16 len + ephemeral SPKI ‖ 32-byte challenge ‖ 16-byte session key ID ‖
    /// 12-byte nonce ‖ u32 len + ciphertext‖tag ‖ u16 len + signature DER, nothing after.
    fn parse(bytes: &'a [u8]) -> Option<SealedRequest<'a>> {
        let mut r = Reader::new(bytes);
        if r.u8()? != TRANSPORT_FORMAT_V2 {
            return None;
        }
        let parsed = SealedRequest {
            ephemeral_public: r.field_u16()?,
            challenge: r.take(CHALLENGE_LEN)?,
            session_id: r.take(SESSION_KEY_ID_LEN)?,
            nonce: r.take(NONCE_LEN)?,
            ciphertext: r.field_u32()?,
            signature: r.field_u16()?,
        };
        r.is_empty().then_some(parsed)
    }

    /// The layout [`SealedRequest::parse`] reads.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![TRANSPORT_FORMAT_V2];
        put_field_u16(&mut out, self.ephemeral_public);
        out.extend_from_slice(self.challenge);
        out.extend_from_slice(self.session_id);
        out.extend_from_slice(self.nonce);
        put_field_u32(&mut out, self.ciphertext);
        put_field_u16(&mut out, self.signature);
        out
    }

    /// What the sender signs: signature label ‖ SHA-384(T) ‖ nonce ‖ u32 len + ciphertext.
    fn signed_bytes(transcript_hash: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(SIGNATURE_LABEL.len() + 48 + NONCE_LEN + 4 + ciphertext.len());
        out.extend_from_slice(SIGNATURE_LABEL);
        out.extend_from_slice(transcript_hash);
        out.extend_from_slice(nonce);
        put_field_u32(&mut out, ciphertext);
        out
    }
}

/// The session key ID a sealed request names, so the receiver can find the session key pair it
/// was sealed to; `None` for anything that is no version 2 request.
pub fn request_session_id(sealed: &[u8]) -> Option<[u8; SESSION_KEY_ID_LEN]> {
    SealedRequest::parse(sealed)?.session_id.try_into().ok()
}

/// Seals `secret` (and authenticates `aad`) from `sender` to the node whose session public key
/// is `session_public_der` (checked by the caller: signed by the destination Region for the
/// caller's challenge). Returns the sealed request and the key its answer must carry.
pub fn seal_request(
    sender: &TransportKeyPair,
    session_public_der: &[u8],
    aad: &TransportAad<'_>,
    secret: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<(Vec<u8>, AnswerKey), CryptoError> {
    let session = p384_point(session_public_der)?;
    let ephemeral = p384::SecretKey::random(rng);
    let ephemeral_public = p384_spki(&ephemeral.public_key());
    let mut challenge = [0u8; CHALLENGE_LEN];
    rng.fill_bytes(&mut challenge);
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let z = diffie_hellman(ephemeral.to_nonzero_scalar(), session.as_affine());
    drop(ephemeral);
    let transcript = aad.transcript(session_public_der, &ephemeral_public, &challenge);
    let transcript_hash = Sha384::digest(&transcript);
    let (request_key, answer_key) = derive_keys(z.raw_secret_bytes(), &challenge, &transcript_hash);
    let mut ciphertext = Vec::new();
    // Only beyond the AES-GCM limit of 64 GiB; `seal_appending` wipes the buffer then.
    seal_appending(&request_key, &nonce, &transcript, secret, &mut ciphertext).map_err(|_| {
        CryptoError::PlaintextTooLarge {
            actual: secret.len(),
        }
    })?;
    let signature = sender.sign(
        &SealedRequest::signed_bytes(&transcript_hash, &nonce, &ciphertext),
        rng,
    );
    let sealed = SealedRequest {
        ephemeral_public: &ephemeral_public,
        challenge: &challenge,
        session_id: &SessionKeyPair::id_of(session_public_der),
        nonce: &nonce,
        ciphertext: &ciphertext,
        signature: &signature,
    };
    Ok((sealed.to_bytes(), answer_key))
}

/// Opens what [`seal_request`] made, with the session key pair it names and the sender's
/// certified static public key: the signature is checked first, then the ECDH and the seal.
/// Any other sender or session key, any change of any `aad` field and any changed, missing or
/// extra byte gives [`CryptoError::TransportOpenFailed`]; a sender key that is no P-384 SPKI
/// gives [`CryptoError::InvalidPublicKey`] / [`CryptoError::KeySpecMismatch`].
pub fn open_request(
    session: &SessionKeyPair,
    sender_public_der: &[u8],
    aad: &TransportAad<'_>,
    sealed: &[u8],
) -> Result<OpenedRequest, CryptoError> {
    let failed = CryptoError::TransportOpenFailed;
    let parsed = SealedRequest::parse(sealed).ok_or(failed.clone())?;
    if parsed.session_id != session.id() {
        return Err(failed);
    }
    let transcript = aad.transcript(
        session.public_key_der(),
        parsed.ephemeral_public,
        parsed.challenge,
    );
    let transcript_hash = Sha384::digest(&transcript);
    verify_signature(
        sender_public_der,
        &SealedRequest::signed_bytes(&transcript_hash, parsed.nonce, parsed.ciphertext),
        parsed.signature,
        failed.clone(),
    )?;
    let ephemeral = p384_point(parsed.ephemeral_public).map_err(|_| failed.clone())?;
    let z = session.agree(&ephemeral);
    let (request_key, answer_key) = derive_keys(z.expose(), parsed.challenge, &transcript_hash);
    let nonce: &[u8; NONCE_LEN] = parsed.nonce.try_into().map_err(|_| failed.clone())?;
    let secret = open_detached(&request_key, nonce, &transcript, parsed.ciphertext)
        .map(SecretBytes::from)
        .map_err(|_| failed.clone())?;
    Ok(OpenedRequest {
        secret,
        challenge: parsed.challenge.try_into().map_err(|_| failed)?,
        answer_key,
    })
}

/// K_req ‖ K_ans = HKDF-SHA-384(salt = challenge, IKM = Z, info = keys label ‖ SHA-384(T)).
fn derive_keys(
    z: &[u8],
    challenge: &[u8],
    transcript_hash: &[u8],
) -> (Zeroizing<[u8; 32]>, AnswerKey) {
    let mut okm = Zeroizing::new([0u8; 64]);
    let mut info = Vec::with_capacity(KEYS_LABEL.len() + transcript_hash.len());
    info.extend_from_slice(KEYS_LABEL);
    info.extend_from_slice(transcript_hash);
    Hkdf::<Sha384>::new(Some(challenge), z)
        .expand(&info, &mut *okm)
        .expect("invariant: 64 bytes is far below the HKDF-SHA-384 output limit");
    let mut request = Zeroizing::new([0u8; 32]);
    let mut answer = Zeroizing::new([0u8; 32]);
    request.copy_from_slice(&okm[..32]);
    answer.copy_from_slice(&okm[32..]);
    (request, AnswerKey(answer))
}

/// A P-384 public point from SPKI DER.
pub(crate) fn p384_point(der: &[u8]) -> Result<p384::PublicKey, CryptoError> {
    match PublicKey::from_spki_der(AsymmetricSpec::EccNistP384, der)?.inner() {
        PublicInner::P384(key) => Ok(p384::PublicKey::from(key)),
        // from_spki_der decoded it as a P-384 key.
        _ => Err(CryptoError::InvalidPublicKey),
    }
}

/// PKCS#8 DER of a P-384 secret key (shared with the trust anchor).
pub(crate) fn p384_pkcs8(secret: &p384::SecretKey) -> SecretBytes {
    let document = secret
        .to_pkcs8_der()
        .expect("invariant: a p-384 key always encodes as PKCS#8");
    SecretBytes::from_slice(document.as_bytes())
}

/// Reads a P-384 private key in any form [`crate::PrivateKey::from_pkcs8_der`] accepts.
pub(crate) fn p384_from_der(der: &[u8]) -> Result<p384::SecretKey, CryptoError> {
    let parsed = PrivateDer::parse(der)?;
    parsed.check_spec(AsymmetricSpec::EccNistP384)?;
    match parsed {
        PrivateDer::Ec { sec1, .. } => ec_secret_key::<p384::NistP384>(sec1),
        _ => Err(CryptoError::InvalidPrivateKey),
    }
}

/// SPKI DER of a P-384 public key.
pub(crate) fn p384_spki(public: &p384::PublicKey) -> Vec<u8> {
    public
        .to_public_key_der()
        .expect("invariant: a p-384 public key always encodes as SPKI")
        .into_vec()
}

#[cfg(test)]
mod tests;
