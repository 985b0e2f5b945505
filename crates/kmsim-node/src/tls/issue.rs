//! Making certificates (rcgen): the cluster CA and the certificates it signs for nodes, the
//! operator, the gateway and named KMS clients. Used by the launcher (`kmsim up`) and tests;
//! a node only reads the files.

use std::net::IpAddr;
use std::path::PathBuf;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use super::identity::Identity;
use super::TlsError;
use crate::config::Topology;

/// A certificate and its private key, both PEM. The key is a secret: write it 0600.
pub struct Issued {
    /// The certificate (PEM).
    pub cert_pem: String,
    /// Its PKCS#8 private key (PEM).
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Issued { key: <redacted> }")
    }
}

/// A certificate authority that signs the cluster's certificates (ECDSA P-256).
pub struct ClusterCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

/// The subject common name of the CAs the launcher makes.
pub const CA_NAME: &str = "kmsim cluster CA";

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

impl ClusterCa {
    /// A new CA whose subject common name is `name`.
    pub fn generate(name: &str) -> Result<ClusterCa, TlsError> {
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let params = ca_params(name);
        let cert = params.self_signed(&key).map_err(rcgen_error)?;
        Ok(ClusterCa {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
        })
    }

    /// A CA the launcher made ([`CA_NAME`]) from its certificate and key files, to issue more
    /// certificates (a client, a node added later).
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<ClusterCa, TlsError> {
        let key = KeyPair::from_pem(key_pem).map_err(rcgen_error)?;
        Ok(ClusterCa {
            issuer: Issuer::new(ca_params(CA_NAME), key),
            cert_pem: cert_pem.to_string(),
        })
    }

    /// The CA certificate (PEM): what every process trusts.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key (PEM), to keep (0600) for issuing more certificates later.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// A certificate for `identity` (its SAN URI), valid as a TLS server for each of `hosts`
    /// (IP addresses and DNS names, as SANs) and as a TLS client.
    pub fn issue(&self, identity: &Identity, hosts: &[String]) -> Result<Issued, TlsError> {
        let key = KeyPair::generate().map_err(rcgen_error)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, identity.uri());
        params.distinguished_name = dn;
        let uri = identity.uri().try_into().map_err(rcgen_error)?;
        params.subject_alt_names.push(SanType::URI(uri));
        for host in hosts {
            let san = match host.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(host.clone().try_into().map_err(rcgen_error)?),
            };
            if !params.subject_alt_names.contains(&san) {
                params.subject_alt_names.push(san);
            }
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &self.issuer).map_err(rcgen_error)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Every file of a cluster's `[tls]` directory, as (path, PEM text) with the paths of the
/// topology's `[tls] dir` (relative to the topology file when it is): the CA (its key
/// included, for issuing more later), a certificate and key per node (SANs: its listen,
/// advertise and AWS addresses, `localhost`, and its identity), the operator's
/// (`kmsim:operator`) and the gateway's (`kmsim:gateway`, its listen address). Every
/// file is a secret or sits beside one: write each 0600. Empty without `[tls]`.
pub fn cluster_files(topology: &Topology) -> Result<Vec<(PathBuf, String)>, TlsError> {
    let Some(tls) = &topology.tls else {
        return Ok(Vec::new());
    };
    let ca = ClusterCa::generate(CA_NAME)?;
    let mut files = vec![
        (tls.ca_cert(), ca.certificate_pem().to_string()),
        (tls.ca_key(), ca.key_pem()),
    ];
    let mut issue = |identity: Identity, hosts: Vec<String>, paths: (PathBuf, PathBuf)| {
        let issued = ca.issue(&identity, &hosts)?;
        files.push((paths.0, issued.cert_pem));
        files.push((paths.1, issued.key_pem));
        Ok::<_, TlsError>(())
    };
    for r in &topology.regions {
        for n in &r.nodes {
            let mut hosts = vec![host_of(&n.listen.to_string()), host_of(&n.advertise_addr())];
            hosts.extend(n.aws_listen.map(|a| a.ip().to_string()));
            hosts.extend(n.aws_advertise_addr().map(|a| host_of(&a)));
            hosts.push("localhost".into());
            let identity = Identity::Node {
                partition: topology.region_partition(r),
                region: r.name.clone(),
                id: n.id,
            };
            issue(identity, hosts, tls.node_files(&r.name, n.id))?;
        }
    }
    issue(Identity::Operator, Vec::new(), tls.operator_files())?;
    let mut gateway_hosts = vec!["localhost".to_string()];
    gateway_hosts.extend(
        topology
            .endpoint
            .as_ref()
            .map(|e| e.listen.ip().to_string()),
    );
    issue(Identity::Gateway, gateway_hosts, tls.gateway_files())?;
    Ok(files)
}

fn rcgen_error(e: rcgen::Error) -> TlsError {
    TlsError::Certificate(e.to_string())
}

/// The host part of an address (`host:port`, `[v6]:port`, or a bare host), for a SAN.
pub fn host_of(addr: &str) -> String {
    if let Ok(sa) = addr.parse::<std::net::SocketAddr>() {
        return sa.ip().to_string();
    }
    match addr.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        _ => addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;

    #[test]
    fn an_issued_certificate_carries_its_identity() {
        let ca = ClusterCa::generate("test CA").unwrap();
        let id = Identity::Node {
            partition: "aws".into(),
            region: "us-east-1".into(),
            id: 2,
        };
        let issued = ca
            .issue(&id, &["127.0.0.1".into(), "node-2.example".into()])
            .unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        assert_eq!(Identity::from_certificate_der(&der), Ok(id));
        assert!(!format!("{issued:?}").contains("PRIVATE"));
    }

    #[test]
    fn hosts_are_taken_from_addresses() {
        assert_eq!(host_of("127.0.0.1:4601"), "127.0.0.1");
        assert_eq!(host_of("[::1]:4601"), "::1");
        assert_eq!(host_of("node-1.kmsim:4601"), "node-1.kmsim");
        assert_eq!(host_of("node-1.kmsim"), "node-1.kmsim");
    }
}
