//! The credentials AWS clients sign with: the topology's `[[credentials]]`, the run-time access
//! keys of IAM users (`kmsim iam create-access-key`, held by [`crate::iam::Iam`] at the version
//! this node applied), and the temporary credentials of STS role sessions, whose session token
//! carries them sealed ([`super::session_token`]); and a cache of SigV4 signing keys so that the four-step HMAC
//! derivation runs once per key, day, Region and service rather than once per request.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kmsim_core::KmsError;
use subtle::ConstantTimeEq;

use super::session_token::SessionKey;
use crate::config::{CredentialEntry, Secret};
use crate::iam::Iam;

/// The SigV4 service name of KMS (the 4th element of the credential scope).
pub const SERVICE: &str = "kms";

/// The SigV4 service name of STS, served on the same endpoint.
pub const STS_SERVICE: &str = "sts";

/// The AWS message of an unknown access key or a wrong session token.
pub const INVALID_TOKEN: &str = "The security token included in the request is invalid.";

/// The AWS message of a session token past its expiry.
pub const EXPIRED_TOKEN: &str = "The security token included in the request is expired";

/// Signing keys kept before the cache is emptied (one per access key × day × Region in use).
const SIGNING_KEY_CACHE_LIMIT: usize = 4096;

/// One set of credentials. `Debug` names the access key and principal only.
#[derive(Clone)]
pub struct Credential {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key (never printed: `Secret`'s `Debug` is redacted).
    secret: Secret,
    /// The principal the requests act as.
    pub principal_arn: String,
    /// The session token the requests must carry, for temporary credentials of the topology.
    session_token: Option<Secret>,
    /// When a role session's credentials expire (epoch ms, the Region's simulated clock).
    pub expires_ms: Option<i64>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("principal_arn", &self.principal_arn)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// The session token requests signed with this key must carry, if any.
    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_ref().map(Secret::expose)
    }
}

/// Every credential of the topology, by access key id, the key that opens session tokens,
/// and the signing-key cache. `Debug` names the access keys and the number of cached signing
/// keys, never a secret or a derived key.
pub struct CredentialStore {
    by_key: HashMap<String, Credential>,
    /// The key of STS session tokens (the topology's `[sts]`), if any.
    sessions: Option<SessionKey>,
    /// The IAM whose run-time access keys are accepted (a node's; the gateway has none).
    iam: Option<Arc<Iam>>,
    /// Derived signing keys by `access key/yyyymmdd/region/service` (the secret is fixed per
    /// access key).
    signing_keys: Mutex<HashMap<String, [u8; 32]>>,
}

impl std::fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.by_key.keys().collect();
        keys.sort();
        let cached = self.signing_keys.lock().map_or(0, |c| c.len());
        f.debug_struct("CredentialStore")
            .field("access_key_ids", &keys)
            .field("cached_signing_keys", &cached)
            .finish()
    }
}

impl CredentialStore {
    /// The store of the topology's credentials.
    pub fn new(entries: &[CredentialEntry]) -> CredentialStore {
        CredentialStore {
            by_key: entries
                .iter()
                .map(|e| {
                    (
                        e.access_key_id.clone(),
                        Credential {
                            access_key_id: e.access_key_id.clone(),
                            secret: e.secret_access_key.clone(),
                            principal_arn: e.principal_arn.clone(),
                            session_token: e.session_token.clone(),
                            expires_ms: None,
                        },
                    )
                })
                .collect(),
            sessions: None,
            iam: None,
            signing_keys: Mutex::new(HashMap::new()),
        }
    }

    /// The same store, also accepting the run-time access keys of `iam` (as it is at each
    /// request: a key deleted there is refused at once).
    pub fn with_iam(mut self, iam: Option<Arc<Iam>>) -> CredentialStore {
        self.iam = iam;
        self
    }

    /// Whether `access_key_id` is a topology credential or a run-time access key in force.
    pub fn knows(&self, access_key_id: &str) -> bool {
        self.by_key.contains_key(access_key_id)
            || self
                .iam
                .as_ref()
                .is_some_and(|i| i.access_key(access_key_id).is_some())
    }

    /// The same store, also accepting the role sessions whose tokens `key` sealed.
    pub fn with_sessions(mut self, key: Option<SessionKey>) -> CredentialStore {
        self.sessions = key;
        self
    }

    /// The key of session tokens, if the topology has one.
    pub fn sessions(&self) -> Option<&SessionKey> {
        self.sessions.as_ref()
    }

    /// The credential of an access key id of the topology.
    pub fn get(&self, access_key_id: &str) -> Option<&Credential> {
        self.by_key.get(access_key_id)
    }

    /// The credential a request claims with its access key and session token (`token`, the
    /// `X-Amz-Security-Token` value): a topology credential, whose session token (if it has
    /// one) must be the one sent and which refuses any other; else a run-time access key of the
    /// IAM in force, sent with no token; else a role session, whose token must open for this
    /// access key. Anything else is `UnrecognizedClientException`. Expiry
    /// is checked later, against the Region's clock.
    pub fn resolve(
        &self,
        access_key_id: &str,
        token: Option<&[u8]>,
    ) -> Result<Cow<'_, Credential>, KmsError> {
        let invalid = || KmsError::UnrecognizedClient(INVALID_TOKEN.into());
        if let Some(cred) = self.by_key.get(access_key_id) {
            let ok = match (cred.session_token(), token) {
                (None, None) => true,
                (Some(want), Some(got)) => bool::from(want.as_bytes().ct_eq(got)),
                _ => false,
            };
            return if ok {
                Ok(Cow::Borrowed(cred))
            } else {
                Err(invalid())
            };
        }
        if let Some(key) = self.iam.as_ref().and_then(|i| i.access_key(access_key_id)) {
            // Long-term keys carry no session token.
            if token.is_some() {
                return Err(invalid());
            }
            return Ok(Cow::Owned(Credential {
                access_key_id: access_key_id.to_string(),
                secret: key.secret,
                principal_arn: key.principal_arn,
                session_token: None,
                expires_ms: None,
            }));
        }
        let (Some(key), Some(token)) = (&self.sessions, token) else {
            return Err(invalid());
        };
        let session = key.open(token, access_key_id).ok_or_else(invalid)?;
        let principal_arn = session.principal_arn().ok_or_else(invalid)?;
        Ok(Cow::Owned(Credential {
            access_key_id: access_key_id.to_string(),
            secret: session.secret_access_key,
            principal_arn,
            session_token: None,
            expires_ms: Some(session.expires_ms),
        }))
    }

    /// The SigV4 signing key of `cred` for one day (`yyyymmdd`, whose first second is
    /// `day_start_secs`), Region and service, derived with
    /// `aws_sigv4::sign::v4::generate_signing_key` on first use and cached.
    pub fn signing_key(
        &self,
        cred: &Credential,
        date: &str,
        day_start_secs: i64,
        region: &str,
        service: &str,
    ) -> [u8; 32] {
        let cache_key = format!("{}/{date}/{region}/{service}", cred.access_key_id);
        if let Some(k) = self
            .signing_keys
            .lock()
            .expect("invariant: lock not poisoned")
            .get(&cache_key)
        {
            return *k;
        }
        let day = UNIX_EPOCH + Duration::from_secs(u64::try_from(day_start_secs).unwrap_or(0));
        let derived = derive(cred.secret.expose(), day, region, service);
        let mut cache = self
            .signing_keys
            .lock()
            .expect("invariant: lock not poisoned");
        if cache.len() >= SIGNING_KEY_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(cache_key, derived);
        derived
    }
}

/// The signing key of `secret` for the day of `day`, `region` and `service`.
fn derive(secret: &str, day: SystemTime, region: &str, service: &str) -> [u8; 32] {
    let key = aws_sigv4::sign::v4::generate_signing_key(secret, day, region, service);
    let mut out = [0u8; 32];
    out.copy_from_slice(key.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> CredentialStore {
        CredentialStore::new(&[CredentialEntry {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            principal_arn: "arn:aws:iam::111122223333:root".into(),
            session_token: None,
        }])
    }

    #[test]
    fn signing_key_matches_the_aws_example_and_is_cached() {
        // AWS's documented example: secret wJalr…, 20150830, us-east-1, service iam gives
        // c4afb1cc…; for service kms we check against a fresh derivation instead.
        let s = store();
        let cred = s.get("AKIDEXAMPLE").expect("known");
        let day = 1_440_892_800; // 2015-08-30T00:00:00Z
        let k1 = s.signing_key(cred, "20150830", day, "us-east-1", SERVICE);
        let k2 = s.signing_key(cred, "20150830", day, "us-east-1", SERVICE);
        assert_eq!(k1, k2);
        assert_eq!(
            k1,
            derive(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                UNIX_EPOCH + Duration::from_secs(day as u64),
                "us-east-1",
                SERVICE
            )
        );
        assert_ne!(
            k1,
            s.signing_key(cred, "20150830", day, "eu-west-1", SERVICE)
        );
        assert_ne!(
            k1,
            s.signing_key(cred, "20150830", day, "us-east-1", STS_SERVICE)
        );
        assert!(s.get("nobody").is_none());
    }

    #[test]
    fn debug_output_holds_no_secret_token_or_derived_key() {
        let s = CredentialStore::new(&[
            CredentialEntry {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
                principal_arn: "arn:aws:iam::111122223333:root".into(),
                session_token: None,
            },
            CredentialEntry {
                access_key_id: "ASIATEMP".into(),
                secret_access_key: Secret::new("temporary-secret-value"),
                principal_arn: "arn:aws:iam::111122223333:role/r".into(),
                session_token: Some(Secret::new("session-token-value")),
            },
        ]);
        // Fill the cache first: the derived keys are secrets too.
        let mut derived = Vec::new();
        for akid in ["AKIDEXAMPLE", "ASIATEMP"] {
            let cred = s.get(akid).expect("known");
            for region in ["us-east-1", "eu-west-1"] {
                derived.push(s.signing_key(cred, "20150830", 1_440_892_800, region, SERVICE));
            }
        }
        let printed = [
            format!("{s:?}"),
            format!("{s:#?}"),
            format!("{:?}", s.get("ASIATEMP").expect("known")),
        ];
        let mut secrets: Vec<Vec<u8>> = vec![
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_vec(),
            b"temporary-secret-value".to_vec(),
            b"session-token-value".to_vec(),
        ];
        for k in &derived {
            secrets.push(k.to_vec());
            secrets.push(hex::encode(k).into_bytes());
            secrets.push(hex::encode_upper(k).into_bytes());
            // The decimal form `[u8; 32]`'s own `Debug` would print.
            secrets.push(format!("{k:?}").into_bytes());
        }
        for text in &printed {
            assert!(text.contains("cached_signing_keys: 4") || text.contains("Credential"));
            for secret in &secrets {
                assert!(
                    !text
                        .as_bytes()
                        .windows(secret.len())
                        .any(|w| w == &secret[..]),
                    "{text} leaks a secret"
                );
            }
        }
    }
}
