//! The transport: HTTP/1.1 on kept-alive connections to one remote, over the unix socket or
//! HTTPS with a pinned server certificate ([`super::http1`]). It sends [`Request`]s, upgrades
//! connections (websockets, SFTP), decodes envelopes, and turns every failure into an
//! [`Error`]. It is the only module that speaks the HTTP library's types: everything above it
//! deals in [`Body`], [`Response`] and [`Upgraded`].

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::body::{self, Body, BoxError, Response, Upgraded};
use super::error::{Error, Result};
use super::http1::{Dialer, Failure, Http1};
use super::idle::{Activity, IdleLimited};
use super::request::Request;
use super::response::{self, Answer};
use super::tls::{self, TlsSettings};

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
    http: Http1,
    endpoint: Endpoint,
    options: TransportOptions,
}

/// How long connecting may take (to the unix socket too).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest JSON answer read: far past any real one (a listing of thousands of instances
/// with their state is a few tens of MiB).
pub const MAX_DOCUMENT_BYTES: u64 = 256 << 20;
/// The timeout when none is given: a server that stops answering is given up on, and a
/// healthy one never takes this long over an ordinary request or between a transfer's bytes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

impl Transport {
    /// A transport over a unix socket.
    pub fn unix(path: PathBuf, options: TransportOptions) -> Result<Transport> {
        Ok(Transport {
            http: Http1::new(Dialer::Unix(path.clone()), CONNECT_TIMEOUT),
            endpoint: Endpoint::Unix(path),
            options,
        })
    }

    /// A transport over HTTPS, TLS 1.3 only, with the server certificate pinned.
    pub fn https(
        url: &str,
        settings: &TlsSettings,
        options: TransportOptions,
    ) -> Result<Transport> {
        let url = url.trim_end_matches('/').to_owned();
        let authority = https_authority(&url)?;
        let config = tls::client_config(settings)?;
        let dialer = Dialer::Tls {
            server_name: server_name(&authority)?,
            authority,
            config: Arc::new(config),
        };
        Ok(Transport {
            http: Http1::new(dialer, CONNECT_TIMEOUT),
            endpoint: Endpoint::Https(url),
            options,
        })
    }

    /// A transport to an in-process fake server (see [`super::fake`]); `dial` opens each
    /// connection.
    #[cfg(test)]
    pub fn in_memory(
        dial: Arc<dyn Fn() -> tokio::io::DuplexStream + Send + Sync>,
        options: TransportOptions,
    ) -> Transport {
        Transport {
            http: Http1::new(Dialer::Memory(dial), CONNECT_TIMEOUT),
            endpoint: Endpoint::Unix("fake".into()),
            options,
        }
    }

    /// The endpoint this transport talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The transport-wide options.
    pub fn options(&self) -> &TransportOptions {
        &self.options
    }

    /// Sends an ordinary request (its answer is read whole) and returns the raw response: the
    /// timeout covers the whole exchange, body included.
    pub async fn send(&self, req: &Request, project: Option<&str>) -> Result<Response> {
        self.exchange(req, project, None, Bound::Whole).await
    }

    /// Sends a transfer (a raw body either way: a file, an image, a backup) and returns the
    /// raw response: it may take as long as it needs while bytes keep moving, and times out
    /// when none have moved for the timeout.
    pub async fn send_transfer(
        &self,
        req: &Request,
        project: Option<&str>,
        body: Option<Body>,
    ) -> Result<Response> {
        self.exchange(req, project, body, Bound::Idle).await
    }

    /// Sends a request carrying `Upgrade` headers and returns the connection once the server
    /// switched protocols (101); any other answer is decoded as an error. The connection is
    /// its own, with the transport's connect timeout, TLS and log; the exchange is bounded by
    /// the request's timeout.
    pub async fn upgrade(
        &self,
        req: &Request,
        project: Option<&str>,
    ) -> Result<(Response, Upgraded)> {
        let resp = self.send(req, project).await?;
        if resp.status() != 101 {
            let status = resp.status();
            self.success(resp, req).await?;
            return Err(Error::Decode(format!(
                "{} answered {status} instead of switching protocols",
                req.path
            )));
        }
        let mut resp = resp.into_http();
        let upgraded = hyper::upgrade::on(&mut resp)
            .await
            .map_err(|e| self.broken(Box::new(e)))?;
        Ok((Response::from_http(resp), Upgraded::new(upgraded)))
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
        body: Option<Body>,
        bound: Bound,
    ) -> Result<Response> {
        let started = Instant::now();
        let limit = self.limit(req);
        let activity = Activity::new();
        // A raw body (a file, an image) goes as it is; otherwise the request's JSON, if any.
        let json = body.is_none() && req.body.is_some();
        let body = match (body, &req.body) {
            (Some(b), _) => activity.upload(b),
            (None, Some(json)) => {
                Body::from(serde_json::to_vec(json).map_err(|e| Error::Decode(e.to_string()))?)
            }
            (None, None) => Body::empty(),
        };
        let request = self.http_request(req, project, json, body)?;
        let whole = matches!(bound, Bound::Whole).then_some(limit);
        let sent = async {
            self.http
                .send(request, whole)
                .await
                .map_err(|failure| self.map_failure(failure, req))
        };
        let result = match bound {
            Bound::Whole => sent.await,
            Bound::Idle => match activity.bound(limit, sent).await {
                Some(sent) => sent.map(|resp| resp.map(|body| IdleLimited::wrap(body, limit))),
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
        result.map(Response::from_http)
    }

    /// The request as sent: origin-form URI, `Host` set as HTTP/1.1 asks.
    fn http_request(
        &self,
        req: &Request,
        project: Option<&str>,
        json: bool,
        body: Body,
    ) -> Result<http::Request<Body>> {
        let mut builder = http::Request::builder()
            .method(req.method.clone())
            .uri(req.path_and_query(project))
            .header(http::header::HOST, self.http.host());
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        if json {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        builder.body(body).map_err(|e| {
            Error::InvalidArgument(format!("cannot send {} {}: {e}", req.method, req.path))
        })
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
        let status = resp.status();
        let body = self.read_document(resp, req).await?;
        response::parse_list(status, &body)
    }

    /// Reads a response's body and decodes LXD's envelope.
    pub async fn decode(&self, resp: Response, req: &Request) -> Result<Answer> {
        let status = resp.status();
        let etag = resp.header("etag").map(str::to_owned);
        let body = self.read_document(resp, req).await?;
        response::parse(status, &body, etag)
    }

    /// Reads a JSON answer whole, up to [`MAX_DOCUMENT_BYTES`]: an endless or huge body from a
    /// misbehaving server fails instead of filling memory.
    async fn read_document(&self, resp: Response, req: &Request) -> Result<Bytes> {
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
        resp.into_body()
            .collect(MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| self.body_error(e, req))?
            .ok_or_else(too_large)
    }

    /// Passes a successful response on (its body unread, for streaming); a failure is decoded
    /// from LXD's error envelope.
    pub async fn success(&self, resp: Response, req: &Request) -> Result<Response> {
        if resp.is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        Err(match self.decode(resp, req).await {
            Err(e) => e,
            Ok(_) => Error::Api {
                status,
                message: format!("HTTP {status}"),
                operation: None,
            },
        })
    }

    /// The error a body that failed while being read (or sent) for `req` means: `Timeout`
    /// when its time ran out, else `Connection`.
    pub fn body_error(&self, err: BoxError, req: &Request) -> Error {
        match body::timed_out(&*err) {
            true => self.timed_out(req, self.limit(req)),
            false => self.broken(err),
        }
    }

    /// Maps a failed exchange to our error, by what failed.
    fn map_failure(&self, failure: Failure, req: &Request) -> Error {
        match failure {
            Failure::ConnectTimedOut => self.timed_out(req, CONNECT_TIMEOUT),
            Failure::TimedOut => self.timed_out(req, self.limit(req)),
            Failure::Tls(refused) => tls::handshake_error(&self.endpoint, refused),
            Failure::Broken(e) if body::timed_out(&*e) => self.timed_out(req, self.limit(req)),
            Failure::Broken(e) => self.broken(e),
        }
    }

    /// The `Connection` error of a connection that could not be made or broke.
    fn broken(&self, source: BoxError) -> Error {
        Error::Connection {
            endpoint: self.endpoint.to_string(),
            source,
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
}

/// The `host:port` of an HTTPS URL (port 443 when it names none).
fn https_authority(url: &str) -> Result<String> {
    let bad = |why: &str| Error::InvalidArgument(format!("'{url}' is not an HTTPS address: {why}"));
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    if uri.scheme_str() != Some("https") {
        return Err(bad("it does not start with https://"));
    }
    let authority = uri.authority().ok_or_else(|| bad("it names no host"))?;
    Ok(format!(
        "{}:{}",
        authority.host(),
        authority.port_u16().unwrap_or(443)
    ))
}

/// The TLS server name of `host:port` (the pinning verifier does not use it, rustls needs one).
fn server_name(authority: &str) -> Result<rustls_pki_types::ServerName<'static>> {
    let host = match authority.rsplit_once(':') {
        Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
        None => authority,
    };
    rustls_pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| Error::InvalidArgument(format!("bad host '{host}': {e}")))
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
    fn https_addresses_give_host_and_port() {
        let authority = |url: &str| https_authority(url).ok();
        assert_eq!(authority("https://h:8443").as_deref(), Some("h:8443"));
        assert_eq!(authority("https://h").as_deref(), Some("h:443"));
        assert_eq!(
            authority("https://[::1]:8443").as_deref(),
            Some("[::1]:8443")
        );
        assert_eq!(authority("https://[::1]").as_deref(), Some("[::1]:443"));
        assert_eq!(authority("http://h:8443"), None);
        assert!(server_name("[::1]:8443").is_ok());
        assert!(server_name("lxd.example:8443").is_ok());
    }
}
