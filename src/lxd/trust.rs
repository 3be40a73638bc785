//! Trust: adding client certificates (`POST /1.0/certificates`) and trust tokens.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::Serialize;
use serde_json::{Value, json};

use super::client::Client;
use super::error::{Error, Result};
use super::request::Request;
use super::tls;

/// A certificate as LXD takes it: base64 DER without PEM armour, and its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateData {
    /// Base64 of the DER bytes.
    pub base64_der: String,
    /// SHA-256 fingerprint, lowercase hex.
    pub fingerprint: String,
}

/// Reads a PEM certificate (text).
pub fn certificate_from_pem(pem: &str) -> Result<CertificateData> {
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| Error::InvalidArgument(format!("not a PEM certificate: {e}")))?;
    Ok(CertificateData {
        base64_der: STANDARD.encode(der.as_ref()),
        fingerprint: tls::fingerprint(der.as_ref()),
    })
}

/// What trusting a client certificate takes.
#[derive(Debug, Clone, Default)]
pub struct TrustRequest {
    /// A name for the certificate.
    pub name: String,
    /// The certificate; `None` makes the server take the one this connection presents.
    pub certificate: Option<CertificateData>,
    /// The legacy trust password (LXD before 6.1).
    pub password: Option<String>,
    /// A trust token (servers with `explicit_trust_token`).
    pub trust_token: Option<String>,
    /// Restrict the certificate to `projects`.
    pub restricted: bool,
    /// The projects of a restricted certificate.
    pub projects: Vec<String>,
}

/// The body of `POST /1.0/certificates`.
pub fn trust_body(req: &TrustRequest) -> Value {
    let mut body = json!({
        "type": "client",
        "name": req.name,
        "restricted": req.restricted,
        "projects": req.projects,
    });
    if let Some(cert) = &req.certificate {
        body["certificate"] = cert.base64_der.as_str().into();
    }
    if let Some(password) = &req.password {
        body["password"] = password.as_str().into();
    }
    if let Some(token) = &req.trust_token {
        body["trust_token"] = token.as_str().into();
    }
    body
}

/// Adds a certificate to the server's trust store.
pub async fn trust(client: &Client, req: &TrustRequest) -> Result<()> {
    let req = Request::post("/1.0/certificates", trust_body(req)).server_wide();
    if let Some(op) = client.start(&req).await? {
        client.wait_operation(op.id(), None).await?;
    }
    Ok(())
}

/// The request that makes this connection's own certificate trusted with `secret`, in the
/// fields the server reads. An untrusted client cannot tell LXD from Incus (`GET /1.0` says
/// nothing of the server before trust), so a token goes in both fields that servers read one of:
/// `trust_token` (Incus, which has no passwords; LXD with `explicit_trust_token`) and
/// `password` (LXD 5.0, which reads tokens there). Each server ignores the field it lacks.
/// With `explicit_trust_token` a token goes in `trust_token` alone; a password always goes in
/// `password`.
pub fn authenticate_request(server_info: &Value, secret: &str) -> TrustRequest {
    let secret = secret.trim().to_owned();
    let explicit = server_info
        .get("api_extensions")
        .and_then(Value::as_array)
        .is_some_and(|e| e.iter().any(|x| x == "explicit_trust_token"));
    let (password, trust_token) = match (is_token(&secret), explicit) {
        (true, true) => (None, Some(secret)),
        (true, false) => (Some(secret.clone()), Some(secret)),
        (false, _) => (Some(secret), None),
    };
    TrustRequest {
        password,
        trust_token,
        ..TrustRequest::default()
    }
}

/// Makes this connection's certificate trusted with a token or a password (see
/// [`authenticate_request`]). A password the server refuses is `Forbidden` with what to try:
/// Incus, and LXD from 6.1, take trust tokens only.
pub async fn authenticate(client: &Client, server_info: &Value, secret: &str) -> Result<()> {
    let request = authenticate_request(server_info, secret);
    match trust(client, &request).await {
        Err(Error::Api {
            status: 403,
            message,
            operation,
        }) if request.trust_token.is_none() => Err(Error::Api {
            status: 403,
            message: format!(
                "{message}: the server refused the trust password; it is wrong, or the server takes trust tokens only (Incus, LXD 6.1 and later): make one with `incus config trust add NAME` or `lxc config trust add NAME` (or `client.certificates.create_token(NAME)`) and pass that"
            ),
            operation,
        }),
        other => other,
    }
}

#[derive(Serialize)]
struct Token<'a> {
    client_name: &'a str,
    fingerprint: &'a str,
    addresses: &'a Value,
    secret: &'a str,
    expires_at: &'a str,
}

/// Creates a trust token for a new client, as `lxc config trust add` prints it.
pub async fn create_token(client: &Client, name: &str) -> Result<String> {
    let body = json!({ "name": name, "type": "client", "token": true });
    let op = client
        .operation(&Request::post("/1.0/certificates", body).server_wide())
        .await?;
    let meta = op.metadata();
    let text = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or_default();
    if text("secret").is_empty() {
        return Err(Error::Decode(format!(
            "the token operation has no secret: {meta}"
        )));
    }
    let token = Token {
        client_name: name,
        fingerprint: text("fingerprint"),
        addresses: meta.get("addresses").unwrap_or(&Value::Null),
        secret: text("secret"),
        expires_at: meta
            .get("expiresAt")
            .and_then(Value::as_str)
            .unwrap_or("0001-01-01T00:00:00Z"),
    };
    let json = serde_json::to_vec(&token).map_err(|e| Error::Decode(e.to_string()))?;
    Ok(STANDARD.encode(json))
}

/// True when `secret` looks like a trust token (base64 JSON with a `secret`), not a password.
pub fn is_token(secret: &str) -> bool {
    STANDARD
        .decode(secret.trim())
        .ok()
        .and_then(|raw| serde_json::from_slice::<Value>(&raw).ok())
        .is_some_and(|v| v.get("secret").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_told_from_passwords() {
        let token = STANDARD.encode(br#"{"client_name":"x","secret":"s"}"#);
        assert!(is_token(&token));
        assert!(is_token(&format!(" {token}\n")));
        assert!(!is_token("a-password"));
        assert!(!is_token(&STANDARD.encode(b"{}")));
    }

    proptest::proptest! {
        /// Any secret is judged token or password without a panic.
        #[test]
        fn any_secret_is_handled(secret in ".{0,80}") {
            let _ = is_token(&secret);
            let _ = certificate_from_pem(&secret);
        }
    }

    #[test]
    fn secrets_go_where_each_server_reads_them() {
        let token = STANDARD.encode(br#"{"client_name":"x","secret":"s"}"#);
        let untrusted = json!({"api_extensions": ["certificate_token"], "auth": "untrusted"});
        let explicit = json!({"api_extensions": ["explicit_trust_token"], "auth": "untrusted"});
        let fields = |info: &Value, secret: &str| {
            let r = authenticate_request(info, secret);
            (r.password.is_some(), r.trust_token.is_some())
        };
        assert_eq!(fields(&untrusted, &token), (true, true), "LXD 5.0 or Incus");
        assert_eq!(fields(&untrusted, "pw"), (true, false));
        assert_eq!(fields(&explicit, &token), (false, true));
        assert_eq!(fields(&explicit, "pw"), (true, false));
    }

    #[test]
    fn trust_bodies_carry_what_was_given() {
        let body = trust_body(&TrustRequest {
            name: "n".into(),
            trust_token: Some("t".into()),
            ..TrustRequest::default()
        });
        assert_eq!(body["trust_token"], "t");
        assert!(body.get("password").is_none() && body.get("certificate").is_none());
    }
}
