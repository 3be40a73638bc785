//! What the REPL shows of scripted values beyond their one-line form: the fields of an object
//! as a table row, the parts of an exec result. Read from what the objects already hold; no
//! request is made.

use rhai::Dynamic;
use serde_json::Value;

use super::exec::ExecResult;
use super::instance::Instance;
use super::object::{
    CertificateKind, ClusterMemberKind, ImageKind, NetworkKind, Object, ObjectKind, ProfileKind,
    ProjectKind, StoragePoolKind, StorageVolumeKind,
};
use super::operations::Operation;
use super::snapshot::Snapshot;

/// A table row: `(column, cell)` pairs.
pub type Row = Vec<(&'static str, String)>;

const INSTANCE_COLUMNS: &[&str] = &["name", "status", "type", "location", "description"];
const SNAPSHOT_COLUMNS: &[&str] = &["name", "created_at", "stateful", "expires_at"];
const OPERATION_COLUMNS: &[&str] = &["id", "class", "status", "description"];

/// The row of a scripted LXD object (instance, snapshot, operation, profile, image...), or
/// `None` for any other value.
pub fn row(value: &Dynamic) -> Option<Row> {
    if let Some(i) = value.read_lock::<Instance>() {
        return Some(pick(i.fields(), INSTANCE_COLUMNS));
    }
    if let Some(s) = value.read_lock::<Snapshot>() {
        return Some(pick(s.fields(), SNAPSHOT_COLUMNS));
    }
    if let Some(o) = value.read_lock::<Operation>() {
        return o
            .fields()
            .to_value()
            .as_object()
            .map(|f| pick(f, OPERATION_COLUMNS));
    }
    object_row::<ProfileKind>(value)
        .or_else(|| object_row::<NetworkKind>(value))
        .or_else(|| object_row::<StoragePoolKind>(value))
        .or_else(|| object_row::<StorageVolumeKind>(value))
        .or_else(|| object_row::<ProjectKind>(value))
        .or_else(|| object_row::<CertificateKind>(value))
        .or_else(|| object_row::<ClusterMemberKind>(value))
        .or_else(|| object_row::<ImageKind>(value))
}

/// An exec result's exit code, stdout and stderr as text (blobs are described, not dumped).
pub fn exec_parts(value: &Dynamic) -> Option<(i64, String, String)> {
    let result = value.read_lock::<ExecResult>()?;
    let (stdout, stderr) = result.streams();
    Some((result.exit_code(), stream_text(stdout), stream_text(stderr)))
}

fn stream_text(stream: &Dynamic) -> String {
    if stream.is_blob() {
        format!(
            "<{} bytes>",
            stream.clone().into_blob().map_or(0, |b| b.len())
        )
    } else {
        stream.to_string()
    }
}

fn object_row<K: ObjectKind>(value: &Dynamic) -> Option<Row> {
    let object = value.read_lock::<Object<K>>()?;
    Some(pick(object.fields(), K::COLUMNS))
}

/// The columns that the object has, in order.
fn pick(fields: &serde_json::Map<String, Value>, columns: &[&'static str]) -> Row {
    columns
        .iter()
        .filter_map(|&c| fields.get(c).map(|v| (c, cell(c, v))))
        .collect()
}

/// One JSON value as a short table cell.
fn cell(column: &str, v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) if column == "fingerprint" => s.chars().take(12).collect(),
        Value::String(s) => s.clone(),
        Value::Array(items) if column == "used_by" => items.len().to_string(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                Value::Object(m) => m
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("{…}")
                    .to_owned(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(m) => format!("{{{} keys}}", m.len()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_short() {
        let v: Value = serde_json::json!({
            "name": "web", "used_by": ["/1.0/instances/a", "/1.0/instances/b"],
            "aliases": [{"name": "busybox"}, {"name": "bb"}],
            "fingerprint": "0123456789abcdef0123", "managed": true, "config": {"a": "1"}
        });
        let fields = v.as_object().cloned().unwrap_or_default();
        let row = pick(
            &fields,
            &[
                "name",
                "used_by",
                "aliases",
                "fingerprint",
                "managed",
                "config",
                "absent",
            ],
        );
        assert_eq!(
            row,
            [
                ("name", "web".to_owned()),
                ("used_by", "2".to_owned()),
                ("aliases", "busybox, bb".to_owned()),
                ("fingerprint", "0123456789ab".to_owned()),
                ("managed", "true".to_owned()),
                ("config", "{1 keys}".to_owned()),
            ]
        );
    }
}
