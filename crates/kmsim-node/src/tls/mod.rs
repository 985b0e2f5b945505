//! Transport security (docs/ARCHITECTURE.md "Transport security"): mutual TLS on every gRPC
//! link, admission by certificate identity per service, and HTTPS for the AWS endpoints on
//! request.
//!
//! The topology's `[tls]` table turns it on and names a directory of PEM files, by
//! convention (relative paths are relative to the topology file):
//!
//! ```text
//! <dir>/ca.crt                     the CA certificate every process trusts
//! <dir>/ca.key                     the CA's private key (the launcher keeps it; no process reads it)
//! <dir>/node-<region>-<id>.crt     a node's certificate (server and client), and its .key
//! <dir>/operator.crt               the operator's client certificate (CLI, tests, bench), and .key
//! <dir>/gateway.crt                the gateway's certificate (HTTPS, and relaying to nodes), and .key
//! ```
//!
//! A certificate's identity is its `kmsim:` SAN URI ([`identity`]). Without a `[tls]` table
//! every link is plaintext and every service admits anyone (hand-written single-node
//! topologies); `kmsim up` always writes one.

pub mod admit;
pub mod identity;
pub mod issue;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, ServerTlsConfig};

pub use identity::{Identity, Local, Refusal, Service, Unnamed};

/// How long a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors setting up transport security.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A certificate or key is unusable.
    #[error("{0}")]
    Certificate(String),
}

/// The topology's `[tls]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// Directory of the PEM files, named by the convention of this module's docs (relative
    /// to the topology file). `kmsim up` writes `keys/tls`.
    pub dir: PathBuf,
    /// Serve the AWS JSON endpoints (the gateway and every node's) over HTTPS with their
    /// certificates from the CA (`kmsim up --aws-tls`; default false: plain HTTP).
    #[serde(default)]
    pub aws_https: bool,
    /// The principal the operator certificate acts as on the gRPC KMS face (default: the
    /// account's root, `arn:<partition>:iam::<account>:root`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_principal: Option<String>,
    /// More gRPC KMS clients: a certificate whose identity is `kmsim:client/<name>` acts as
    /// `principal_arn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<TlsClient>,
}

/// One gRPC KMS client certificate and the principal it acts as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsClient {
    /// The `<name>` of its `kmsim:client/<name>` identity.
    pub name: String,
    /// The principal its calls act as, e.g. `arn:aws:iam::111122223333:role/app`.
    pub principal_arn: String,
}

impl TlsSettings {
    /// Checks names and ARNs (called by the topology's check).
    pub fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.clients {
            if Identity::parse(&Identity::Client(c.name.clone()).uri()).is_none() {
                return Err(format!(
                    "tls client name '{}' must be 1 to 64 of A-Z a-z 0-9 . _ -",
                    c.name
                ));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(format!("tls client {} is listed twice", c.name));
            }
            if !c.principal_arn.starts_with("arn:") {
                return Err(format!(
                    "tls client {}: principal_arn '{}' is not an ARN",
                    c.name, c.principal_arn
                ));
            }
        }
        if let Some(p) = self
            .operator_principal
            .as_ref()
            .filter(|p| !p.starts_with("arn:"))
        {
            return Err(format!("tls operator_principal '{p}' is not an ARN"));
        }
        Ok(())
    }

    /// `<dir>/ca.crt`
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// `<dir>/ca.key`
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// `<dir>/node-<region>-<id>.crt` and `.key`
    pub fn node_files(&self, region: &str, id: u64) -> (PathBuf, PathBuf) {
        self.pair(&format!("node-{region}-{id}"))
    }

    /// `<dir>/operator.crt` and `.key`
    pub fn operator_files(&self) -> (PathBuf, PathBuf) {
        self.pair("operator")
    }

    /// `<dir>/gateway.crt` and `.key`
    pub fn gateway_files(&self) -> (PathBuf, PathBuf) {
        self.pair("gateway")
    }

    fn pair(&self, stem: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.join(format!("{stem}.crt")),
            self.dir.join(format!("{stem}.key")),
        )
    }

    /// The CA certificate (PEM).
    pub fn read_ca(&self) -> Result<Vec<u8>, TlsError> {
        read(&self.ca_cert())
    }

    /// A certificate and key pair (PEM) as files.
    pub fn read_pair(&self, files: &(PathBuf, PathBuf)) -> Result<KeyedCert, TlsError> {
        Ok(KeyedCert {
            cert_pem: read(&files.0)?,
            key_pem: read(&files.1)?,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A certificate chain and its private key, PEM, as read from files. No `Debug`: the key is a
/// secret.
#[derive(Clone)]
pub struct KeyedCert {
    /// The certificate (chain), PEM.
    pub cert_pem: Vec<u8>,
    /// The private key, PEM.
    pub key_pem: Vec<u8>,
}

impl KeyedCert {
    fn tonic_identity(&self) -> tonic::transport::Identity {
        tonic::transport::Identity::from_pem(&self.cert_pem, &self.key_pem)
    }
}

/// How a process dials gRPC peers: in plaintext, or with TLS as one identity (its certificate)
/// trusting the cluster CA. Built once from the topology and passed where needed; cheap to
/// clone. Channels made from it connect lazily and are meant to be kept and reused.
#[derive(Clone)]
pub struct Dialer {
    tls: Option<Arc<ClientTlsConfig>>,
}

impl Dialer {
    /// Plaintext (a topology without `[tls]`).
    pub fn plain() -> Dialer {
        Dialer { tls: None }
    }

    /// TLS as `me`, trusting the CA certificate(s) `ca_pem`.
    pub fn tls(ca_pem: &[u8], me: &KeyedCert) -> Dialer {
        let config = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca_pem))
            .identity(me.tonic_identity())
            .timeout(HANDSHAKE_TIMEOUT);
        Dialer {
            tls: Some(Arc::new(config)),
        }
    }

    /// The dialer of a topology's node: its node certificate, or plaintext without `[tls]`.
    pub fn for_node(tls: Option<&TlsSettings>, region: &str, id: u64) -> Result<Dialer, TlsError> {
        Dialer::holding(tls, |t| t.node_files(region, id))
    }

    /// The operator's dialer (CLI, tests, bench): the operator certificate, or plaintext
    /// without `[tls]`.
    pub fn operator(tls: Option<&TlsSettings>) -> Result<Dialer, TlsError> {
        Dialer::holding(tls, TlsSettings::operator_files)
    }

    /// The gateway's dialer (it relays AWS JSON requests to nodes): the gateway certificate,
    /// or plaintext without `[tls]`.
    pub fn gateway(tls: Option<&TlsSettings>) -> Result<Dialer, TlsError> {
        Dialer::holding(tls, TlsSettings::gateway_files)
    }

    /// TLS with the certificate `files` picks from the `[tls]` table, or plaintext without one.
    fn holding(
        tls: Option<&TlsSettings>,
        files: impl FnOnce(&TlsSettings) -> (PathBuf, PathBuf),
    ) -> Result<Dialer, TlsError> {
        match tls {
            None => Ok(Dialer::plain()),
            Some(t) => Ok(Dialer::tls(&t.read_ca()?, &t.read_pair(&files(t))?)),
        }
    }

    /// Whether this dialer uses TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// An endpoint for `addr` (`host:port`): `https://` with this dialer's TLS settings, or
    /// `http://`. The caller adds its timeouts.
    pub fn endpoint(&self, addr: &str) -> Result<Endpoint, tonic::transport::Error> {
        match &self.tls {
            None => Endpoint::from_shared(format!("http://{addr}")),
            Some(tls) => Endpoint::from_shared(format!("https://{addr}"))?
                .tls_config(ClientTlsConfig::clone(tls)),
        }
    }

    /// An endpoint that connects to `addr` and, with TLS, verifies the server's certificate
    /// for `server_name`: for a node reached at an address its certificate does not name
    /// (a container's address on its network, where the certificate names the container).
    pub fn endpoint_to(
        &self,
        addr: &str,
        server_name: &str,
    ) -> Result<Endpoint, tonic::transport::Error> {
        match &self.tls {
            None => Endpoint::from_shared(format!("http://{addr}")),
            Some(tls) => Endpoint::from_shared(format!("https://{addr}"))?
                .tls_config(ClientTlsConfig::clone(tls).domain_name(server_name)),
        }
    }
}

/// The TLS settings of a node's gRPC server: its certificate, and client certificates
/// required, signed by the CA (anything else fails the handshake, before any handler).
pub fn server_config(
    tls: &TlsSettings,
    region: &str,
    id: u64,
) -> Result<ServerTlsConfig, TlsError> {
    let me = tls.read_pair(&tls.node_files(region, id))?;
    Ok(ServerTlsConfig::new()
        .identity(me.tonic_identity())
        .client_ca_root(Certificate::from_pem(tls.read_ca()?))
        .timeout(HANDSHAKE_TIMEOUT))
}

/// A rustls server configuration for an HTTPS AWS endpoint: `cert` (no client certificates
/// asked; AWS clients authenticate with SigV4).
pub fn https_acceptor(cert: &KeyedCert) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |e: &dyn std::fmt::Display| TlsError::Certificate(e.to_string());
    let chain = CertificateDer::pem_slice_iter(&cert.cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    let key = PrivateKeyDer::from_pem_slice(&cert.key_pem).map_err(|e| bad(&e))?;
    // The process's default provider, as tonic uses: ring (the only one compiled in).
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| bad(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A rustls client configuration trusting only the CA certificate(s) `ca_pem` (HTTPS to the
/// AWS endpoints).
pub fn https_client_config(ca_pem: &[u8]) -> Result<tokio_rustls::rustls::ClientConfig, TlsError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let bad = |e: &dyn std::fmt::Display| TlsError::Certificate(e.to_string());
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(c.map_err(|e| bad(&e))?).map_err(|e| bad(&e))?;
    }
    Ok(tokio_rustls::rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}
