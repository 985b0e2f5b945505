//! The key files a node reads at start: its Region's domain key (hex, mode 0600, or an
//! environment variable) and the Region's transport private key (wrapped under the domain
//! key). The launcher writes both (`kmsim-sim`'s `cluster.rs`, through [`wrap_transport_key`]).

use kmsim_crypto::{unwrap_secret, wrap_secret, DomainKey, TransportKeyPair, WrapAad};

use crate::config::RegionConfig;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The topology names no such file.
    #[error("configuration: {0}")]
    Missing(String),
    /// The file (or variable) could not be read or does not hold a valid key.
    #[error("key file: {0}")]
    Invalid(String),
}

/// Reads a Region's domain key: from `KMSIM_DOMAIN_KEY_<REGION>` if set, else from its file.
pub fn load_domain_key(region: &RegionConfig) -> Result<DomainKey, KeyFileError> {
    if let Ok(hex) = std::env::var(region.domain_key_env()) {
        return DomainKey::from_hex(&hex).map_err(|e| KeyFileError::Invalid(e.to_string()));
    }
    let path = &region.domain_key_file;
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeyFileError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "domain key file is readable by group or others; use mode 0600");
            }
        }
    }
    DomainKey::from_hex(&text)
        .map_err(|e| KeyFileError::Invalid(format!("{}: {e}", path.display())))
}

/// The purpose bound into the domain wrap of a Region's transport private key.
pub const TRANSPORT_KEY_PURPOSE: &str = "transport-private-key";

/// Reads a Region's transport private key: hex of its PKCS#8 DER wrapped under the Region's
/// domain key (`kmsim up` writes it; the plaintext key is never on disk).
pub fn load_transport_key(
    domain: &DomainKey,
    region: &RegionConfig,
) -> Result<TransportKeyPair, KeyFileError> {
    let path = region.transport_key_file.as_ref().ok_or_else(|| {
        KeyFileError::Missing(format!("region {} has no transport_key_file", region.name))
    })?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| KeyFileError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let wrapped = hex::decode(text.trim())
        .map_err(|_| KeyFileError::Invalid(format!("{}: not hex", path.display())))?;
    let aad = WrapAad {
        purpose: TRANSPORT_KEY_PURPOSE,
        region: &region.name,
        key_id: "transport",
        version: 0,
    };
    let der = unwrap_secret(domain, &wrapped, &aad).map_err(|_| {
        KeyFileError::Invalid(format!(
            "{} does not unwrap with the Region's domain key",
            path.display()
        ))
    })?;
    TransportKeyPair::from_pkcs8_der(&der)
        .map_err(|e| KeyFileError::Invalid(format!("{}: {e}", path.display())))
}

/// Wraps a transport private key for its key file (the launcher's counterpart of
/// [`load_transport_key`]).
pub fn wrap_transport_key(
    domain: &DomainKey,
    region: &str,
    key: &TransportKeyPair,
    rng: &mut (impl rand::RngCore + rand::CryptoRng),
) -> String {
    let aad = WrapAad {
        purpose: TRANSPORT_KEY_PURPOSE,
        region,
        key_id: "transport",
        version: 0,
    };
    hex::encode(wrap_secret(domain, key.to_pkcs8_der().expose(), &aad, rng))
}
