//! Who is calling: the kmsim identity a certificate carries, and which identities each gRPC
//! service admits.
//!
//! A certificate names its holder with exactly one subject-alternative-name URI of the
//! `kmsim:` scheme (the other SANs, host names and addresses, are for TLS name checks only):
//!
//! | URI | holder |
//! |---|---|
//! | `kmsim:node/<partition>/<region>/<id>` | a node: its partition, Region and Raft node id |
//! | `kmsim:operator` | the operator (the CLI, the test harness, `kmsim bench`) |
//! | `kmsim:gateway` | the gateway (`kmsim gateway`), which relays AWS JSON requests |
//! | `kmsim:client/<name>` | a gRPC KMS client, mapped to a principal by the topology |
//!
//! Everything here is pure: the checks are property-tested (any SAN text, any mix of
//! identities gets a decision, never a panic).

use std::fmt;

use x509_cert::der::{oid::AssociatedOid, Decode};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;

/// The URI scheme of kmsim identities.
pub const SCHEME: &str = "kmsim:";

/// The identity a certificate carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A node of a Region.
    Node {
        /// Its partition, e.g. `aws`.
        partition: String,
        /// Its Region, e.g. `us-east-1`.
        region: String,
        /// Its Raft node id.
        id: u64,
    },
    /// The operator.
    Operator,
    /// The gateway.
    Gateway,
    /// A named gRPC KMS client.
    Client(String),
}

impl Identity {
    /// The SAN URI that names this identity.
    pub fn uri(&self) -> String {
        match self {
            Identity::Node {
                partition,
                region,
                id,
            } => format!("{SCHEME}node/{partition}/{region}/{id}"),
            Identity::Operator => format!("{SCHEME}operator"),
            Identity::Gateway => format!("{SCHEME}gateway"),
            Identity::Client(name) => format!("{SCHEME}client/{name}"),
        }
    }

    /// Parses a SAN URI; `None` when it is not a well-formed kmsim identity. Names are
    /// restricted to `[A-Za-z0-9._-]` (1 to 64 characters), so an identity prints safely in
    /// an error message and two spellings never name the same holder.
    pub fn parse(uri: &str) -> Option<Identity> {
        let rest = uri.strip_prefix(SCHEME)?;
        let word = |s: &str| {
            !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        match rest {
            "operator" => return Some(Identity::Operator),
            "gateway" => return Some(Identity::Gateway),
            _ => {}
        }
        if let Some(name) = rest.strip_prefix("client/") {
            return word(name).then(|| Identity::Client(name.to_string()));
        }
        let node = rest.strip_prefix("node/")?;
        let mut parts = node.split('/');
        let (partition, region, id) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !word(partition) || !word(region) {
            return None;
        }
        // Canonical decimal only: "01" or "+1" would be a second spelling of node 1.
        if id.is_empty() || id.len() > 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if id.len() > 1 && id.starts_with('0') {
            return None;
        }
        let id: u64 = id.parse().ok().filter(|&i| i > 0)?;
        Some(Identity::Node {
            partition: partition.to_string(),
            region: region.to_string(),
            id,
        })
    }

    /// The identity of a set of SAN URIs: the one kmsim URI among them. A certificate with no
    /// kmsim URI, a malformed one or two of them names nobody.
    pub fn from_uris<'a>(uris: impl IntoIterator<Item = &'a str>) -> Result<Identity, Unnamed> {
        let mut found = None;
        for uri in uris {
            if !uri.starts_with(SCHEME) {
                continue;
            }
            let id = Identity::parse(uri).ok_or(Unnamed::Malformed)?;
            if found.replace(id).is_some() {
                return Err(Unnamed::Several);
            }
        }
        found.ok_or(Unnamed::None)
    }

    /// The identity in the first certificate of a PEM file.
    pub fn from_certificate_pem(pem: &[u8]) -> Result<Identity, Unnamed> {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::CertificateDer::from_pem_slice(pem)
            .map_err(|_| Unnamed::Unparsable)?;
        Identity::from_certificate_der(&der)
    }

    /// The identity in a DER certificate (already verified by the TLS handshake).
    pub fn from_certificate_der(der: &[u8]) -> Result<Identity, Unnamed> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|_| Unnamed::Unparsable)?;
        let mut uris = Vec::new();
        for ext in cert.tbs_certificate.extensions.iter().flatten() {
            if ext.extn_id != SubjectAltName::OID {
                continue;
            }
            let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                .map_err(|_| Unnamed::Unparsable)?;
            for name in san.0 {
                if let GeneralName::UniformResourceIdentifier(u) = name {
                    uris.push(u.as_str().to_string());
                }
            }
        }
        Identity::from_uris(uris.iter().map(String::as_str))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Node {
                partition,
                region,
                id,
            } => write!(f, "node {partition}/{region}/{id}"),
            Identity::Operator => f.write_str("the operator"),
            Identity::Gateway => f.write_str("the gateway"),
            Identity::Client(name) => write!(f, "client {name}"),
        }
    }
}

/// Why a certificate names nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unnamed {
    /// No certificate was presented.
    NoCertificate,
    /// The certificate could not be parsed.
    Unparsable,
    /// It has no `kmsim:` SAN URI.
    None,
    /// Its `kmsim:` SAN URI is malformed.
    Malformed,
    /// It has more than one `kmsim:` SAN URI.
    Several,
}

impl fmt::Display for Unnamed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unnamed::NoCertificate => "no client certificate",
            Unnamed::Unparsable => "a client certificate that cannot be parsed",
            Unnamed::None => "a client certificate without a kmsim: identity URI",
            Unnamed::Malformed => "a client certificate with a malformed kmsim: identity URI",
            Unnamed::Several => "a client certificate with several kmsim: identity URIs",
        })
    }
}

/// The gRPC services of a node, by the path prefix of their methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `kmsim.raft.v1`: Raft RPCs, Propose, ReadIndex.
    Raft,
    /// `kmsim.sync.v1`: the synchronizer between Regions.
    Sync,
    /// `kmsim.admin.v1`, its `Status` method apart.
    Admin,
    /// `kmsim.admin.v1.AdminService/Status`.
    AdminStatus,
    /// `kmsim.kms.v1`: the gRPC KMS face.
    Kms,
    /// `kmsim.relay.v1`: AWS JSON requests relayed by the gateway and other nodes.
    Relay,
    /// Anything else (no such service): refused.
    Unknown,
}

impl Service {
    /// The service a request path (`/package.Service/Method`) belongs to.
    pub fn of_path(path: &str) -> Service {
        let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
            return Service::Unknown;
        };
        // The generated servers' own names: a renamed service cannot slip past admission.
        use kmsim_proto::{admin, kms, raft, relay, sync};
        match service {
            raft::v1::raft_service_server::SERVICE_NAME => Service::Raft,
            sync::v1::sync_service_server::SERVICE_NAME => Service::Sync,
            admin::v1::admin_service_server::SERVICE_NAME if method == "Status" => {
                Service::AdminStatus
            }
            admin::v1::admin_service_server::SERVICE_NAME => Service::Admin,
            kms::v1::kms_service_server::SERVICE_NAME => Service::Kms,
            relay::v1::relay_service_server::SERVICE_NAME => Service::Relay,
            _ => Service::Unknown,
        }
    }

    /// The service's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Service::Raft => "kmsim.raft.v1",
            Service::Sync => "kmsim.sync.v1",
            Service::Admin => "kmsim.admin.v1",
            Service::AdminStatus => "kmsim.admin.v1 Status",
            Service::Kms => "kmsim.kms.v1",
            Service::Relay => "kmsim.relay.v1",
            Service::Unknown => "an unknown service",
        }
    }
}

/// The node that serves: what its services admit depends on its partition and Region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Local {
    /// Its partition.
    pub partition: String,
    /// Its Region.
    pub region: String,
}

/// Why a call is refused: `Unauthenticated` when the caller names nobody, `Denied` when the
/// identity it names is not admitted. The message names the identity seen and the one
/// required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The caller presented no usable identity.
    Unauthenticated(String),
    /// The caller's identity is not admitted by this service.
    Denied(String),
}

impl Refusal {
    /// The gRPC status of the refusal.
    pub fn status(&self) -> tonic::Status {
        match self {
            Refusal::Unauthenticated(m) => tonic::Status::unauthenticated(m.clone()),
            Refusal::Denied(m) => tonic::Status::permission_denied(m.clone()),
        }
    }
}

/// Decides whether `caller` may call `service` on `local`. `principal` maps a client or the
/// operator to its principal ARN on the KMS face (`None`: not admitted there).
pub fn admit(
    local: &Local,
    service: Service,
    caller: Result<&Identity, Unnamed>,
    principal: impl Fn(&Identity) -> Option<String>,
) -> Result<Option<String>, Refusal> {
    let caller = caller.map_err(|why| {
        Refusal::Unauthenticated(format!(
            "{} refuses the call: the caller presented {why}",
            service.name()
        ))
    })?;
    let same_region = |i: &Identity| {
        matches!(i, Identity::Node { partition, region, .. }
            if *partition == local.partition && *region == local.region)
    };
    let (ok, required) = match service {
        Service::Raft => (
            same_region(caller),
            format!("a node of {}/{}", local.partition, local.region),
        ),
        Service::Sync => (
            matches!(caller, Identity::Node { partition, region, .. }
                if *partition == local.partition && *region != local.region),
            format!("a node of another Region of partition {}", local.partition),
        ),
        Service::Admin => (*caller == Identity::Operator, "the operator".to_string()),
        Service::AdminStatus => (
            *caller == Identity::Operator || same_region(caller),
            format!(
                "the operator or a node of {}/{}",
                local.partition, local.region
            ),
        ),
        Service::Kms => {
            if let Some(arn) = principal(caller) {
                return Ok(Some(arn));
            }
            (
                false,
                "the operator or a client the topology maps to a principal".to_string(),
            )
        }
        // Relayed requests carry the client's own SigV4 signature, verified by the node; the
        // relaying process is trusted only for the client's address.
        Service::Relay => (
            matches!(caller, Identity::Gateway | Identity::Node { .. }),
            "the gateway or a node".to_string(),
        ),
        Service::Unknown => (false, "no one".to_string()),
    };
    if ok {
        Ok(None)
    } else {
        Err(Refusal::Denied(format!(
            "{} refuses {caller}: it admits {required}",
            service.name()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(p: &str, r: &str, id: u64) -> Identity {
        Identity::Node {
            partition: p.into(),
            region: r.into(),
            id,
        }
    }

    fn local() -> Local {
        Local {
            partition: "aws".into(),
            region: "us-east-1".into(),
        }
    }

    fn operator_only(i: &Identity) -> Option<String> {
        (*i == Identity::Operator).then(|| "arn:aws:iam::111122223333:root".to_string())
    }

    #[test]
    fn uris_parse_and_print_back() {
        for i in [
            node("aws", "us-east-1", 3),
            Identity::Operator,
            Identity::Gateway,
            Identity::Client("app-1".into()),
        ] {
            assert_eq!(Identity::parse(&i.uri()), Some(i.clone()));
        }
        for bad in [
            "kmsim:node/aws/us-east-1/0",
            "kmsim:node/aws/us-east-1/01",
            "kmsim:node/aws/us-east-1/+1",
            "kmsim:node/aws/us-east-1",
            "kmsim:node/aws/us-east-1/1/2",
            "kmsim:node//us-east-1/1",
            "kmsim:client/",
            "kmsim:client/a b",
            "kmsim:operator/x",
            "kmsim:Operator",
            "kmsim:gateway/1",
            "spiffe://x/node",
        ] {
            assert_eq!(Identity::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn one_kmsim_uri_names_the_holder() {
        let ok = Identity::from_uris(["https://x", "kmsim:operator"]);
        assert_eq!(ok, Ok(Identity::Operator));
        assert_eq!(Identity::from_uris(["https://x"]), Err(Unnamed::None));
        assert_eq!(
            Identity::from_uris(["kmsim:operator", "kmsim:client/a"]),
            Err(Unnamed::Several)
        );
        assert_eq!(
            Identity::from_uris(["kmsim:nobody"]),
            Err(Unnamed::Malformed)
        );
    }

    #[test]
    fn each_service_admits_whom_the_design_says() {
        let l = local();
        let same = node("aws", "us-east-1", 2);
        let other = node("aws", "eu-west-1", 1);
        let other_partition = node("aws-cn", "cn-north-1", 1);
        let op = Identity::Operator;
        let client = Identity::Client("app".into());
        let check = |s: Service, i: &Identity| admit(&l, s, Ok(i), operator_only).is_ok();
        assert!(check(Service::Raft, &same));
        assert!(!check(Service::Raft, &other));
        assert!(!check(Service::Raft, &op));
        assert!(check(Service::Sync, &other));
        assert!(!check(Service::Sync, &same));
        assert!(!check(Service::Sync, &other_partition));
        assert!(!check(Service::Sync, &op));
        assert!(check(Service::Admin, &op));
        assert!(!check(Service::Admin, &same));
        assert!(check(Service::AdminStatus, &same));
        assert!(check(Service::AdminStatus, &op));
        assert!(!check(Service::AdminStatus, &other));
        assert!(check(Service::Kms, &op));
        assert!(!check(Service::Kms, &client));
        assert!(!check(Service::Kms, &same));
        assert!(!check(Service::Unknown, &op));
        let gateway = Identity::Gateway;
        assert!(check(Service::Relay, &gateway));
        assert!(check(Service::Relay, &other));
        assert!(check(Service::Relay, &same));
        assert!(!check(Service::Relay, &op));
        assert!(!check(Service::Relay, &client));
        for s in [Service::Raft, Service::Sync, Service::Admin, Service::Kms] {
            assert!(!check(s, &gateway), "{s:?}");
        }
        assert_eq!(
            admit(&l, Service::Kms, Ok(&op), operator_only),
            Ok(Some("arn:aws:iam::111122223333:root".into()))
        );
        let refused = admit(&l, Service::Raft, Ok(&other), operator_only).unwrap_err();
        assert_eq!(
            refused,
            Refusal::Denied(
                "kmsim.raft.v1 refuses node aws/eu-west-1/1: it admits a node of aws/us-east-1"
                    .into()
            )
        );
        assert!(matches!(
            admit(&l, Service::Raft, Err(Unnamed::None), operator_only),
            Err(Refusal::Unauthenticated(_))
        ));
    }

    #[test]
    fn paths_map_to_services() {
        for (path, service) in [
            ("/kmsim.raft.v1.RaftService/Propose", Service::Raft),
            ("/kmsim.admin.v1.AdminService/Status", Service::AdminStatus),
            ("/kmsim.admin.v1.AdminService/AdvanceClock", Service::Admin),
            ("/kmsim.admin.v1.AdminService/StatusX", Service::Admin),
            ("/kmsim.kms.v1.KmsService/Encrypt", Service::Kms),
            ("/kmsim.sync.v1.SyncService/Deliver", Service::Sync),
            ("/kmsim.relay.v1.RelayService/Forward", Service::Relay),
            ("kmsim.kms.v1.KmsService/Encrypt", Service::Unknown),
            ("/grpc.reflection.v1/X", Service::Unknown),
        ] {
            assert_eq!(Service::of_path(path), service, "{path}");
        }
    }

    fn identity() -> impl Strategy<Value = Identity> {
        let name = "[a-z0-9-]{1,12}";
        prop_oneof![
            (name, name, 1u64..10).prop_map(|(p, r, id)| node(&p, &r, id)),
            Just(Identity::Operator),
            Just(Identity::Gateway),
            name.prop_map(Identity::Client),
        ]
    }

    fn service() -> impl Strategy<Value = Service> {
        prop_oneof![
            Just(Service::Raft),
            Just(Service::Sync),
            Just(Service::Admin),
            Just(Service::AdminStatus),
            Just(Service::Kms),
            Just(Service::Relay),
            Just(Service::Unknown),
        ]
    }

    proptest! {
        /// Any SAN text: parsed into an identity that prints back to the same text, or refused.
        #[test]
        fn any_uri_parses_to_its_own_spelling_or_nothing(uri in "(?s)(kmsim:)?(node/|client/|operator)?.{0,40}") {
            if let Some(i) = Identity::parse(&uri) {
                prop_assert_eq!(i.uri(), uri);
            }
        }

        /// Any list of SANs: exactly one kmsim URI names a holder, anything else names nobody.
        #[test]
        fn any_mix_of_uris_gets_a_decision(
            ids in proptest::collection::vec(identity(), 0..4),
            noise in proptest::collection::vec("(?s).{0,20}", 0..3),
        ) {
            let uris: Vec<String> = ids.iter().map(Identity::uri)
                .chain(noise.iter().filter(|n| !n.starts_with(SCHEME)).cloned())
                .collect();
            let got = Identity::from_uris(uris.iter().map(String::as_str));
            match ids.len() {
                0 => prop_assert_eq!(got, Err(Unnamed::None)),
                1 => prop_assert_eq!(got, Ok(ids[0].clone())),
                _ => prop_assert_eq!(got, Err(Unnamed::Several)),
            }
        }

        /// Any caller, any service: the decision is the table's, and a refusal names the
        /// caller.
        #[test]
        fn admission_follows_the_table(caller in identity(), s in service(), region in "[a-z0-9-]{1,12}") {
            let l = Local { partition: "aws".into(), region };
            let decision = admit(&l, s, Ok(&caller), operator_only);
            let is_node_of = |same: bool| matches!(&caller, Identity::Node { partition, region, .. }
                if partition == "aws" && (*region == l.region) == same);
            let expected = match s {
                Service::Raft => is_node_of(true),
                Service::Sync => is_node_of(false),
                Service::Admin => caller == Identity::Operator,
                Service::AdminStatus => caller == Identity::Operator || is_node_of(true),
                Service::Kms => caller == Identity::Operator,
                Service::Relay => matches!(caller, Identity::Gateway | Identity::Node { .. }),
                Service::Unknown => false,
            };
            prop_assert_eq!(decision.is_ok(), expected);
            if let Err(Refusal::Denied(m)) = decision {
                prop_assert!(m.contains(&caller.to_string()), "{}", m);
            }
        }

        /// Any bytes as a certificate: refused as unparsable, never a panic.
        #[test]
        fn any_bytes_as_a_certificate_name_nobody(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert!(Identity::from_certificate_der(&bytes).is_err());
        }
    }
}
