//! The one error type of the LXD client.
//!
//! Every failure is one variant of [`Error`]; LXD's own messages are kept verbatim so that a user
//! sees exactly what the daemon said. [`Error::kind`] gives the stable category that the script
//! layer exposes (`NotFound`, `Conflict`, ...).

use std::fmt;

use super::body::BoxError;

/// Result alias for the LXD client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The stable category of an [`Error`], as scripts see it in `e.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// LXD answered 404.
    NotFound,
    /// LXD answered 409.
    Conflict,
    /// LXD answered 403, or the client is not trusted.
    Forbidden,
    /// LXD answered 412: the object changed since it was loaded.
    PreconditionFailed,
    /// Any other error LXD answered with.
    ApiError,
    /// An asynchronous operation ended in failure.
    OperationFailed,
    /// A timeout ran out.
    Timeout,
    /// The daemon could not be reached or dropped the connection.
    Connection,
    /// Certificate pinning or the TLS setup failed.
    Tls,
    /// The server lacks an API extension the call needs.
    ExtensionMissing,
    /// A call got a wrong type or value.
    InvalidArgument,
    /// A local file could not be read or written (missing, denied, a full disk).
    Local,
    /// The call was cancelled (Ctrl-C).
    Cancelled,
}

impl ErrorKind {
    /// The name scripts see.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "NotFound",
            ErrorKind::Conflict => "Conflict",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::PreconditionFailed => "PreconditionFailed",
            ErrorKind::ApiError => "ApiError",
            ErrorKind::OperationFailed => "OperationFailed",
            ErrorKind::Timeout => "Timeout",
            ErrorKind::Connection => "Connection",
            ErrorKind::Tls => "Tls",
            ErrorKind::ExtensionMissing => "ExtensionMissing",
            ErrorKind::InvalidArgument => "InvalidArgument",
            ErrorKind::Local => "Local",
            ErrorKind::Cancelled => "Cancelled",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong talking to LXD.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// LXD answered with an error envelope (or an error HTTP status).
    #[error("{message}")]
    Api {
        /// The HTTP status / LXD `error_code` (404, 409, ...).
        status: u16,
        /// LXD's message, verbatim.
        message: String,
        /// The operation involved, if any.
        operation: Option<String>,
    },
    /// An asynchronous operation ended in failure (status Failure or Cancelled).
    #[error("{message}")]
    OperationFailed {
        /// The operation's `err`, verbatim.
        message: String,
        /// The operation id.
        operation: String,
        /// The operation's final status code (400 Failure, 401 Cancelled).
        status_code: u16,
        /// The operation's metadata at the end (exec puts `return` there).
        metadata: serde_json::Value,
    },
    /// A timeout ran out.
    #[error("{what} timed out after {seconds}s")]
    Timeout {
        /// What was being waited for.
        what: String,
        /// The timeout that ran out, in seconds.
        seconds: f64,
        /// The operation involved, if any.
        operation: Option<String>,
    },
    /// The daemon could not be reached, or the connection broke.
    #[error("cannot reach LXD at {endpoint}: {}", chain(source.as_ref()))]
    Connection {
        /// The endpoint that was tried.
        endpoint: String,
        /// What went wrong.
        #[source]
        source: BoxError,
    },
    /// TLS could not be set up (certificate and key files, the client identity).
    #[error("{0}")]
    Tls(String),
    /// The TLS handshake failed: the server speaks no TLS 1.3, refused our certificate, or
    /// presented one that is invalid.
    #[error("TLS handshake with {endpoint} failed: {source}")]
    TlsHandshake {
        /// The server.
        endpoint: String,
        /// What rustls found.
        #[source]
        source: rustls::Error,
    },
    /// The server presented another certificate than the one pinned for it.
    #[error("TLS handshake with {endpoint} failed: {source}")]
    PinMismatch {
        /// The server.
        endpoint: String,
        /// Both certificates.
        #[source]
        source: super::tls::PinMismatch,
    },
    /// A response could not be decoded.
    #[error("unexpected answer from LXD: {0}")]
    Decode(String),
    /// An answer that should be a JSON document went past the size any real one has (a
    /// misbehaving server or proxy): reading it on would only fill memory.
    #[error(
        "the answer to {what} is larger than {limit_mib} MiB, more than any LXD answer; is something other than LXD or Incus answering?"
    )]
    ResponseTooLarge {
        /// The request, as `METHOD /path`.
        what: String,
        /// The cap, in MiB.
        limit_mib: u64,
    },
    /// The server lacks a needed API extension.
    #[error("the server lacks the API extension '{0}' that this call needs")]
    ExtensionMissing(String),
    /// Bad input from the caller.
    #[error("{0}")]
    InvalidArgument(String),
    /// A local file could not be read or written: what was being done, and to which path.
    #[error("cannot {action} {}: {source}", path.display())]
    Local {
        /// What was being done (`read`, `write`, `create`, ...).
        action: &'static str,
        /// The local path.
        path: std::path::PathBuf,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The client configuration (remotes, certificates) is unusable.
    #[error("{0}")]
    Config(String),
    /// The call was cancelled by the user.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// A failed operation whose message begins with what it was doing (`downloading
    /// 'debian/12' from https://images.example`), where LXD's own text does not say; any other
    /// error unchanged.
    pub fn doing(self, what: &str) -> Error {
        match self {
            Error::OperationFailed {
                message,
                operation,
                status_code,
                metadata,
            } => Error::OperationFailed {
                message: format!("{what}: {message}"),
                operation,
                status_code,
                metadata,
            },
            other => other,
        }
    }

    /// A `NotFound` that LXD answered, said again as `missing` says (with what was looked for
    /// and where); any other error unchanged.
    pub fn naming_missing(self, missing: impl FnOnce() -> String) -> Error {
        match self {
            Error::Api {
                status: 404,
                operation,
                ..
            } => Error::Api {
                status: 404,
                message: missing(),
                operation,
            },
            other => other,
        }
    }

    /// The stable category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Api { status, .. } => match status {
                404 => ErrorKind::NotFound,
                409 => ErrorKind::Conflict,
                401 | 403 => ErrorKind::Forbidden,
                412 => ErrorKind::PreconditionFailed,
                _ => ErrorKind::ApiError,
            },
            Error::OperationFailed { .. } => ErrorKind::OperationFailed,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Connection { .. } => ErrorKind::Connection,
            Error::Tls(_) | Error::TlsHandshake { .. } | Error::PinMismatch { .. } => {
                ErrorKind::Tls
            }
            Error::Decode(_) | Error::ResponseTooLarge { .. } => ErrorKind::ApiError,
            Error::ExtensionMissing(_) => ErrorKind::ExtensionMissing,
            Error::InvalidArgument(_) | Error::Config(_) => ErrorKind::InvalidArgument,
            Error::Local { .. } => ErrorKind::Local,
            Error::Cancelled => ErrorKind::Cancelled,
        }
    }

    /// LXD's status code (404, 409, ...) where LXD gave one.
    pub fn status_code(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            Error::OperationFailed { status_code, .. } => Some(*status_code),
            _ => None,
        }
    }

    /// The operation id involved, where there was one.
    pub fn operation(&self) -> Option<&str> {
        match self {
            Error::Api { operation, .. } | Error::Timeout { operation, .. } => operation.as_deref(),
            Error::OperationFailed { operation, .. } => Some(operation),
            _ => None,
        }
    }

    /// A failure to `action` the local `path`.
    pub fn local(
        action: &'static str,
        path: impl Into<std::path::PathBuf>,
        source: std::io::Error,
    ) -> Error {
        Error::Local {
            action,
            path: path.into(),
            source,
        }
    }

    /// True for a 404 answer.
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }
}

/// The messages of an error and all its sources, without repeats.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
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

/// `exists()` from a lookup: found is true, `NotFound` is false, other errors stay errors.
pub fn found<T>(lookup: Result<T>) -> Result<bool> {
    match lookup {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_skip_repeated_messages() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        assert_eq!(chain(&io), "No such file");
        let wrapped = std::io::Error::other(Box::new(io));
        assert_eq!(chain(&wrapped), "No such file");
    }
}
