//! Tokens a Region hands out and later takes back: grant tokens (CreateGrant) and import
//! tokens (GetParametersForImport). Both are sealed under the Region's domain key
//! (AES-256-GCM, `MaterialCache::seal`), so any node of the Region can check them, no other
//! Region or client can forge or alter them, and nothing needs storing in the replicated state.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use kmsim_core::grant::is_grant_id;
use kmsim_core::ids::KeyId;
use kmsim_core::key::WrappingAlgorithm;
use kmsim_core::KmsError;
use kmsim_crypto::{ImportWrappingKey, SecretBytes};

use crate::entropy::Entropy;
use crate::material::MaterialCache;

/// Prefix of every grant token of this format.
const GRANT_TOKEN_PREFIX: &str = "kmsim-gt1.";
/// Domain-wrap purpose of grant tokens.
const GRANT_PURPOSE: &str = "grant-token";
/// Domain-wrap purpose of import tokens.
const IMPORT_PURPOSE: &str = "import-token";
/// First bytes of every import token of this format.
const IMPORT_TOKEN_MAGIC: &[u8] = b"kmsim-it1";

/// Makes a grant token for a grant of `key_id`: `kmsim-gt1.` ‖ base64url(key-id length ‖ key ID
/// ‖ grant ID ‖ seal(∅) bound to both).
pub fn grant_token(
    materials: &MaterialCache,
    key_id: &KeyId,
    grant_id: &str,
    rng: &Entropy,
) -> String {
    let owner = format!("{key_id}/{grant_id}");
    let sealed = materials.seal(GRANT_PURPOSE, &owner, 0, b"", rng);
    let mut raw = Vec::with_capacity(1 + key_id.as_str().len() + grant_id.len() + sealed.len());
    raw.push(key_id.as_str().len() as u8);
    raw.extend_from_slice(key_id.as_str().as_bytes());
    raw.extend_from_slice(grant_id.as_bytes());
    raw.extend_from_slice(&sealed);
    format!("{GRANT_TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
}

/// Checks a grant token and returns the (key, grant ID) it names.
pub fn open_grant_token(
    materials: &MaterialCache,
    token: &str,
) -> Result<(KeyId, String), KmsError> {
    let invalid = || KmsError::InvalidGrantToken("The grant token is not valid.".into());
    let body = token.strip_prefix(GRANT_TOKEN_PREFIX).ok_or_else(invalid)?;
    let raw = URL_SAFE_NO_PAD.decode(body).map_err(|_| invalid())?;
    let (&len, rest) = raw.split_first().ok_or_else(invalid)?;
    let len = usize::from(len);
    if rest.len() < len + 64 {
        return Err(invalid());
    }
    let (id, rest) = rest.split_at(len);
    let (grant, sealed) = rest.split_at(64);
    let key_id = std::str::from_utf8(id)
        .ok()
        .and_then(KeyId::parse)
        .ok_or_else(invalid)?;
    let grant_id = std::str::from_utf8(grant).map_err(|_| invalid())?;
    if !is_grant_id(grant_id) {
        return Err(invalid());
    }
    materials
        .open(GRANT_PURPOSE, &format!("{key_id}/{grant_id}"), 0, sealed)
        .ok_or_else(invalid)?;
    Ok((key_id, grant_id.to_string()))
}

/// What an import token says.
pub struct ImportToken {
    /// The key it was issued for.
    pub key_id: KeyId,
    /// `ParametersValidTo`, ms.
    pub valid_to_ms: i64,
    /// The wrapping algorithm the caller chose.
    pub algorithm: WrappingAlgorithm,
    /// The RSA wrapping key (private half), unsealed.
    pub wrapping_key: ImportWrappingKey,
}

fn import_header(key_id: &KeyId, valid_to_ms: i64, algorithm: WrappingAlgorithm) -> String {
    format!("{key_id}|{valid_to_ms}|{algorithm}")
}

/// Makes an import token: magic ‖ u16 header length ‖ header (`key|valid_to|algorithm`) ‖
/// seal(wrapping key PKCS#8) bound to the header.
pub fn import_token(
    materials: &MaterialCache,
    key_id: &KeyId,
    valid_to_ms: i64,
    algorithm: WrappingAlgorithm,
    wrapping_key: &ImportWrappingKey,
    rng: &Entropy,
) -> Vec<u8> {
    let header = import_header(key_id, valid_to_ms, algorithm);
    let der: SecretBytes = wrapping_key.to_pkcs8_der();
    let sealed = materials.seal(IMPORT_PURPOSE, &header, 0, der.expose(), rng);
    let mut out = Vec::with_capacity(IMPORT_TOKEN_MAGIC.len() + 2 + header.len() + sealed.len());
    out.extend_from_slice(IMPORT_TOKEN_MAGIC);
    out.extend_from_slice(&(header.len() as u16).to_be_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&sealed);
    out
}

/// Checks an import token (made by this Region, unaltered); the caller checks key and expiry.
pub fn open_import_token(materials: &MaterialCache, token: &[u8]) -> Result<ImportToken, KmsError> {
    let invalid = || KmsError::InvalidImportToken("The import token is not valid.".into());
    let rest = token.strip_prefix(IMPORT_TOKEN_MAGIC).ok_or_else(invalid)?;
    if rest.len() < 2 {
        return Err(invalid());
    }
    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    let rest = &rest[2..];
    if rest.len() < len {
        return Err(invalid());
    }
    let (header, sealed) = rest.split_at(len);
    let header = std::str::from_utf8(header).map_err(|_| invalid())?;
    let der = materials
        .open(IMPORT_PURPOSE, header, 0, sealed)
        .ok_or_else(invalid)?;
    let mut parts = header.split('|');
    let (Some(key), Some(valid_to), Some(alg), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    Ok(ImportToken {
        key_id: KeyId::parse(key).ok_or_else(invalid)?,
        valid_to_ms: valid_to.parse().map_err(|_| invalid())?,
        algorithm: WrappingAlgorithm::parse(alg).map_err(|_| invalid())?,
        wrapping_key: ImportWrappingKey::from_pkcs8_der(der.expose()).map_err(|_| invalid())?,
    })
}
