//! A minimal AWS JSON 1.1 client for KMS: requests signed with SigV4 by the `aws-sigv4` crate's
//! request signer, sent over pooled keep-alive HTTP/1.1 connections (hyper). The load generator
//! uses it (so it can load any AWS-compatible KMS endpoint, not only kmsim), and so do tests
//! that need to control every header and byte of a request.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use tokio_rustls::rustls::ClientConfig;

/// The content type of every request.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// Deadline of one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the client (not the service's answers, which are [`Answer`]s).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The endpoint URL is not usable.
    #[error("invalid endpoint '{0}': {1}")]
    Endpoint(String, String),
    /// The request could not be signed.
    #[error("cannot sign the request: {0}")]
    Sign(String),
    /// The request could not be sent or its answer read.
    #[error("transport: {0}")]
    Transport(String),
    /// The call did not finish in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The credentials and Region requests are signed with.
#[derive(Clone)]
pub struct Signer {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// The Region of the credential scope.
    pub region: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("access_key_id", &self.access_key_id)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Long-term credentials for `region`.
    pub fn new(access_key_id: &str, secret_access_key: &str, region: &str) -> Signer {
        Signer {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            region: region.into(),
        }
    }

    /// Adds the SigV4 headers (`X-Amz-Date`, `Authorization`, `X-Amz-Security-Token`) to `req`,
    /// signed at `time`, with the `aws-sigv4` crate's request signer. `req` must already carry
    /// every header to be signed (`Host` included).
    pub fn sign(
        &self,
        req: &mut Request<Full<Bytes>>,
        body: &[u8],
        time: SystemTime,
    ) -> Result<(), ClientError> {
        self.sign_for("kms", req, body, time)
    }

    /// [`Signer::sign`] for the SigV4 service `service` (`kms`, or `sts` for STS on the same
    /// endpoint).
    pub fn sign_for(
        &self,
        service: &str,
        req: &mut Request<Full<Bytes>>,
        body: &[u8],
        time: SystemTime,
    ) -> Result<(), ClientError> {
        let identity = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "kmsim",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ClientError::Sign(e.to_string()))?
            .into();
        let headers: Vec<(&str, &str)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let uri = req.uri().to_string();
        let signable = SignableRequest::new(
            req.method().as_str(),
            uri,
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| ClientError::Sign(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ClientError::Sign(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(req);
        Ok(())
    }
}

/// What the service answered.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// For an error answer, the AWS error code (`__type`, without any `namespace#` prefix).
    pub fn error_code(&self) -> Option<String> {
        if self.status.is_success() {
            return None;
        }
        let v = self.json();
        let code = v
            .get("__type")
            .and_then(|t| t.as_str())
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string());
        Some(code.unwrap_or_else(|| format!("HTTP {}", self.status.as_u16())))
    }

    /// For an error answer, its message (`message` or `Message`).
    pub fn error_message(&self) -> String {
        let v = self.json();
        v.get("message")
            .or_else(|| v.get("Message"))
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string()
    }
}

/// A client of one AWS JSON endpoint.
#[derive(Clone)]
pub struct AwsJsonClient {
    /// `http://host:port/`
    uri: Uri,
    /// The `Host` header value.
    host: HeaderValue,
    /// How requests are signed.
    signer: Signer,
    /// Pooled keep-alive connections.
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// The TLS settings of an `https://` endpoint.
    tls: Option<Arc<ClientConfig>>,
}

impl AwsJsonClient {
    /// A client of `endpoint` (`http://host:port`, no path) that signs with `signer`.
    pub fn new(endpoint: &str, signer: Signer) -> Result<AwsJsonClient, ClientError> {
        AwsJsonClient::with_ca(endpoint, signer, None)
    }

    /// A client of `endpoint`, `http://host:port` or, with the CA certificate(s) `ca_pem` to
    /// trust (and no other), `https://host:port`.
    pub fn with_ca(
        endpoint: &str,
        signer: Signer,
        ca_pem: Option<&[u8]>,
    ) -> Result<AwsJsonClient, ClientError> {
        let bad = |why: &str| ClientError::Endpoint(endpoint.to_string(), why.to_string());
        let parsed: Uri = endpoint.parse().map_err(|_| bad("not a URL"))?;
        let tls = match (parsed.scheme_str(), ca_pem) {
            (Some("http"), _) => None,
            (Some("https"), Some(ca)) => Some(Arc::new(
                kmsim_node::tls::https_client_config(ca).map_err(|e| bad(&e.to_string()))?,
            )),
            (Some("https"), None) => {
                return Err(bad(
                    "https:// needs the CA certificate that signed the endpoint's",
                ))
            }
            _ => return Err(bad("only http:// and https:// endpoints are supported")),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let authority = parsed
            .authority()
            .ok_or_else(|| bad("no host:port"))?
            .clone();
        if !matches!(parsed.path(), "" | "/") || parsed.query().is_some() {
            return Err(bad("the endpoint has no path or query"));
        }
        let uri: Uri = format!("{scheme}://{authority}/")
            .parse()
            .map_err(|_| bad("not a URL"))?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(|_| bad("bad host"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        connector.enforce_http(false);
        let empty = || kmsim_node::tls::https_client_config(&[]).map_err(|e| bad(&e.to_string()));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(match &tls {
                Some(c) => ClientConfig::clone(c),
                None => empty()?,
            })
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            // Below the server's idle close (30 s), as the gateway's own pool: a pooled
            // connection is never one the server is closing as the next request goes out.
            .pool_idle_timeout(kmsim_node::aws::server::POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(usize::MAX)
            .build(connector);
        Ok(AwsJsonClient {
            uri,
            host,
            signer,
            client,
            tls,
        })
    }

    /// The endpoint's URL (`http://host:port/` or `https://…`).
    pub fn url(&self) -> String {
        self.uri.to_string()
    }

    /// The `host:port` of the endpoint.
    pub fn authority(&self) -> &str {
        self.host.to_str().unwrap_or_default()
    }

    /// The same endpoint and connections, signing with `signer`.
    pub fn with_signer(&self, signer: Signer) -> AwsJsonClient {
        AwsJsonClient {
            signer,
            ..self.clone()
        }
    }

    /// An unsigned `POST /` of `operation` with `body` and the headers AWS clients send.
    pub fn unsigned(&self, operation: &str, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.uri.clone();
        let h = req.headers_mut();
        h.insert(http::header::HOST, self.host.clone());
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("TrentService.{operation}")) {
            h.insert("x-amz-target", v);
        }
        req
    }

    /// An unsigned `GET` of `path` (`/metrics`), as a monitoring system sends it.
    pub fn get(&self, path: &str) -> Result<Request<Full<Bytes>>, ClientError> {
        let uri: Uri = format!("{}{}", self.url().trim_end_matches('/'), path)
            .parse()
            .map_err(|_| ClientError::Endpoint(path.to_string(), "not a path".to_string()))?;
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = uri;
        req.headers_mut()
            .insert(http::header::HOST, self.host.clone());
        Ok(req)
    }

    /// The request of `operation` with `body`, signed now.
    pub fn signed(
        &self,
        operation: &str,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut req = self.unsigned(operation, body.clone());
        self.signer.sign(&mut req, &body, SystemTime::now())?;
        Ok(req)
    }

    /// An STS request (the AWS Query protocol: `form` is the form-encoded body, e.g.
    /// `Action=GetCallerIdentity&Version=2011-06-15`), signed now for the service `sts`.
    pub fn signed_sts(&self, form: &str) -> Result<Request<Full<Bytes>>, ClientError> {
        let body = Bytes::from(form.to_string());
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.uri.clone();
        let h = req.headers_mut();
        h.insert(http::header::HOST, self.host.clone());
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        self.signer
            .sign_for("sts", &mut req, &body, SystemTime::now())?;
        Ok(req)
    }

    /// Sends a request exactly as given and reads the whole answer.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Answer, ClientError> {
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| ClientError::Transport(format!("{e:?}")))?;
            read_answer(resp).await
        };
        with_deadline(fut).await
    }

    /// Opens one dedicated keep-alive connection to the endpoint (no pool: the load generator
    /// gives each task its own, which costs less per request than the pooled client).
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        let stream = tokio::time::timeout(
            Duration::from_secs(3),
            tokio::net::TcpStream::connect(self.authority().to_string()),
        )
        .await
        .map_err(|_| ClientError::Timeout(Duration::from_secs(3)))?
        .map_err(|e| ClientError::Transport(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let transport = |e: &dyn std::fmt::Display| ClientError::Transport(e.to_string());
        // The connection task ends when the sender is dropped or the peer closes.
        let sender = match &self.tls {
            None => {
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| transport(&e))?;
                tokio::spawn(conn);
                sender
            }
            Some(config) => {
                let host = self.uri.host().unwrap_or_default();
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| transport(&e))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, stream)
                    .await
                    .map_err(|e| transport(&e))?;
                let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
                    .await
                    .map_err(|e| transport(&e))?;
                tokio::spawn(conn);
                sender
            }
        };
        Ok(Connection { sender })
    }

    /// Calls `operation` with a JSON body, signed now.
    pub async fn call(
        &self,
        operation: &str,
        body: &serde_json::Value,
    ) -> Result<Answer, ClientError> {
        let bytes =
            Bytes::from(serde_json::to_vec(body).expect("invariant: JSON values serialize"));
        self.send(self.signed(operation, bytes)?).await
    }
}

/// One dedicated HTTP/1.1 connection (see [`AwsJsonClient::connect`]).
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// Why [`Connection::try_send`] got no answer.
#[derive(Debug)]
pub enum SendFailure {
    /// The connection was closed (by the endpoint, after an answer with `Connection: close`, or
    /// idle) before any byte of the request was written: the request, unsent, which can go
    /// out on another connection without being a retry.
    NotSent(Box<Request<Full<Bytes>>>),
    /// The request was written (or may have been) and no whole answer came back.
    Failed(ClientError),
}

impl Connection {
    /// Sends a request on this connection and reads the whole answer.
    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<Answer, ClientError> {
        let fut = async {
            self.sender
                .ready()
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            let resp = self
                .sender
                .send_request(req)
                .await
                .map_err(|e| ClientError::Transport(e.to_string()))?;
            read_answer(resp).await
        };
        with_deadline(fut).await
    }

    /// Waits until the connection can take a request: false when it is closed (the endpoint
    /// closed it after its last answer, or while idle), true otherwise.
    pub async fn ready(&mut self) -> bool {
        self.sender.ready().await.is_ok()
    }

    /// Sends a request on this connection (call [`Connection::ready`] first) and reads the
    /// whole answer, telling a request that never went out from one whose answer was lost.
    /// No deadline: the caller bounds the call.
    pub async fn try_send(&mut self, req: Request<Full<Bytes>>) -> Result<Answer, SendFailure> {
        match self.sender.try_send_request(req).await {
            Ok(resp) => read_answer(resp).await.map_err(SendFailure::Failed),
            Err(mut e) => match e.take_message() {
                Some(req) => Err(SendFailure::NotSent(Box::new(req))),
                None => Err(SendFailure::Failed(ClientError::Transport(
                    e.into_error().to_string(),
                ))),
            },
        }
    }
}

/// Why [`OwnConnection::exchange`] got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The request never went out: no connection could be opened, or it could not be signed.
    #[error("not sent: {0}")]
    NotSent(ClientError),
    /// The request went out (or may have) and no whole answer came back.
    #[error("{0}")]
    Lost(ClientError),
}

/// One caller's own HTTP/1.1 connection to an endpoint, kept alive between calls, opened on
/// first use and opened again whenever the endpoint has closed it (moto's server, Werkzeug's,
/// answers every request with `Connection: close`) or a failed call left it unusable.
///
/// Not hyper-util's pooled client: its pool silently resends a request that went into a
/// connection closing under it, opens connections where nothing counts them, and costs more
/// per request (a checkout and a check-in of a shared pool). Here the caller knows whether its
/// request left: one that never went out is sent on a new connection (a reconnection, not an
/// error); one whose answer was lost is an error, never resent.
pub struct OwnConnection {
    client: AwsJsonClient,
    connection: Option<Connection>,
    /// Connections opened so far.
    opened: u64,
}

impl OwnConnection {
    /// A caller of `client`'s endpoint, signing as `client` does; no connection yet.
    pub fn new(client: AwsJsonClient) -> OwnConnection {
        OwnConnection {
            client,
            connection: None,
            opened: 0,
        }
    }

    /// The client it signs and connects with.
    pub fn client(&self) -> &AwsJsonClient {
        &self.client
    }

    /// Connections opened so far.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    /// Forgets the connection (after a call abandoned on it, which left it unusable).
    pub fn drop_connection(&mut self) {
        self.connection = None;
    }

    /// The connection, ready for a request: the one it has, or a new one when it has none or
    /// the endpoint closed it.
    async fn ready_connection(&mut self) -> Result<&mut Connection, ClientError> {
        let mut kept = self.connection.take();
        if let Some(c) = &mut kept {
            if !c.ready().await {
                kept = None;
            }
        }
        let conn = match kept {
            Some(c) => c,
            None => {
                let c = self.client.connect().await?;
                self.opened += 1;
                c
            }
        };
        Ok(self.connection.insert(conn))
    }

    /// Sends `req` and reads its answer; a request that did not go out (the connection closed
    /// first) goes out on a new connection, once. No deadline: the caller bounds the call (and
    /// calls [`OwnConnection::drop_connection`] when it abandons one).
    pub async fn exchange(
        &mut self,
        mut req: Request<Full<Bytes>>,
    ) -> Result<Answer, ExchangeError> {
        for _ in 0..2 {
            let conn = self
                .ready_connection()
                .await
                .map_err(ExchangeError::NotSent)?;
            match conn.try_send(req).await {
                Ok(answer) => return Ok(answer),
                Err(SendFailure::NotSent(unsent)) => {
                    self.connection = None;
                    req = *unsent;
                }
                Err(SendFailure::Failed(e)) => {
                    self.connection = None;
                    return Err(ExchangeError::Lost(e));
                }
            }
        }
        // Even a new connection closed before the request went out: not the endpoint's
        // ordinary closing any more.
        Err(ExchangeError::Lost(ClientError::Transport(
            "the endpoint closed a new connection before the request went out".into(),
        )))
    }

    /// Calls `operation` with the JSON `body`, signed now, within the client's deadline (10 s).
    pub async fn call(&mut self, operation: &str, body: Bytes) -> Result<Answer, ExchangeError> {
        let req = self
            .client
            .signed(operation, body)
            .map_err(ExchangeError::NotSent)?;
        match tokio::time::timeout(CALL_TIMEOUT, self.exchange(req)).await {
            Ok(answer) => answer,
            Err(_) => {
                // The abandoned request left the connection unusable.
                self.connection = None;
                Err(ExchangeError::Lost(ClientError::Timeout(CALL_TIMEOUT)))
            }
        }
    }
}

/// Reads a whole response.
async fn read_answer(resp: http::Response<hyper::body::Incoming>) -> Result<Answer, ClientError> {
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| ClientError::Transport(e.to_string()))?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Bounds one call by [`CALL_TIMEOUT`].
async fn with_deadline(
    fut: impl std::future::Future<Output = Result<Answer, ClientError>>,
) -> Result<Answer, ClientError> {
    tokio::time::timeout(CALL_TIMEOUT, fut)
        .await
        .map_err(|_| ClientError::Timeout(CALL_TIMEOUT))?
}

/// A client of a cluster's gateway (its single AWS endpoint), signing with the topology's
/// first credentials for `region`, trusting the cluster's CA when the endpoint is HTTPS. The
/// gateway must listen on loopback (load is only ever sent there).
pub fn gateway_client(
    dir: &crate::cluster::ClusterDir,
    region: &str,
) -> Result<AwsJsonClient, String> {
    let topology = dir.topology().map_err(|e| e.to_string())?;
    let endpoint = topology
        .endpoint
        .as_ref()
        .ok_or("the cluster has no gateway ([endpoint] in its topology)")?;
    let url = format!("{}://{}", topology.aws_scheme(), endpoint.listen);
    if !endpoint.listen.ip().is_loopback() {
        return Err(format!("the gateway {url} is not on a loopback address"));
    }
    signed_client(&topology, &url, region)
}

/// A client of the AWS endpoint at `url`, signing for `region` with the topology's first
/// credentials and trusting its CA when its AWS endpoints speak HTTPS.
pub fn signed_client(
    topology: &kmsim_node::config::Topology,
    url: &str,
    region: &str,
) -> Result<AwsJsonClient, String> {
    let cred = topology
        .credentials
        .first()
        .ok_or("the topology has no credentials to sign with")?;
    let signer = Signer {
        access_key_id: cred.access_key_id.clone(),
        secret_access_key: cred.secret_access_key.expose().to_string(),
        session_token: cred.session_token.as_ref().map(|t| t.expose().to_string()),
        region: region.to_string(),
    };
    let ca = match topology.tls.as_ref() {
        Some(t) if t.aws_https => Some(t.read_ca().map_err(|e| e.to_string())?),
        _ => None,
    };
    AwsJsonClient::with_ca(url, signer, ca.as_deref()).map_err(|e| e.to_string())
}
