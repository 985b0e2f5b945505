//! The admission layer of a node's gRPC server: reads the identity of the client certificate
//! the TLS handshake verified, decides with [`identity::admit`](super::identity::admit), and
//! either answers the refusal itself (no handler runs) or passes the call on, with the
//! caller's identity ([`CallerIdentity`]) and, on the KMS face, its principal
//! ([`CallerPrincipal`]) as request extensions.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::identity::{admit, Identity, Local, Service, Unnamed};
use super::TlsSettings;

/// The principal ARN a gRPC KMS call acts as, put in the request's extensions by the
/// admission layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerPrincipal(pub String);

/// The identity the caller's certificate carries, put in the request's extensions by the
/// admission layer (absent without `[tls]`). The Raft service checks that a Raft RPC speaks
/// for the node that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity(pub Identity);

/// What the admission layer passes on with an admitted call.
struct Admitted {
    identity: Identity,
    principal: Option<String>,
}

/// The most certificates whose identity is remembered (a cluster has a few dozen; only
/// certificates the CA signed reach this point).
const IDENTITY_CACHE_MAX: usize = 256;

/// What a node's services admit, and who the KMS face's callers are.
pub struct Admission {
    local: Local,
    operator_principal: String,
    clients: HashMap<String, String>,
    /// Identities of certificates already parsed, by their DER bytes.
    cache: Mutex<HashMap<Vec<u8>, Result<Identity, Unnamed>>>,
}

impl Admission {
    /// The policy of a node of `local`, whose account root is `root_arn`.
    pub fn new(local: Local, settings: &TlsSettings, root_arn: String) -> Admission {
        Admission {
            local,
            operator_principal: settings.operator_principal.clone().unwrap_or(root_arn),
            clients: settings
                .clients
                .iter()
                .map(|c| (c.name.clone(), c.principal_arn.clone()))
                .collect(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn principal(&self, who: &Identity) -> Option<String> {
        match who {
            Identity::Operator => Some(self.operator_principal.clone()),
            Identity::Client(name) => self.clients.get(name).cloned(),
            Identity::Node { .. } | Identity::Gateway => None,
        }
    }

    fn identity(&self, der: &[u8]) -> Result<Identity, Unnamed> {
        let mut cache = self.cache.lock().expect("invariant: lock not poisoned");
        if let Some(found) = cache.get(der) {
            return found.clone();
        }
        let found = Identity::from_certificate_der(der);
        if cache.len() >= IDENTITY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(der.to_vec(), found.clone());
        found
    }

    /// Decides on a request: who is calling (and as which principal on the KMS face) to pass
    /// it on, or the refusal.
    fn check<B>(&self, req: &http::Request<B>) -> Result<Admitted, tonic::Status> {
        let service = Service::of_path(req.uri().path());
        let certs = req
            .extensions()
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .and_then(|i| i.peer_certs());
        let caller = match certs.as_deref().and_then(|c| c.first()) {
            Some(leaf) => self.identity(leaf.as_ref()),
            None => Err(Unnamed::NoCertificate),
        };
        let principal = admit(&self.local, service, caller.as_ref().map_err(|e| *e), |i| {
            self.principal(i)
        })
        .map_err(|r| r.status())?;
        let identity = caller.map_err(|_| {
            tonic::Status::internal("invariant: an admitted caller has an identity")
        })?;
        Ok(Admitted {
            identity,
            principal,
        })
    }
}

/// The tower layer that puts [`Admission`] in front of every service of a server (or admits
/// everyone: a topology without `[tls]`).
#[derive(Clone)]
pub struct AdmitLayer {
    policy: Option<Arc<Admission>>,
}

impl AdmitLayer {
    /// A layer checking every call against `policy`, or passing every call on.
    pub fn new(policy: Option<Admission>) -> AdmitLayer {
        AdmitLayer {
            policy: policy.map(Arc::new),
        }
    }
}

impl<S> tower_layer::Layer<S> for AdmitLayer {
    type Service = Admit<S>;

    fn layer(&self, inner: S) -> Admit<S> {
        Admit {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service [`AdmitLayer`] makes.
#[derive(Clone)]
pub struct Admit<S> {
    inner: S,
    policy: Option<Arc<Admission>>,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for Admit<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let Some(policy) = &self.policy else {
            return Box::pin(self.inner.call(req));
        };
        match policy.check(&req) {
            Ok(admitted) => {
                if let Some(p) = admitted.principal {
                    req.extensions_mut().insert(CallerPrincipal(p));
                }
                req.extensions_mut()
                    .insert(CallerIdentity(admitted.identity));
                Box::pin(self.inner.call(req))
            }
            Err(status) => {
                tracing::warn!(path = %req.uri().path(), refusal = %status.message(), "call refused");
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}
