//! The transport: HTTP/1.1 on kept-alive connections to one remote, over the unix socket
//! ([`UnixHttp`]) or HTTPS with a pinned server certificate (reqwest). It sends [`Request`]s and
//! decodes envelopes.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::error::{Error, Result};
use super::idle::{Activity, IdleLimited};
use super::request::Request;
use super::response::{self, Answer};
use super::tls::{self, TlsSettings};
use super::unix::{Failure, UnixHttp};

/// Where a remote lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A unix socket path.
    Unix(PathBuf),
    /// An `https://host:port` URL, without a trailing slash.
    Https(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Https(u) => f.write_str(u),
        }
    }
}

/// Transport settings that do not depend on the endpoint.
#[derive(Debug, Clone, Default)]
pub struct TransportOptions {
    /// How long an ordinary request may take as a whole, and how long a transfer may go without
    /// moving a byte ([`DEFAULT_TIMEOUT`] when not given; long polls set their own).
    pub timeout: Option<Duration>,
    /// Log each request on stderr.
    pub verbose: bool,
}

/// How a request's time is bounded.
#[derive(Debug, Clone, Copy)]
enum Bound {
    /// The whole exchange, body included, within the timeout.
    Whole,
    /// No more than the timeout without a byte moving.
    Idle,
}

/// Sends requests to one LXD server over kept-alive HTTP/1.1 connections.
#[derive(Debug)]
pub struct Transport {
    http: Http,
    endpoint: Endpoint,
    options: TransportOptions,
    tls: Option<rustls::ClientConfig>,
}

/// The HTTP client of one transport.
#[derive(Debug)]
enum Http {
    /// Our own client on the unix socket (see [`super::unix`] for why not reqwest's pool).
    Unix(UnixHttp),
    /// reqwest over HTTPS, with the base URL requests are sent below.
    Https {
        client: reqwest::Client,
        base: String,
    },
}

/// How long an idle pooled connection is kept: short, since the daemon may restart.
const POOL_IDLE: Duration = Duration::from_secs(10);
/// How long connecting may take (to the unix socket too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JSON answer read: far past any real one (a listing of thousands of instances
/// with their state is a few tens of MiB).
pub const MAX_DOCUMENT_BYTES: u64 = 256 << 20;
/// The timeout when none is given: a server that stops answering is given up on, and a
/// healthy one never takes this long over an ordinary request or between a transfer's bytes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// reqwest needs a process-wide rustls provider: ours is ring.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err only means another provider was installed first, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Transport {
    /// A transport over a unix socket.
    pub fn unix(path: PathBuf, options: TransportOptions) -> Result<Transport> {
        Ok(Transport {
            http: Http::Unix(UnixHttp::new(path.clone(), CONNECT_TIMEOUT)),
            endpoint: Endpoint::Unix(path),
            options,
            tls: None,
        })
    }

    /// A transport over HTTPS, TLS 1.3 only, with the server certificate pinned.
    pub fn https(
        url: &str,
        settings: &TlsSettings,
        options: TransportOptions,
    ) -> Result<Transport> {
        let url = url.trim_end_matches('/').to_owned();
        install_crypto_provider();
        let config = tls::client_config(settings)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config.clone())
            .http1_only()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(POOL_IDLE)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTPS client: {e}")))?;
        Ok(Transport {
            http: Http::Https {
                client,
                base: url.clone(),
            },
            endpoint: Endpoint::Https(url),
            options,
            tls: Some(config),
        })
    }

    /// The endpoint this transport talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The TLS configuration of an HTTPS transport (websockets reuse it).
    pub fn tls_config(&self) -> Option<&rustls::ClientConfig> {
        self.tls.as_ref()
    }

    /// The transport-wide options.
    pub fn options(&self) -> &TransportOptions {
        &self.options
    }

    /// Sends an ordinary request (its answer is read whole) and returns the raw response: the
    /// timeout covers the whole exchange, body included.
    pub async fn send(&self, req: &Request, project: Option<&str>) -> Result<reqwest::Response> {
        self.exchange(req, project, None, Bound::Whole).await
    }

    /// Sends a transfer (a raw body either way: a file, an image, a backup) and returns the
    /// raw response: it may take as long as it needs while bytes keep moving, and times out
    /// when none have moved for the timeout.
    pub async fn send_transfer(
        &self,
        req: &Request,
        project: Option<&str>,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response> {
        self.exchange(req, project, body, Bound::Idle).await
    }

    /// The timeout that applies to `req`.
    fn limit(&self, req: &Request) -> Duration {
        req.timeout
            .or(self.options.timeout)
            .unwrap_or(DEFAULT_TIMEOUT)
    }

    async fn exchange(
        &self,
        req: &Request,
        project: Option<&str>,
        body: Option<reqwest::Body>,
        bound: Bound,
    ) -> Result<reqwest::Response> {
        let started = Instant::now();
        let limit = self.limit(req);
        let activity = Activity::new();
        // A raw body (a file, an image) goes as it is; otherwise the request's JSON, if any.
        let json = body.is_none() && req.body.is_some();
        let body = match (body, &req.body) {
            (Some(b), _) => Some(activity.upload(b)),
            (None, Some(json)) => Some(reqwest::Body::from(
                serde_json::to_vec(json).map_err(|e| Error::Decode(e.to_string()))?,
            )),
            (None, None) => None,
        };
        let whole = matches!(bound, Bound::Whole).then_some(limit);
        let sent = async {
            match &self.http {
                Http::Unix(unix) => {
                    let request = unix_request(req, project, json, body)?;
                    unix.send(request, whole)
                        .await
                        .map_err(|failure| self.map_failure(failure, req))
                }
                Http::Https { client, base } => {
                    let url = format!("{base}{}", req.path_and_query(project));
                    let mut builder = client.request(req.method.clone(), &url);
                    for (name, value) in &req.headers {
                        builder = builder.header(*name, value);
                    }
                    if json {
                        builder = builder.header("Content-Type", "application/json");
                    }
                    if let Some(whole) = whole {
                        builder = builder.timeout(whole);
                    }
                    if let Some(body) = body {
                        builder = builder.body(body);
                    }
                    builder.send().await.map_err(|e| self.map_error(e, req))
                }
            }
        };
        let result = match bound {
            Bound::Whole => sent.await,
            Bound::Idle => match activity.bound(limit, sent).await {
                Some(sent) => sent.map(|resp| {
                    let resp = http::Response::<reqwest::Body>::from(resp);
                    resp.map(|body| IdleLimited::wrap(body, limit)).into()
                }),
                None => Err(self.timed_out(req, limit)),
            },
        };
        if self.options.verbose {
            let outcome = match &result {
                Ok(resp) => resp.status().as_u16().to_string(),
                Err(_) => "failed".to_owned(),
            };
            eprintln!(
                "lxd: {} {}{} -> {} ({:.1} ms)",
                req.method,
                self.endpoint,
                req.redacted(project),
                outcome,
                started.elapsed().as_secs_f64() * 1000.0
            );
        }
        result
    }

    /// Sends a request and decodes LXD's envelope.
    pub async fn call(&self, req: &Request, project: Option<&str>) -> Result<Answer> {
        let resp = self.send(req, project).await?;
        self.decode(resp, req).await
    }

    /// Sends a `recursion=1` listing and returns its objects unparsed (see
    /// [`response::RawObject`]).
    pub async fn call_list(
        &self,
        req: &Request,
        project: Option<&str>,
    ) -> Result<Vec<response::RawObject>> {
        let resp = self.send(req, project).await?;
        let status = resp.status().as_u16();
        let body = self.read_document(resp, req).await?;
        response::parse_list(status, &body)
    }

    /// Reads a response's body and decodes LXD's envelope.
    pub async fn decode(&self, resp: reqwest::Response, req: &Request) -> Result<Answer> {
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = self.read_document(resp, req).await?;
        response::parse(status, &body, etag)
    }

    /// Reads a JSON answer whole, up to [`MAX_DOCUMENT_BYTES`]: an endless or huge body from a
    /// misbehaving server fails instead of filling memory.
    async fn read_document(&self, mut resp: reqwest::Response, req: &Request) -> Result<Bytes> {
        let too_large = || Error::ResponseTooLarge {
            what: format!("{} {}", req.method, req.path),
            limit_mib: MAX_DOCUMENT_BYTES >> 20,
        };
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES)
        {
            return Err(too_large());
        }
        let mut next = async || resp.chunk().await.map_err(|e| self.map_error(e, req));
        // Most answers arrive as one chunk: it is passed on without a copy.
        let Some(first) = next().await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = next().await? else {
            return Ok(first);
        };
        let mut whole = bytes::BytesMut::from(&first[..]);
        let mut chunk = Some(second);
        while let Some(part) = chunk {
            if (whole.len() + part.len()) as u64 > MAX_DOCUMENT_BYTES {
                return Err(too_large());
            }
            whole.extend_from_slice(&part);
            chunk = next().await?;
        }
        Ok(whole.freeze())
    }

    /// Passes a successful response on (its body unread, for streaming); a failure is decoded
    /// from LXD's error envelope.
    pub async fn success(
        &self,
        resp: reqwest::Response,
        req: &Request,
    ) -> Result<reqwest::Response> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        Err(match self.decode(resp, req).await {
            Err(e) => e,
            Ok(_) => Error::Api {
                status,
                message: format!("HTTP {status}"),
                operation: None,
            },
        })
    }

    /// Maps a failure on the unix socket to our error: `Timeout` or `Connection`.
    fn map_failure(&self, failure: Failure, req: &Request) -> Error {
        match failure {
            Failure::TimedOut => self.timed_out(req, self.limit(req)),
            Failure::Broken(e) => Error::Connection {
                endpoint: self.endpoint.to_string(),
                message: error_chain(e.as_ref()),
            },
        }
    }

    /// The `Timeout` of a request whose `limit` ran out.
    fn timed_out(&self, req: &Request, limit: Duration) -> Error {
        Error::Timeout {
            what: format!("{} {}", req.method, req.path),
            seconds: limit.as_secs_f64(),
            operation: None,
        }
    }

    /// Maps a reqwest failure to our error: pinning failures to `Tls`, time-outs to `Timeout`,
    /// everything else to `Connection`, with the whole cause chain in the message.
    pub fn map_error(&self, err: reqwest::Error, req: &Request) -> Error {
        let chain = error_chain(&err);
        if let Some(pos) = chain.find(tls::PIN_MISMATCH) {
            return Error::Tls(chain[pos..].to_owned());
        }
        if err.is_timeout() {
            // A connect that timed out ran out of the connect timeout, not the request's.
            let limit = match err.is_connect() {
                true => CONNECT_TIMEOUT,
                false => self.limit(req),
            };
            return self.timed_out(req, limit);
        }
        // The TLS handshake failed (a certificate, a protocol version, an alert): rustls's words.
        const TLS_FAILURES: [&str; 5] = [
            "invalid peer certificate",
            "received fatal alert",
            "peer is incompatible",
            "peer misbehaved",
            "InvalidCertificate",
        ];
        if self.tls.is_some() && TLS_FAILURES.iter().any(|m| chain.contains(m)) {
            return Error::Tls(format!(
                "TLS handshake with {} failed: {chain}",
                self.endpoint
            ));
        }
        Error::Connection {
            endpoint: self.endpoint.to_string(),
            message: chain,
        }
    }
}

/// Builds the request sent on the unix socket: origin-form URI, `Host` set as HTTP/1.1 asks.
fn unix_request(
    req: &Request,
    project: Option<&str>,
    json: bool,
    body: Option<reqwest::Body>,
) -> Result<http::Request<reqwest::Body>> {
    let mut builder = http::Request::builder()
        .method(req.method.clone())
        .uri(req.path_and_query(project))
        .header(http::header::HOST, "lxd");
    for (name, value) in &req.headers {
        builder = builder.header(*name, value);
    }
    if json {
        builder = builder.header(http::header::CONTENT_TYPE, "application/json");
    }
    builder
        .body(body.unwrap_or_else(|| reqwest::Body::from(Bytes::new())))
        .map_err(|e| {
            Error::InvalidArgument(format!("cannot send {} {}: {e}", req.method, req.path))
        })
}

/// The messages of an error and all its sources, without repeats.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_display_as_users_write_them() {
        assert_eq!(
            Endpoint::Unix("/var/lib/lxd/unix.socket".into()).to_string(),
            "unix:/var/lib/lxd/unix.socket"
        );
        assert_eq!(
            Endpoint::Https("https://h:8443".into()).to_string(),
            "https://h:8443"
        );
    }

    #[test]
    fn requests_without_a_timeout_get_the_default() {
        let transport =
            Transport::unix("/nowhere".into(), TransportOptions::default()).expect("transport");
        assert_eq!(transport.limit(&Request::get("/1.0")), DEFAULT_TIMEOUT);
        let long_poll = Request::get("/1.0/operations/x/wait").timeout(Duration::from_secs(600));
        assert_eq!(transport.limit(&long_poll), Duration::from_secs(600));
    }

    #[test]
    fn error_chains_skip_repeated_messages() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        assert_eq!(error_chain(&io), "No such file");
    }
}
