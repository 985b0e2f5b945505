//! STS session tokens: the temporary credentials `AssumeRole` hands out, made stateless so that
//! every node of every Region (and the gateway) accepts them with nothing replicated.
//!
//! A token is `kmsim-st1.` ‖ base64url(no padding) of a domain wrap (`kmsim_crypto::wrap_secret`:
//! format byte ‖ 12-byte nonce ‖ AES-256-GCM ciphertext and tag) of the JSON of a [`Session`]
//! (role ARN, session name, expiry, and the session's secret access key), under the
//! cluster's STS key (the topology's `[sts] key_file`, the same file for every process). The
//! associated data binds the purpose and the session's access key ID, so a token presented
//! with another access key, altered in any bit, or sealed under another key does not open. The
//! secret access key travels only inside the sealed token (and in the `AssumeRole` answer to
//! the caller): a node derives the SigV4 signing key from it after opening the token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use kmsim_crypto::{unwrap_secret, wrap_secret, DomainKey, WrapAad};

use crate::config::Secret;
use crate::key_files::KeyFileError;

/// Prefix of every session token of this format.
pub const TOKEN_PREFIX: &str = "kmsim-st1.";

/// Domain-wrap purpose of session tokens.
const PURPOSE: &str = "sts-session-token";

/// Domain-wrap purpose of the sealed secrets of run-time access keys (`crate::iam_changes`).
const ACCESS_KEY_PURPOSE: &str = "iam-access-key";

/// The longest token accepted, in bytes (a token of the longest role ARN and session name is
/// about 3 KiB); anything longer is refused before it is decoded.
pub const MAX_TOKEN_BYTES: usize = 8 << 10;

/// The environment variable that, when set (hex), replaces the `[sts] key_file`.
pub const STS_KEY_ENV: &str = "KMSIM_STS_KEY";

/// What a session token says. `Debug` leaves the secret out (`Secret` is redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The role assumed: `arn:<partition>:iam::<account>:role/<path/>name`.
    pub role_arn: String,
    /// The `RoleSessionName` given to `AssumeRole`.
    pub session_name: String,
    /// When the credentials stop working, epoch milliseconds of the Region's simulated clock.
    pub expires_ms: i64,
    /// The session's secret access key.
    pub secret_access_key: Secret,
}

impl Session {
    /// The session's principal: `arn:<partition>:sts::<account>:assumed-role/<role name>/<session>`
    /// (`None` when the role ARN is not an IAM role ARN, which a sealed token never holds).
    pub fn principal_arn(&self) -> Option<String> {
        let parts: Vec<&str> = self.role_arn.splitn(6, ':').collect();
        let [_, partition, "iam", "", account, resource] = parts[..] else {
            return None;
        };
        let name = resource.strip_prefix("role/")?.rsplit('/').next()?;
        Some(format!(
            "arn:{partition}:sts::{account}:assumed-role/{name}/{}",
            self.session_name
        ))
    }
}

/// The key session tokens are sealed under. `Debug` is redacted.
pub struct SessionKey(DomainKey);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    /// A key of 32 bytes.
    pub fn new(key: DomainKey) -> SessionKey {
        SessionKey(key)
    }

    /// The topology's key: `KMSIM_STS_KEY` (hex) if set, else the `[sts] key_file`; `None`
    /// without `[sts]`.
    pub fn load(
        sts: Option<&crate::config::StsSettings>,
    ) -> Result<Option<SessionKey>, KeyFileError> {
        let Some(sts) = sts else {
            return Ok(None);
        };
        let hex = match std::env::var(STS_KEY_ENV) {
            Ok(v) => v,
            Err(_) => std::fs::read_to_string(&sts.key_file).map_err(|e| {
                KeyFileError::Invalid(format!("cannot read {}: {e}", sts.key_file.display()))
            })?,
        };
        DomainKey::from_hex(hex.trim())
            .map(|k| Some(SessionKey(k)))
            .map_err(|e| KeyFileError::Invalid(format!("sts key: {e}")))
    }

    fn aad(access_key_id: &str) -> WrapAad<'_> {
        WrapAad {
            purpose: PURPOSE,
            region: "",
            key_id: access_key_id,
            version: 1,
        }
    }

    /// The token of `session`, whose credentials use `access_key_id`.
    pub fn seal(
        &self,
        session: &Session,
        access_key_id: &str,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
    ) -> String {
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(session).expect("invariant: a session always serializes"),
        );
        let sealed = wrap_secret(&self.0, &json, &Self::aad(access_key_id), rng);
        format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed))
    }

    fn access_key_aad(access_key_id: &str) -> WrapAad<'_> {
        WrapAad {
            purpose: ACCESS_KEY_PURPOSE,
            region: "",
            key_id: access_key_id,
            version: 1,
        }
    }

    /// Seals the secret of a run-time access key (`kmsim iam create-access-key`) before it
    /// enters the replicated IAM document: AES-256-GCM under this key, the access key ID bound
    /// as associated data (a sealed secret moved to another key ID does not open).
    pub fn seal_access_key(
        &self,
        access_key_id: &str,
        secret: &Secret,
        rng: &mut (impl rand::RngCore + rand::CryptoRng),
    ) -> Vec<u8> {
        wrap_secret(
            &self.0,
            secret.expose().as_bytes(),
            &Self::access_key_aad(access_key_id),
            rng,
        )
    }

    /// The secret [`SessionKey::seal_access_key`] sealed for `access_key_id`; `None` for
    /// anything else. Never panics, whatever the bytes.
    pub fn open_access_key(&self, access_key_id: &str, sealed: &[u8]) -> Option<Secret> {
        let plain = unwrap_secret(&self.0, sealed, &Self::access_key_aad(access_key_id)).ok()?;
        let text = std::str::from_utf8(&plain).ok()?;
        Some(Secret::new(text))
    }

    /// The session a token (as sent in `X-Amz-Security-Token`) seals for `access_key_id`;
    /// `None` for anything else: not this format, too long, altered, sealed under another key
    /// or for another access key. Never panics, whatever the bytes.
    pub fn open(&self, token: &[u8], access_key_id: &str) -> Option<Session> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let body = token.strip_prefix(TOKEN_PREFIX.as_bytes())?;
        let sealed = URL_SAFE_NO_PAD.decode(body).ok()?;
        let json = unwrap_secret(&self.0, &sealed, &Self::aad(access_key_id)).ok()?;
        let session: Session = serde_json::from_slice(&json).ok()?;
        session.principal_arn()?;
        Some(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(byte: u8) -> SessionKey {
        SessionKey::new(DomainKey::from_bytes(&[byte; 32]).expect("32 bytes"))
    }

    fn session() -> Session {
        Session {
            role_arn: "arn:aws:iam::111122223333:role/ops/Reader".into(),
            session_name: "worker-1".into(),
            expires_ms: 1_800_000_000_000,
            secret_access_key: Secret::new("sess-secret-value-0123456789"),
        }
    }

    #[test]
    fn a_token_opens_for_its_access_key_only_and_names_the_session() {
        let k = key(7);
        let token = k.seal(&session(), "ASIAEXAMPLE", &mut rand::thread_rng());
        assert!(token.starts_with(TOKEN_PREFIX));
        assert!(!token.contains("sess-secret-value"), "the secret is sealed");
        let opened = k.open(token.as_bytes(), "ASIAEXAMPLE").expect("opens");
        assert_eq!(opened, session());
        assert_eq!(
            opened.principal_arn().as_deref(),
            Some("arn:aws:sts::111122223333:assumed-role/Reader/worker-1")
        );
        assert!(k.open(token.as_bytes(), "ASIAOTHER").is_none());
        assert!(key(8).open(token.as_bytes(), "ASIAEXAMPLE").is_none());
        assert!(k.open(b"", "ASIAEXAMPLE").is_none());
        assert!(k.open(TOKEN_PREFIX.as_bytes(), "ASIAEXAMPLE").is_none());
        assert!(!format!("{opened:?}{k:?}").contains("sess-secret-value"));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_open_nor_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let k = key(7);
            prop_assert!(k.open(&bytes, "ASIAEXAMPLE").is_none());
            let mut prefixed = TOKEN_PREFIX.as_bytes().to_vec();
            prefixed.extend_from_slice(&bytes);
            prop_assert!(k.open(&prefixed, "ASIAEXAMPLE").is_none());
        }

        #[test]
        fn a_flipped_bit_is_refused(index in any::<prop::sample::Index>(), bit in 0u8..8) {
            let k = key(7);
            let token = k.seal(&session(), "ASIAEXAMPLE", &mut rand::thread_rng());
            let mut bytes = token.into_bytes();
            let i = index.index(bytes.len());
            bytes[i] ^= 1 << bit;
            prop_assert!(k.open(&bytes, "ASIAEXAMPLE").is_none());
        }
    }
}
