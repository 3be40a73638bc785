//! Requests as plain data, built by pure functions and sent by the transport.
//!
//! Nothing here touches the network: every API module builds a [`Request`] and the transport
//! sends it. That keeps URL, query and body construction unit-testable.

use std::time::Duration;

pub use http::Method;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::Value;

/// Characters escaped inside one path segment (an instance, snapshot or image name).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Characters escaped inside a query value.
const QUERY_VALUE: &AsciiSet = &SEGMENT.add(b'&').add(b'=').add(b'+').add(b';');

/// Escapes one path segment.
pub fn segment(s: &str) -> String {
    utf8_percent_encode(s, SEGMENT).to_string()
}

/// A header of the protocol that LXD spells `X-LXD-*` and Incus `X-Incus-*` (Incus renamed the
/// family in 2023 and reads only its own). Requests carry both spellings, so one request serves
/// either server; answers are read in either spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerHeader {
    /// A file's type (`file`, `directory`, `symlink`).
    Type,
    /// A file's permission bits, in octal.
    Mode,
    /// A file's owner.
    Uid,
    /// A file's group.
    Gid,
    /// `overwrite` or `append`.
    Write,
    /// Whether an uploaded image is public.
    Public,
    /// The file name of an uploaded image.
    Filename,
    /// The name of an instance imported from a backup.
    Name,
    /// The storage pool of an instance imported from a backup.
    Pool,
}

impl ServerHeader {
    /// The header's names: LXD's spelling, then Incus's.
    pub fn names(self) -> [&'static str; 2] {
        match self {
            ServerHeader::Type => ["X-LXD-type", "X-Incus-type"],
            ServerHeader::Mode => ["X-LXD-mode", "X-Incus-mode"],
            ServerHeader::Uid => ["X-LXD-uid", "X-Incus-uid"],
            ServerHeader::Gid => ["X-LXD-gid", "X-Incus-gid"],
            ServerHeader::Write => ["X-LXD-write", "X-Incus-write"],
            ServerHeader::Public => ["X-LXD-public", "X-Incus-public"],
            ServerHeader::Filename => ["X-LXD-filename", "X-Incus-filename"],
            ServerHeader::Name => ["X-LXD-name", "X-Incus-name"],
            ServerHeader::Pool => ["X-LXD-pool", "X-Incus-pool"],
        }
    }

    /// The header's value in an answer, in whichever spelling the server used.
    pub fn read(self, headers: &http::HeaderMap) -> Option<&str> {
        self.names()
            .into_iter()
            .find_map(|name| headers.get(name))
            .and_then(|v| v.to_str().ok())
    }
}

/// An HTTP request to LXD, before the transport adds the project and sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// The path below the server root, e.g. `/1.0/instances/c1`, already escaped.
    pub path: String,
    /// Query parameters, unescaped.
    pub query: Vec<(String, String)>,
    /// A JSON body, if any.
    pub body: Option<Value>,
    /// Extra headers (e.g. `If-Match`).
    pub headers: Vec<(&'static str, String)>,
    /// Overrides the client's per-request timeout (long polls need more).
    pub timeout: Option<Duration>,
    /// Whether the project query applies (false for server-wide paths such as `/1.0`).
    pub project_scoped: bool,
}

impl Request {
    /// A request with no query, body or headers.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
            timeout: None,
            project_scoped: true,
        }
    }

    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// `POST path` with a JSON body.
    pub fn post(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::POST, path).json(body)
    }

    /// `PUT path` with a JSON body.
    pub fn put(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::PUT, path).json(body)
    }

    /// `PATCH path` with a JSON body.
    pub fn patch(path: impl Into<String>, body: Value) -> Self {
        Self::new(Method::PATCH, path).json(body)
    }

    /// `DELETE path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// Sets the JSON body.
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Adds a query parameter.
    pub fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_owned(), value.into()));
        self
    }

    /// Adds a query parameter when the value is present.
    pub fn query_opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Adds a header of the `X-LXD-*`/`X-Incus-*` family, in both spellings.
    pub fn server_header(self, header: ServerHeader, value: impl Into<String>) -> Self {
        let value = value.into();
        let [lxd, incus] = header.names();
        self.header(lxd, value.clone()).header(incus, value)
    }

    /// Sends `If-Match` when an ETag is known.
    pub fn if_match(self, etag: Option<&str>) -> Self {
        match etag {
            Some(tag) => self.header("If-Match", tag),
            None => self,
        }
    }

    /// Overrides the per-request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Marks the request as server-wide: no project query is added.
    pub fn server_wide(mut self) -> Self {
        self.project_scoped = false;
        self
    }

    /// The path and query as sent, with `project` added unless already there or not applicable.
    pub fn path_and_query(&self, project: Option<&str>) -> String {
        let mut pairs: Vec<(&str, &str)> = self
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Some(p) = project
            && self.project_scoped
            && !self
                .query
                .iter()
                .any(|(k, _)| k == "project" || k == "all-projects")
        {
            pairs.push(("project", p));
        }
        let mut out = self.path.clone();
        // The path may already carry a query (raw API calls); append to it.
        let mut sep = if out.contains('?') { '&' } else { '?' };
        for (k, v) in pairs {
            out.push(sep);
            out.push_str(&utf8_percent_encode(k, QUERY_VALUE).to_string());
            out.push('=');
            out.push_str(&utf8_percent_encode(v, QUERY_VALUE).to_string());
            sep = '&';
        }
        out
    }

    /// The path and query with secret values masked, for `-v` logs.
    pub fn redacted(&self, project: Option<&str>) -> String {
        let full = self.path_and_query(project);
        let Some((path, query)) = full.split_once('?') else {
            return full;
        };
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_key(k) => format!("{k}=<redacted>"),
                _ => pair.to_owned(),
            })
            .collect();
        format!("{path}?{}", masked.join("&"))
    }
}

/// Query keys whose values must never be logged.
fn is_secret_key(key: &str) -> bool {
    matches!(key, "secret" | "password" | "token" | "trust_token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn project_is_added_once_and_only_where_scoped() {
        let r = Request::get("/1.0/instances").query("recursion", "1");
        assert_eq!(r.path_and_query(None), "/1.0/instances?recursion=1");
        assert_eq!(
            r.path_and_query(Some("p1")),
            "/1.0/instances?recursion=1&project=p1"
        );
        let explicit = Request::get("/1.0/instances").query("project", "other");
        assert_eq!(
            explicit.path_and_query(Some("p1")),
            "/1.0/instances?project=other"
        );
        assert_eq!(
            Request::get("/1.0")
                .server_wide()
                .path_and_query(Some("p1")),
            "/1.0"
        );
    }

    #[test]
    fn query_values_and_segments_are_escaped() {
        let r = Request::get(format!("/1.0/instances/{}", segment("a b/c")))
            .query("filter", "name eq x&y");
        assert_eq!(
            r.path_and_query(None),
            "/1.0/instances/a%20b%2Fc?filter=name%20eq%20x%26y"
        );
    }

    #[test]
    fn raw_paths_with_a_query_get_the_project_appended() {
        let r = Request::get("/1.0/instances?recursion=1");
        assert_eq!(
            r.path_and_query(Some("p")),
            "/1.0/instances?recursion=1&project=p"
        );
    }

    #[test]
    fn secrets_are_redacted() {
        let r = Request::get("/1.0/operations/x/websocket").query("secret", "s3cr3t");
        assert_eq!(
            r.redacted(None),
            "/1.0/operations/x/websocket?secret=<redacted>"
        );
    }

    #[test]
    fn server_headers_go_out_in_both_spellings_and_are_read_in_either() {
        let r = Request::get("/x").server_header(ServerHeader::Uid, "7");
        assert_eq!(
            r.headers,
            vec![
                ("X-LXD-uid", "7".to_owned()),
                ("X-Incus-uid", "7".to_owned())
            ]
        );
        let mut lxd = http::HeaderMap::new();
        lxd.insert("x-lxd-mode", http::HeaderValue::from_static("0644"));
        assert_eq!(ServerHeader::Mode.read(&lxd), Some("0644"));
        let mut incus = http::HeaderMap::new();
        incus.insert("x-incus-mode", http::HeaderValue::from_static("0600"));
        assert_eq!(ServerHeader::Mode.read(&incus), Some("0600"));
        assert_eq!(ServerHeader::Uid.read(&incus), None);
    }

    #[test]
    fn builders_set_method_body_and_headers() {
        let r = Request::put("/1.0/instances/c1", json!({"config": {}})).if_match(Some("\"abc\""));
        assert_eq!(r.method, Method::PUT);
        assert_eq!(r.body, Some(json!({"config": {}})));
        assert_eq!(r.headers, vec![("If-Match", "\"abc\"".to_owned())]);
        assert_eq!(Request::get("/x").if_match(None).headers, vec![]);
    }
}
