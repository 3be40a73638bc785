//! TLS for HTTPS remotes: TLS 1.3 only, the client certificate, and the server certificate pinned.
//!
//! LXD's server certificate is self-signed and not a CA, so ordinary chain validation fails. As
//! `lxc` and pylxd do, we pin it: the presented leaf must equal the saved certificate byte for
//! byte. The handshake signature is still verified, so a peer that merely replays the certificate
//! without its key is refused.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use super::error::{Error, Result};

/// The server presented another certificate than the one pinned for it: both fingerprints,
/// to compare with what `lxc remote` or the server's admin shows.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "server certificate does not match the pinned certificate {}: expected SHA-256 {expected}, presented {presented}",
    pinned.display()
)]
pub struct PinMismatch {
    /// Where the pinned certificate came from.
    pub pinned: PathBuf,
    /// The pinned certificate's fingerprint.
    pub expected: String,
    /// The presented certificate's fingerprint.
    pub presented: String,
}

/// The error a failed handshake with `endpoint` is: a pin mismatch (found by its type among
/// the verifier's errors), else what rustls found.
pub fn handshake_error(endpoint: &super::transport::Endpoint, refused: rustls::Error) -> Error {
    if let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = &refused
        && let Some(mismatch) = other.0.downcast_ref::<PinMismatch>()
    {
        return Error::PinMismatch {
            endpoint: endpoint.to_string(),
            source: mismatch.clone(),
        };
    }
    Error::TlsHandshake {
        endpoint: endpoint.to_string(),
        source: refused,
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone)]
pub enum ServerVerification {
    /// The presented certificate must equal this one (DER).
    Pinned {
        /// The pinned certificate, DER.
        der: Vec<u8>,
        /// Where it came from, for error messages.
        source: PathBuf,
    },
    /// No verification at all: only when the user said `verify: false`.
    Disabled,
}

/// The TLS settings of one HTTPS remote.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The client certificate and key files (PEM), if any.
    pub client_identity: Option<(PathBuf, PathBuf)>,
    /// How the server is verified.
    pub server: ServerVerification,
}

/// The SHA-256 fingerprint of a DER certificate, lowercase hex, as `lxc` prints it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Reads the first certificate of a PEM file.
pub fn read_certificate(path: &Path) -> Result<Vec<u8>> {
    let cert = CertificateDer::from_pem_file(path).map_err(|e| {
        Error::Tls(format!(
            "cannot read certificate {}: {e}; give a PEM certificate file",
            path.display()
        ))
    })?;
    Ok(cert.as_ref().to_vec())
}

/// Builds the rustls configuration: TLS 1.3, HTTP/1.1 by ALPN, client auth when an identity is set.
pub fn client_config(settings: &TlsSettings) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PinnedVerifier {
        expected: settings.server.clone(),
        algorithms: provider.signature_verification_algorithms,
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &settings.client_identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    Error::Tls(format!(
                        "cannot read client certificate {}: {e}",
                        cert.display()
                    ))
                })?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                Error::Tls(format!("cannot read client key {}: {e}", key.display()))
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Tls(format!("client certificate rejected: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[derive(Debug)]
struct PinnedVerifier {
    expected: ServerVerification,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match &self.expected {
            ServerVerification::Disabled => Ok(ServerCertVerified::assertion()),
            ServerVerification::Pinned { der, source } => {
                if der.as_slice() == end_entity.as_ref() {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::InvalidCertificate(
                        rustls::CertificateError::Other(rustls::OtherError(Arc::new(
                            PinMismatch {
                                pinned: source.clone(),
                                expected: fingerprint(der),
                                presented: fingerprint(end_entity.as_ref()),
                            },
                        ))),
                    ))
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The configuration only offers TLS 1.3; a TLS 1.2 signature is never acceptable.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_lowercase_sha256_hex() {
        assert_eq!(
            fingerprint(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
