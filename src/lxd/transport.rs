//! The transport: one pooled HTTP/1.1 keep-alive connection pool per remote, over the unix socket
//! or HTTPS with a pinned server certificate. It sends [`Request`]s and decodes envelopes.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::error::{Error, Result};
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
    /// The timeout of each ordinary request (long polls set their own).
    pub timeout: Option<Duration>,
    /// Log each request on stderr.
    pub verbose: bool,
}

/// Sends requests to one LXD server over a pooled, keep-alive HTTP/1.1 client.
#[derive(Debug)]
pub struct Transport {
    http: reqwest::Client,
    base: String,
    endpoint: Endpoint,
    options: TransportOptions,
    tls: Option<rustls::ClientConfig>,
}

/// How long an idle pooled connection is kept: short, since the daemon may restart.
const POOL_IDLE: Duration = Duration::from_secs(10);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// reqwest needs a process-wide rustls provider even for plain HTTP on a socket: ours is ring.
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
        install_crypto_provider();
        // The socket speaks plain HTTP: an empty trust store keeps reqwest from reading the
        // system's certificates at start-up, which costs milliseconds for nothing.
        let plain = rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        // No pooling on the socket. LXD 5.0.2 stops serving its unix socket, for every client,
        // while a connection to it sits open without having sent a request (measured: for as
        // long as it stays open). A pool makes exactly such connections: when a request finds
        // no idle connection it starts one, and if another comes back first, the new one is
        // parked unused until the idle timeout. A fresh connection per request costs little on
        // a local socket and never sits silent.
        let http = reqwest::Client::builder()
            .unix_socket(path.clone())
            .tls_backend_preconfigured(plain)
            .http1_only()
            .pool_max_idle_per_host(0)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Transport {
            http,
            base: "http://lxd".to_owned(),
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
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(config.clone())
            .http1_only()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_idle_timeout(POOL_IDLE)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| Error::Config(format!("cannot set up the HTTPS client: {e}")))?;
        Ok(Transport {
            http,
            base: url.clone(),
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

    /// Sends a request and returns the raw response (for streams and file bodies).
    pub async fn send(
        &self,
        req: &Request,
        project: Option<&str>,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response> {
        let started = Instant::now();
        let url = format!("{}{}", self.base, req.path_and_query(project));
        let mut builder = self.http.request(req.method.clone(), &url);
        for (name, value) in &req.headers {
            builder = builder.header(*name, value);
        }
        if let Some(timeout) = req.timeout.or(self.options.timeout) {
            builder = builder.timeout(timeout);
        }
        builder = match (body, &req.body) {
            (Some(b), _) => builder.body(b),
            (None, Some(json)) => builder
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(json).map_err(|e| Error::Decode(e.to_string()))?),
            (None, None) => builder,
        };
        let result = builder.send().await;
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
        result.map_err(|e| self.map_error(e, req))
    }

    /// Sends a request and decodes LXD's envelope.
    pub async fn call(&self, req: &Request, project: Option<&str>) -> Result<Answer> {
        let resp = self.send(req, project, None).await?;
        self.decode(resp, req).await
    }

    /// Reads a response's body and decodes LXD's envelope.
    pub async fn decode(&self, resp: reqwest::Response, req: &Request) -> Result<Answer> {
        let status = resp.status().as_u16();
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.bytes().await.map_err(|e| self.map_error(e, req))?;
        response::parse(status, &body, etag)
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

    /// Maps a reqwest failure to our error: pinning failures to `Tls`, time-outs to `Timeout`,
    /// everything else to `Connection`, with the whole cause chain in the message.
    pub fn map_error(&self, err: reqwest::Error, req: &Request) -> Error {
        let chain = error_chain(&err);
        if let Some(pos) = chain.find(tls::PIN_MISMATCH) {
            return Error::Tls(chain[pos..].to_owned());
        }
        if err.is_timeout() {
            return Error::Timeout {
                what: format!("{} {}", req.method, req.path),
                seconds: req
                    .timeout
                    .or(self.options.timeout)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or_default(),
                operation: None,
            };
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
    fn error_chains_skip_repeated_messages() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        assert_eq!(error_chain(&io), "No such file");
    }
}
