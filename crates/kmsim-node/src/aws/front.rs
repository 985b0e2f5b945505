//! One AWS JSON request, from bytes to response: the plain `GET` paths first, which carry no
//! data of a Region and need no signature (`/healthz`, `/readyz`, `/metrics`:
//! [`super::probes`]), then `POST /` only, SigV4 parsed, scoped and its
//! headers checked (known access key, required headers signed; a run-time access key this
//! process does not hold passes when the request is relayed) before the body is read, the
//! body read within its size bound and the body read timeout, the Region routed (served here or
//! forwarded), the signature verified, the `Content-Type` and `X-Amz-Target` checked, the body
//! decoded and the operation run. Every
//! rejection happens before anything is proposed or read from the state, so no bad request
//! changes anything.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};

use kmsim_core::KmsError;

use super::credentials::{CredentialStore, STS_SERVICE};
use super::dispatch;
use super::errors::{
    error_response, json_response, Body, ErrorCode, FrontError, CONTENT_TYPE, MAX_BODY_BYTES,
};
use super::probes;
use super::router::{Route, Router, FORWARDED_HEADER};
use super::session_token::SessionKey;
use super::sigv4::{self, Authorization, Caller, Now, SignedRequest};
use super::sts::{self, StsError};
use crate::clock::SimClock;
use crate::config::{EndpointLimits, Topology};
use crate::faults::FaultTable;
use crate::key_files::KeyFileError;
use crate::kms::{KmsApi, RequestContext};
use crate::metrics::NodeMetrics;
use crate::tls::Dialer;
use crate::trace::{self, TraceContext, TRACEPARENT};

/// The AWS JSON front of one process: a node (with its Region's KMS) or the gateway (none).
pub struct AwsFront {
    /// This node's KMS; `None` in the gateway, which forwards every request.
    local: Option<Arc<KmsApi>>,
    /// The topology's credentials, the key that opens role sessions' tokens and (on a node)
    /// the run-time access keys of the IAM version in force.
    credentials: CredentialStore,
    /// Region routing and forwarding.
    router: Router,
    /// The Region's clock (the gateway's has no offset): request dates are checked against it.
    clock: SimClock,
    /// The topology's limits of the endpoint (the server reads the connection cap and the
    /// header and idle timeouts; the body read timeout applies here).
    limits: EndpointLimits,
    /// This process's metrics: the API's are counted here, and `GET /metrics` serves them all.
    metrics: Arc<NodeMetrics>,
}

impl AwsFront {
    /// The front of a node (`local` is its KMS, `me` its `REGION/ID`) or of the gateway (`local`
    /// is `None`, `me` is `gateway`); `dialer` relays requests for other Regions; `metrics`
    /// counts its requests. Fails when the topology's STS key (`[sts]`) cannot be read.
    pub fn new(
        topology: &Topology,
        local: Option<Arc<KmsApi>>,
        me: &str,
        faults: Arc<FaultTable>,
        dialer: Dialer,
        metrics: Arc<NodeMetrics>,
    ) -> Result<AwsFront, KeyFileError> {
        let local_region = local.as_ref().map(|a| a.scope.region.to_string());
        let clock = local.as_ref().map(|a| a.clock.clone()).unwrap_or_default();
        let sessions = SessionKey::load(topology.sts.as_ref())?;
        // A node also accepts the run-time access keys of the IAM version it applied.
        let iam = local.as_ref().map(|a| a.iam.clone());
        Ok(AwsFront {
            local,
            credentials: CredentialStore::new(&topology.credentials)
                .with_sessions(sessions)
                .with_iam(iam),
            router: Router::new(topology, local_region, me, faults, dialer),
            clock,
            limits: topology.limits.clone(),
            metrics,
        })
    }

    /// The endpoint's limits.
    pub fn limits(&self) -> &EndpointLimits {
        &self.limits
    }

    /// This process's metrics.
    pub fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    /// Answers one request that arrived on client connection number `connection` (requests of
    /// one connection are forwarded to the same node first). Never fails: every error becomes an
    /// AWS JSON error response.
    ///
    /// The connection stays usable after any answer whose request body was read to its end; an
    /// answer sent with part of the body unread (a declared or streamed body over the limit, a
    /// body that could not be read) carries `Connection: close`, because hyper then closes the
    /// connection, and a keep-alive client must not send its next request there.
    ///
    /// Every answer but those of the plain `GET` paths ([`probes`]) is counted in
    /// the API metrics under its operation and code.
    pub async fn handle<B>(
        &self,
        req: Request<B>,
        remote: Option<SocketAddr>,
        connection: usize,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut parts, body) = req.into_parts();
        if let Some(probe) = probes::route(&parts) {
            // A probe's body (it should have none) is read like a refused request's, so the
            // connection can serve the next request; a large one closes it.
            let body_read = declared_length(&parts).is_none_or(|n| n <= REFUSED_BODY_BYTES as u64)
                && self.read_body(body, REFUSED_BODY_BYTES).await.is_ok();
            let mut resp = probes::answer(probe, self.local.as_deref(), &self.metrics).await;
            if !body_read {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            return resp;
        }
        let counted = self.metrics.api.begin();
        let operation =
            dispatch::metric_operation(parts.headers.get("x-amz-target").map(|v| v.as_bytes()));
        // The trace the request belongs to. A client's `traceparent` is passed on unchanged (it
        // may be among the signed headers); when absent, this hop's is added, so the node this
        // request is forwarded to continues the same trace.
        let traced = parts.headers.get(TRACEPARENT).map(|v| v.as_bytes());
        let parent = TraceContext::from_header(traced);
        let add_header = traced.is_none();
        let request_id = uuid::Uuid::new_v4().to_string();
        let resp = trace::scope(parent, "aws-json", operation, async {
            if add_header {
                if let Some(c) = trace::current() {
                    parts.headers.insert(TRACEPARENT, c.header_value());
                }
            }
            self.answer(parts, body, remote, connection, &request_id)
                .await
        })
        .await;
        counted.end(operation, ErrorCode::of(&resp));
        resp
    }

    /// Answers a request that is not a probe (the rest of [`AwsFront::handle`]).
    async fn answer<B>(
        &self,
        parts: Parts,
        body: B,
        remote: Option<SocketAddr>,
        connection: usize,
        request_id: &str,
    ) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        // STS requests (the Query protocol) get their errors as STS XML.
        let query = sts::is_query(&parts.headers);
        let (outcome, body_read) = match self.admit(&parts) {
            // A declared length over the limit: refused unread.
            Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => (Err(e), false),
            // Not `POST /`, or not authenticated by its headers: refused, but a small body is
            // still read to its end, so that the connection can serve the next request. A larger
            // one is left unread (and the connection closed): an unauthenticated client cannot
            // make the endpoint read a large body.
            Err(e) if declared_length(&parts).is_some_and(|n| n > REFUSED_BODY_BYTES as u64) => {
                (Err(e), false)
            }
            Err(e) => (
                Err(e),
                self.read_body(body, REFUSED_BODY_BYTES).await.is_ok(),
            ),
            Ok(auth) => match self.read_body(body, MAX_BODY_BYTES).await {
                Ok(body) => (
                    self.serve(&parts, body, &auth, remote, connection, request_id)
                        .await,
                    true,
                ),
                Err(e) => (Err(e), false),
            },
        };
        let mut resp = match outcome {
            Ok(resp) => resp,
            Err(e) => {
                tracing::debug!(
                    code = e.error.code(),
                    status = e.status.as_u16(),
                    "aws request refused"
                );
                if query {
                    sts::error_response(&StsError::from_front(e.status, &e.error), request_id)
                } else {
                    error_response(&e, request_id)
                }
            }
        };
        if !body_read {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }

    /// Everything checked before the body is read: the envelope, the `Authorization` header and
    /// its scope, and the SigV4 checks of the headers ([`sigv4::check_headers`]: a known access
    /// key, the headers that must be signed, the session token). The signature itself covers the
    /// body and is verified once it is read.
    fn admit(&self, parts: &Parts) -> Result<Authorization, FrontError> {
        check_envelope(parts)?;
        let auth = self.authenticate(&parts.headers)?;
        let relay = !self.router.serves(&auth.region);
        sigv4::check_headers(&self.credentials, &auth, &parts.headers, relay)?;
        Ok(auth)
    }

    /// Reads the whole body within `limit` bytes and the body read timeout.
    async fn read_body<B>(&self, body: B, limit: usize) -> Result<Bytes, FrontError>
    where
        B: hyper::body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let timeout = Duration::from_millis(self.limits.body_read_timeout_ms);
        match tokio::time::timeout(timeout, read_body(body, limit)).await {
            Ok(read) => read,
            Err(_) => Err(FrontError::with_status(
                StatusCode::REQUEST_TIMEOUT,
                KmsError::Serialization(format!(
                    "the request body did not arrive within {} ms",
                    self.limits.body_read_timeout_ms
                )),
            )),
        }
    }

    /// Serves a request whose envelope and headers are checked and whose body is read.
    async fn serve(
        &self,
        parts: &Parts,
        body: Bytes,
        auth: &Authorization,
        remote: Option<SocketAddr>,
        connection: usize,
        request_id: &str,
    ) -> Result<Response<Body>, FrontError> {
        let forwarded = parts.headers.contains_key(FORWARDED_HEADER);
        match self.router.route(&auth.region, forwarded)? {
            Route::Forward(region) => {
                self.router
                    .forward(&region, connection, parts, body, remote)
                    .await
            }
            Route::Local => {
                let api = self
                    .local
                    .as_ref()
                    .ok_or_else(|| KmsError::Internal("no local Region in this process".into()))?;
                let caller = self.verify_local(parts, &body, auth)?;
                let is_sts = auth.service == STS_SERVICE;
                let ctx = RequestContext::aws_json(
                    request_id.to_string(),
                    caller.principal_arn,
                    caller.access_key_id,
                    remote.map(|a| a.ip().to_string()),
                    parts
                        .headers
                        .get(header::USER_AGENT)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
                );
                if is_sts {
                    let sessions = self.credentials.sessions();
                    return Ok(
                        match sts::serve(api, sessions, &ctx, &parts.headers, &body) {
                            Ok(xml) => sts::xml_response(StatusCode::OK, xml, request_id),
                            Err(e) => sts::error_response(&e, request_id),
                        },
                    );
                }
                let request = match decode_verified(parts, &body) {
                    Ok(request) => request,
                    Err(e) => {
                        // Refused before any operation, from an authenticated caller: audited
                        // like any failed call (unauthenticated refusals are not; see
                        // docs/AWS-BEHAVIOUR.md §9).
                        let target = parts.headers.get("x-amz-target").map(|v| v.as_bytes());
                        api.record_refused(&ctx, &dispatch::event_name(target), &e.error)
                            .await;
                        return Err(e);
                    }
                };
                let out = request.call(api, &ctx).await?;
                Ok(json_response(StatusCode::OK, out, request_id))
            }
        }
    }

    /// Parses `Authorization` and checks its scope (service, terminator, a Region of the
    /// topology): all that can be checked without the secret.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Authorization, FrontError> {
        let auth = sigv4::parse_authorization(
            headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()),
            headers.contains_key("x-amz-date"),
        )?;
        sigv4::check_scope(&auth, |r| self.router.knows(r))?;
        Ok(auth)
    }

    /// Verifies the signature of a request this process serves: who is calling.
    pub fn verify_local(
        &self,
        parts: &Parts,
        body: &[u8],
        auth: &Authorization,
    ) -> Result<Caller, FrontError> {
        let now_ms = self.clock.now_ms();
        let now = Now {
            simulated: now_ms.div_euclid(1000),
            host: self.clock.host_ms().div_euclid(1000),
        };
        Ok(sigv4::verify(
            &self.credentials,
            auth,
            &SignedRequest {
                method: parts.method.as_str(),
                headers: &parts.headers,
                body,
            },
            now,
        )?)
    }
}

/// For an authenticated request: checks its `Content-Type`, then decodes the operation and
/// its input.
pub fn decode_verified(parts: &Parts, body: &[u8]) -> Result<dispatch::Request, FrontError> {
    check_content_type(&parts.headers)?;
    Ok(dispatch::Request::decode(
        parts.headers.get("x-amz-target").map(|v| v.as_bytes()),
        body,
    )?)
}

/// Only `POST /` with no query string, and a declared length within [`MAX_BODY_BYTES`].
pub fn check_envelope(parts: &Parts) -> Result<(), FrontError> {
    if parts.method != http::Method::POST || parts.uri.path() != "/" || parts.uri.query().is_some()
    {
        let pq = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        return Err(FrontError::not_post_root(parts.method.as_str(), pq));
    }
    if declared_length(parts).is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(FrontError::too_large());
    }
    Ok(())
}

/// The body length the request declares (`Content-Length`), if it does.
fn declared_length(parts: &Parts) -> Option<u64> {
    parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// `Content-Type` must be `application/x-amz-json-1.1` (any case, parameters allowed).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), FrontError> {
    let value = headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes());
    let ok = value.is_some_and(|v| {
        let media = v.split(|b| *b == b';').next().unwrap_or_default();
        media
            .trim_ascii()
            .eq_ignore_ascii_case(CONTENT_TYPE.as_bytes())
    });
    if ok {
        Ok(())
    } else {
        Err(FrontError::unsupported_media_type(value))
    }
}

/// The most of a refused request's body that is read (to keep the connection) before the
/// request is authenticated; a larger one is left unread and the connection closed.
pub const REFUSED_BODY_BYTES: usize = 64 << 10;

/// Reads the whole body, refusing one larger than `limit` as soon as it is (the rest is left
/// unread).
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, FrontError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(FrontError::too_large()),
        Err(e) => Err(KmsError::Serialization(format!("cannot read the request body: {e}")).into()),
    }
}
