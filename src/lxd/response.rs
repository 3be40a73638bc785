//! LXD's response envelope and operations, parsed on the envelope's `type`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::{Error, Result};

/// A decoded LXD answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A synchronous answer: its `metadata` and the `ETag` header, if any.
    Sync {
        /// The envelope's `metadata`.
        metadata: Value,
        /// The `ETag` header, quoted as sent.
        etag: Option<String>,
    },
    /// A background operation was created.
    Async(Operation),
}

impl Answer {
    /// The sync metadata, or the operation's object for an async answer.
    pub fn into_metadata(self) -> Value {
        match self {
            Answer::Sync { metadata, .. } => metadata,
            Answer::Async(op) => op.to_value(),
        }
    }

    /// The operation of an async answer.
    pub fn operation(self) -> Option<Operation> {
        match self {
            Answer::Async(op) => Some(op),
            Answer::Sync { .. } => None,
        }
    }
}

#[derive(Deserialize)]
struct Envelope<M> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    operation: String,
    #[serde(default)]
    error_code: u16,
    #[serde(default)]
    error: String,
    #[serde(default)]
    metadata: M,
}

/// One object of a listing, its JSON kept as the server sent it: parsed when first read, so a
/// listing of many objects costs one scan of the body, not a tree of every field.
pub type RawObject = Box<serde_json::value::RawValue>;

/// The string at `key` among the top-level fields of a listed object, found by walking its
/// text rather than parsing it: a listing needs each object's name at once, the rest only
/// when read. `None` when the field is absent or not a string.
pub fn top_level_string(object: &serde_json::value::RawValue, key: &str) -> Option<String> {
    let text = object.get().as_bytes();
    let mut depth = 0usize;
    let mut at_key = false;
    let mut i = 0;
    while let Some(&byte) = text.get(i) {
        match byte {
            b'{' => {
                depth += 1;
                at_key = depth == 1;
            }
            b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' => at_key = depth == 1,
            b'"' => {
                let end = string_end(text, i)?;
                if depth == 1 && at_key {
                    at_key = false;
                    if &text[i + 1..end] == key.as_bytes() {
                        let value = end + 1 + text[end + 1..].iter().position(|b| *b == b'"')?;
                        let between = &text[end + 1..value];
                        if !between
                            .iter()
                            .all(|b| b.is_ascii_whitespace() || *b == b':')
                        {
                            return None; // not a string
                        }
                        let value_end = string_end(text, value)?;
                        return serde_json::from_slice(&text[value..=value_end]).ok();
                    }
                }
                i = end;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote that closes the JSON string opening at `open`.
fn string_end(text: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        i += memchr::memchr2(b'"', b'\\', text.get(i..)?)?;
        if text[i] == b'"' {
            return Some(i);
        }
        i += 2;
    }
}

/// Parses the body of a `recursion=1` listing: its objects unparsed (see [`RawObject`]); an
/// error envelope is the error it says, as in [`parse`].
pub fn parse_list(http_status: u16, body: &[u8]) -> Result<Vec<RawObject>> {
    let envelope: Envelope<Option<Vec<RawObject>>> = decode_envelope(http_status, body)?;
    match envelope.kind.as_str() {
        "sync" => Ok(envelope.metadata.unwrap_or_default()),
        "error" => Err(envelope_error(
            http_status,
            envelope.error_code,
            envelope.error,
            &envelope.operation,
        )),
        other => Err(Error::Decode(format!(
            "a listing answered with a '{other}' envelope"
        ))),
    }
}

/// The error an `error` envelope says.
fn envelope_error(http_status: u16, error_code: u16, error: String, operation: &str) -> Error {
    Error::Api {
        status: if error_code != 0 {
            error_code
        } else {
            http_status
        },
        message: error,
        operation: operation_id_from_url(operation),
    }
}

/// Reads the envelope of a body; what is not one is an error (the server's text for an error
/// status, else `Decode`).
fn decode_envelope<'a, M: Deserialize<'a> + Default>(
    http_status: u16,
    body: &'a [u8],
) -> Result<Envelope<M>> {
    serde_json::from_slice(body).map_err(|err| {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        if http_status >= 400 {
            return Error::Api {
                status: http_status,
                message: if text.is_empty() {
                    format!("HTTP {http_status}")
                } else {
                    text
                },
                operation: None,
            };
        }
        Error::Decode(format!(
            "not an LXD response envelope ({err}): {}",
            truncate(&text, 200)
        ))
    })
}

/// Parses a response body by its envelope `type` (never by the HTTP status alone: LXD 6.x
/// `/wait` answers 200 and then puts an error envelope in the body).
pub fn parse(http_status: u16, body: &[u8], etag: Option<String>) -> Result<Answer> {
    let envelope: Envelope<Value> = decode_envelope(http_status, body)?;
    match envelope.kind.as_str() {
        "sync" => Ok(Answer::Sync {
            metadata: envelope.metadata,
            etag,
        }),
        "async" => Ok(Answer::Async(Operation::from_value(envelope.metadata)?)),
        "error" => Err(envelope_error(
            http_status,
            envelope.error_code,
            envelope.error,
            &envelope.operation,
        )),
        other => Err(Error::Decode(format!("unknown envelope type '{other}'"))),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// The id at the end of an operation URL (`/1.0/operations/<id>`), if any.
pub fn operation_id_from_url(url: &str) -> Option<String> {
    let id = url.trim_end_matches('/').rsplit('/').next()?;
    let id = id.split('?').next().unwrap_or(id);
    (!id.is_empty()).then(|| id.to_owned())
}

/// An object as loaded: its fields and the ETag that protects a later save.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The object's fields, unknown ones included.
    pub fields: serde_json::Map<String, Value>,
    /// The `ETag` of the GET, if LXD sent one.
    pub etag: Option<String>,
}

/// An LXD operation: the fields the client acts on, typed, and every other field the server
/// sent (`class`, `resources`, `created_at`, `may_cancel`, `location`, ...) kept as it came.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Its id (the last segment of `/1.0/operations/<id>`).
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// `Running`, `Success`, `Failure`, ...
    #[serde(default, deserialize_with = "null_as_default")]
    pub status: String,
    /// 103 Running, 200 Success, 400 Failure, 401 Cancelled, ... (see [`status`]).
    #[serde(default, deserialize_with = "null_as_default")]
    pub status_code: u64,
    /// Why it failed; empty otherwise.
    #[serde(default, deserialize_with = "null_as_default")]
    pub err: String,
    /// What it reports (exec's `return` and `fds`, progress, a fingerprint); `null` when none.
    #[serde(default)]
    pub metadata: Value,
    /// Every other field, unknown ones included.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

/// A field that may be `null`: its default then.
fn null_as_default<'de, D, T>(deserializer: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Operation status codes: final when ≥ 200.
pub mod status {
    /// The operation succeeded.
    pub const SUCCESS: u64 = 200;
}

impl Operation {
    /// Reads an operation object as the server sent it.
    pub fn from_value(value: Value) -> Result<Operation> {
        serde_json::from_value(value)
            .map_err(|e| Error::Decode(format!("an operation that does not read as one: {e}")))
    }

    /// The whole operation as JSON, unknown fields included.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// One field by its name, typed or not (`None` when the server did not send it).
    pub fn field(&self, name: &str) -> Option<Value> {
        match name {
            "id" => Some(self.id.clone().into()),
            "status" => Some(self.status.clone().into()),
            "status_code" => Some(self.status_code.into()),
            "err" => Some(self.err.clone().into()),
            "metadata" => Some(self.metadata.clone()),
            other => self.other.get(other).cloned(),
        }
    }

    /// The operation id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The numeric status code (103 Running, 200 Success, 400 Failure, ...).
    pub fn status_code(&self) -> u64 {
        self.status_code
    }

    /// True once the operation has ended.
    pub fn is_final(&self) -> bool {
        self.status_code() >= status::SUCCESS
    }

    /// The operation's error text.
    pub fn err(&self) -> &str {
        &self.err
    }

    /// The operation's metadata (`null` when absent).
    pub fn metadata(&self) -> &Value {
        &self.metadata
    }

    /// The progress LXD reports: the text under a `*_progress` key (as `lxc` shows it), else
    /// the structured `progress` (stage, percent, speed).
    pub fn progress(&self) -> Option<String> {
        let meta = self.metadata().as_object()?;
        if let Some(text) = meta
            .iter()
            .find(|(k, v)| k.ends_with("_progress") && v.is_string())
            .and_then(|(_, v)| v.as_str())
        {
            return Some(text.to_owned());
        }
        let p = meta.get("progress")?;
        let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
        Some(format!(
            "{}: {}% ({})",
            field("stage"),
            field("percent"),
            field("speed")
        ))
    }

    /// Turns a final operation into `Ok` (Success) or `OperationFailed`.
    pub fn into_result(self) -> Result<Operation> {
        match self.status_code() {
            status::SUCCESS => Ok(self),
            code => Err(Error::OperationFailed {
                message: if self.err().is_empty() {
                    format!("operation ended with status {code}")
                } else {
                    self.err().to_owned()
                },
                operation: self.id().to_owned(),
                status_code: u16::try_from(code).unwrap_or(u16::MAX),
                metadata: self.metadata().clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lxd::ErrorKind;
    use serde_json::json;

    fn operation(value: Value) -> Operation {
        Operation::from_value(value).expect("an operation")
    }

    #[test]
    fn top_level_string_skips_nested_fields_and_strings() {
        let raw = |text: &str| serde_json::value::RawValue::from_string(text.into()).expect("json");
        let object = raw(
            r#"{"devices":{"eth0":{"name":"eth0"}},"list":[{"name":"x"},"name"],"d":"a \"name\": \"y\"","name" : "web-1","after":1}"#,
        );
        assert_eq!(top_level_string(&object, "name").as_deref(), Some("web-1"));
        assert_eq!(
            top_level_string(&raw(r#"{"name":"a\u0041\"b"}"#), "name").as_deref(),
            Some("aA\"b")
        );
        assert_eq!(
            top_level_string(&raw(r#"{"name":1,"x":"y"}"#), "name"),
            None
        );
        assert_eq!(
            top_level_string(&raw(r#"{"devices":{"name":"n"}}"#), "name"),
            None
        );
        assert_eq!(top_level_string(&raw("[]"), "name"), None);
    }

    #[test]
    fn operations_are_typed_and_keep_every_other_field() {
        let sent = json!({"id": "o1", "class": "task", "status": "Running", "status_code": 103,
                          "err": null, "metadata": null, "resources": {"instances": ["/1.0/instances/a"]},
                          "some_future_field": [1, 2]});
        let op = operation(sent.clone());
        assert_eq!((op.id(), op.status_code(), op.err()), ("o1", 103, ""));
        assert_eq!(op.field("class"), Some(json!("task")));
        assert_eq!(op.to_value()["some_future_field"], json!([1, 2]));
        assert_eq!(op.to_value()["resources"], sent["resources"]);
        assert!(Operation::from_value(json!({"status_code": "soon"})).is_err());
    }

    #[test]
    fn sync_envelope_gives_metadata_and_etag() {
        let body = br#"{"type":"sync","status":"Success","status_code":200,"operation":"","error_code":0,"error":"","metadata":{"a":1}}"#;
        let a = parse(200, body, Some("\"e\"".into())).expect("sync");
        assert_eq!(
            a,
            Answer::Sync {
                metadata: json!({"a": 1}),
                etag: Some("\"e\"".into())
            }
        );
    }

    #[test]
    fn async_envelope_gives_the_operation() {
        let body = br#"{"type":"async","status":"Operation created","status_code":100,"operation":"/1.0/operations/abc","metadata":{"id":"abc","status_code":103}}"#;
        let op = parse(202, body, None)
            .expect("async")
            .operation()
            .expect("op");
        assert_eq!(op.id(), "abc");
        assert!(!op.is_final());
    }

    #[test]
    fn error_envelope_keeps_lxds_message_verbatim() {
        let body = br#"{"type":"error","status":"","status_code":0,"operation":"","error_code":404,"error":"Instance not found","metadata":null}"#;
        let err = parse(404, body, None).expect_err("error");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.to_string(), "Instance not found");
    }

    #[test]
    fn an_error_envelope_inside_http_200_is_still_an_error() {
        let body = br#"{"type":"error","error_code":500,"error":"context deadline exceeded","metadata":null}"#;
        let err = parse(200, body, None).expect_err("error");
        assert_eq!(err.status_code(), Some(500));
    }

    #[test]
    fn non_json_bodies_are_reported() {
        assert_eq!(
            parse(502, b"Bad Gateway", None)
                .expect_err("502")
                .status_code(),
            Some(502)
        );
        assert_eq!(
            parse(200, b"<html>", None).expect_err("html").kind(),
            ErrorKind::ApiError
        );
    }

    #[test]
    fn failed_operations_become_errors_with_their_metadata() {
        let op = operation(
            json!({"id": "x", "status_code": 400, "err": "boom", "metadata": {"return": 127}}),
        );
        match op.into_result() {
            Err(Error::OperationFailed {
                message,
                metadata,
                status_code,
                ..
            }) => {
                assert_eq!(message, "boom");
                assert_eq!(status_code, 400);
                assert_eq!(metadata["return"], 127);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn progress_comes_from_the_progress_keys() {
        let op = operation(
            json!({"metadata": {"create_instance_from_image_unpack_progress": "Unpack: 10%"}}),
        );
        assert_eq!(op.progress().as_deref(), Some("Unpack: 10%"));
        let op = operation(
            json!({"metadata": {"progress": {"stage": "copy", "percent": "5", "speed": "1MB/s"}}}),
        );
        assert_eq!(op.progress().as_deref(), Some("copy: 5% (1MB/s)"));
        assert_eq!(operation(json!({"metadata": null})).progress(), None);
    }

    proptest::proptest! {
        /// No answer, however malformed, makes parsing panic.
        #[test]
        fn any_body_parses_without_panicking(status in 100u16..600, body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse(status, &body, None);
        }

        /// Envelope-shaped answers with odd fields never panic either, nor do their operations.
        #[test]
        fn envelope_shaped_bodies_never_panic(kind in "(sync|async|error|[a-z]{0,5})", code in proptest::prelude::any::<u16>(), meta in "[a-z0-9{}\\[\\]\":,]{0,40}") {
            let body = format!(r#"{{"type":"{kind}","error_code":{code},"error":"e","operation":"/1.0/operations/x","metadata":{meta}}}"#);
            if let Ok(Answer::Async(op)) = parse(200, body.as_bytes(), None) {
                let _ = (op.id().len(), op.status_code(), op.err().len(), op.progress());
                let _ = op.into_result();
            }
        }

        /// Operation ids come out of any URL without a panic.
        #[test]
        fn any_operation_url_is_handled(url in ".{0,80}") {
            let _ = operation_id_from_url(&url);
        }
    }

    #[test]
    fn operation_ids_come_from_urls() {
        assert_eq!(
            operation_id_from_url("/1.0/operations/abc-1").as_deref(),
            Some("abc-1")
        );
        assert_eq!(operation_id_from_url(""), None);
    }
}
