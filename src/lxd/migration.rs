//! Moving instances: between servers in pull mode, and between members of one cluster.
//!
//! Between servers the destination pulls from the source: the source starts a migration
//! operation whose websocket secrets the destination uses; the source's certificate, from its own
//! description, pins the connection. A source on a unix socket works as long as its server also
//! listens on HTTPS (its advertised addresses). The source is deleted only after the destination
//! reports success.

use serde_json::{Map, Value, json};

use super::client::{Client, OperationProgress, ServerIdentity};
use super::error::Result;
use super::instance::{self, Instances, StateAction, StateChange};
use super::request::Request;
use super::response::Operation;

/// How to move.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateOptions {
    /// Move the running state too (CRIU; LXD's own error reaches the caller where it fails).
    pub live: bool,
    /// The name on the destination (default: the same).
    pub name: Option<String>,
    /// A cluster member to place the instance on.
    pub target: Option<String>,
    /// How long a running instance is given to shut down cleanly before the move (without
    /// live state) stops it by force; `None` is [`SHUTDOWN_TIMEOUT`].
    pub shutdown_timeout: Option<u32>,
}

/// Seconds a running instance gets to shut down cleanly before a move stops it by force.
pub const SHUTDOWN_TIMEOUT: u32 = 30;

/// Stops a running instance before a move without live state: a clean shutdown first (so its
/// copy is consistent), and a forced stop when that fails, as it can under load ("Failed
/// shutting down instance, status is Running"), so the move goes on.
async fn stop_for_move(client: &Client, name: &str, opts: &MigrateOptions) -> Result<()> {
    let instances = Instances::new(client.clone(), None);
    let timeout = i64::from(opts.shutdown_timeout.unwrap_or(SHUTDOWN_TIMEOUT));
    let stop = StateChange::new(StateAction::Stop).timeout(timeout);
    if instances.change_state_and_wait(name, &stop).await.is_ok() {
        return Ok(());
    }
    instances.change_state_and_wait(name, &stop.forced()).await
}

/// The fields of an instance the destination needs (pylxd drops `type`; we do not).
const CARRIED: [&str; 8] = [
    "architecture",
    "config",
    "devices",
    "profiles",
    "ephemeral",
    "type",
    "description",
    "stateful",
];

/// True for a `volatile.*` key that records the source server's own state of an instance (its
/// identity, its last power state) rather than its data. Moving between LXD and Incus such keys
/// are left for the destination to make anew, since each server refuses some of the other's
/// (LXD 5.0.2 answers Incus's `volatile.uuid.generation` and `volatile.last_state.ready` with
/// "Unknown configuration key", measured). The id maps stay: they say how the files are owned.
fn is_server_state(key: &str) -> bool {
    key == "volatile.uuid"
        || key.starts_with("volatile.uuid.")
        || (key.starts_with("volatile.last_state.") && key != "volatile.last_state.idmap")
}

/// The destination's create body for a pull from `operation_url`; `between_kinds` when the
/// destination is another kind of server than the source (LXD and Incus).
pub fn pull_body(
    fields: &Map<String, Value>,
    name: &str,
    operation_url: &str,
    certificate: &str,
    secrets: &Value,
    live: bool,
    between_kinds: bool,
) -> Value {
    let mut body: Map<String, Value> = CARRIED
        .iter()
        .filter_map(|k| fields.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    if let (true, Some(Value::Object(config))) = (between_kinds, body.get_mut("config")) {
        config.retain(|key, _| !is_server_state(key));
    }
    body.insert("name".into(), name.into());
    let base_image = fields
        .get("config")
        .and_then(|c| c.get("volatile.base_image"))
        .cloned()
        .unwrap_or(Value::Null);
    body.insert(
        "source".into(),
        json!({
            "type": "migration",
            "mode": "pull",
            "operation": operation_url,
            "certificate": certificate,
            "secrets": secrets,
            "base-image": base_image,
            "live": live,
            "instance_only": false,
        }),
    );
    Value::Object(body)
}

/// Moves `name` from `source` to `dest` (another server, LXD or Incus). `source_info` and
/// `dest_info` are their `GET /1.0`. Returns the name on the destination.
pub async fn migrate(
    source: &Client,
    source_info: &Value,
    dest: &Client,
    dest_info: &Value,
    name: &str,
    opts: &MigrateOptions,
    progress: Option<OperationProgress>,
) -> Result<String> {
    let (server, certificate) = super::client::pull_address(source_info)?;
    let instances = Instances::new(source.clone(), None);
    let fields = instances.get(name).await?.fields;
    let was_running = fields.get("status").and_then(Value::as_str) == Some("Running");
    // Without live state a running instance is stopped first, so its copy is consistent.
    let stop_first = was_running && !opts.live;
    if stop_first {
        stop_for_move(source, name, opts).await?;
    }
    let result = async {
        let request = Request::post(
            instance::path(name),
            json!({ "migration": true, "live": opts.live, "instance_only": false }),
        );
        let source_op = source.operation(&request).await?;
        let operation_url = format!("{server}/1.0/operations/{}", source_op.id());
        let new_name = opts.name.clone().unwrap_or_else(|| name.to_owned());
        let body = pull_body(
            &fields,
            &new_name,
            &operation_url,
            &certificate,
            source_op.metadata(),
            opts.live,
            ServerIdentity::of(source_info).name != ServerIdentity::of(dest_info).name,
        );
        let create =
            Request::post("/1.0/instances", body).query_opt("target", opts.target.as_deref());
        let dest_op = dest.operation(&create).await?;
        let pulled = dest
            .wait_operation_reporting(dest_op.id(), None, progress)
            .await;
        if let Err(e) = pulled {
            // The source's operation ends by itself once no one pulls; do not leave it waiting.
            let _ = source.cancel_operation(source_op.id()).await;
            return Err(e);
        }
        source.wait_operation(source_op.id(), None).await?;
        Ok(new_name)
    }
    .await;
    match result {
        Ok(new_name) => {
            // Only now that the destination has it: remove the source, start the copy.
            let op = instances.delete(name).await?;
            source.wait_operation(op.id(), None).await?;
            if stop_first {
                Instances::new(dest.clone(), None)
                    .change_state_and_wait(&new_name, &StateChange::new(StateAction::Start))
                    .await?;
            }
            Ok(new_name)
        }
        Err(e) => {
            if stop_first {
                // Put the source back as it was; the error that matters is the migration's.
                let start = StateChange::new(StateAction::Start);
                let _ = instances.change_state_and_wait(name, &start).await;
            }
            Err(e)
        }
    }
}

/// Moves an instance to another member of its cluster, server-side.
pub async fn move_within_cluster(
    client: &Client,
    name: &str,
    target: &str,
    opts: &MigrateOptions,
) -> Result<String> {
    let instances = Instances::new(client.clone(), None);
    let running = instances
        .get(name)
        .await?
        .fields
        .get("status")
        .and_then(Value::as_str)
        == Some("Running");
    let stop_first = running && !opts.live;
    if stop_first {
        stop_for_move(client, name, opts).await?;
    }
    let new_name = opts.name.clone().unwrap_or_else(|| name.to_owned());
    let body = json!({ "migration": true, "live": opts.live, "name": new_name });
    let req = Request::post(instance::path(name), body).query("target", target);
    let moved: Result<Operation> = async {
        let op = client.operation(&req).await?;
        client.wait_operation(op.id(), None).await
    }
    .await;
    let settled_name = if moved.is_ok() {
        new_name.clone()
    } else {
        name.to_owned()
    };
    if stop_first {
        instances
            .change_state_and_wait(&settled_name, &StateChange::new(StateAction::Start))
            .await?;
    }
    moved.map(|_| new_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_bodies_carry_the_instance_and_the_source() {
        let fields = match json!({
            "name": "c1", "type": "container", "architecture": "x86_64", "ephemeral": false,
            "profiles": ["default"], "devices": {}, "config": {"volatile.base_image": "abc", "user.x": "1"},
            "status": "Running", "expanded_config": {}
        }) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let body = pull_body(
            &fields,
            "c2",
            "https://h:1/1.0/operations/op",
            "PEM",
            &json!({"fs": "s"}),
            false,
            false,
        );
        assert_eq!(body["name"], "c2");
        assert_eq!(body["type"], "container");
        assert_eq!(body["config"]["user.x"], "1");
        assert!(body.get("status").is_none() && body.get("expanded_config").is_none());
        assert_eq!(body["source"]["base-image"], "abc");
        assert_eq!(body["source"]["secrets"], json!({"fs": "s"}));
        assert_eq!(body["source"]["mode"], "pull");
    }

    #[test]
    fn between_lxd_and_incus_the_source_servers_state_stays_behind() {
        let fields = match json!({"config": {
            "volatile.uuid": "u", "volatile.uuid.generation": "g", "volatile.last_state.power": "RUNNING",
            "volatile.last_state.ready": "false", "volatile.last_state.idmap": "[]",
            "volatile.idmap.next": "[]", "volatile.base_image": "abc", "volatile.eth0.hwaddr": "00:16:3e:00:00:01",
            "user.x": "1"
        }}) {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let keys = |between| {
            let body = pull_body(&fields, "c", "u", "PEM", &json!({}), false, between);
            let mut keys: Vec<String> = body["config"]
                .as_object()
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default();
            keys.sort();
            keys
        };
        assert_eq!(
            keys(false).len(),
            9,
            "the same kind of server: everything goes"
        );
        assert_eq!(
            keys(true),
            [
                "user.x",
                "volatile.base_image",
                "volatile.eth0.hwaddr",
                "volatile.idmap.next",
                "volatile.last_state.idmap"
            ]
        );
    }

    mod on_fake_servers {
        use super::*;
        use crate::lxd::fake::{FakeAnswer, FakeLxd, FakeRequest, operation};
        use crate::lxd::transport::TransportOptions;
        use std::sync::atomic::{AtomicUsize, Ordering};

        /// A server whose every call that starts an operation gets a new one, ended as
        /// `ends(id)` says when waited for; `GET` of the instance shows it running.
        fn server(ends: impl Fn(&str) -> FakeAnswer + Send + Sync + 'static) -> FakeLxd {
            let next = AtomicUsize::new(0);
            FakeLxd::new(move |req: &FakeRequest| {
                let started = |kind: &str| {
                    let id = format!("{kind}{}", next.fetch_add(1, Ordering::SeqCst));
                    FakeAnswer::started(operation(&id, 103, json!({"control": "c", "fs": "f"}), ""))
                };
                match (req.method.as_str(), req.path.as_str()) {
                    ("GET", "/1.0/instances/c1") => FakeAnswer::sync(json!({
                        "name": "c1", "status": "Running", "type": "container", "config": {}})),
                    ("PUT", "/1.0/instances/c1/state") => {
                        started(req.json()["action"].as_str().unwrap_or_default())
                    }
                    ("POST", "/1.0/instances/c1") => started("migrate"),
                    ("POST", "/1.0/instances") => started("pull"),
                    ("DELETE", "/1.0/instances/c1") => started("delete"),
                    ("DELETE", _) => FakeAnswer::sync(Value::Null),
                    ("GET", path) if path.contains("/wait") => {
                        let id = path.split('/').nth(3).unwrap_or_default();
                        ends(id)
                    }
                    _ => FakeAnswer::error(404, "not found"),
                }
            })
        }

        fn success(id: &str) -> FakeAnswer {
            FakeAnswer::sync(operation(id, 200, json!({}), ""))
        }

        /// What a server was asked that changes something, in order.
        fn changes(fake: &FakeLxd) -> Vec<String> {
            fake.seen()
                .into_iter()
                .filter(|s| !s.starts_with("GET"))
                .collect()
        }

        async fn move_c1(source: &FakeLxd, dest: &FakeLxd) -> Result<String> {
            let info = json!({"environment": {"addresses": ["127.0.0.1:8443"],
                                              "certificate": "PEM", "server": "lxd"}});
            migrate(
                &source.client(TransportOptions::default()),
                &info,
                &dest.client(TransportOptions::default()),
                &info,
                "c1",
                &MigrateOptions::default(),
                None,
            )
            .await
        }

        /// A pull that fails on the destination leaves the source as it was: its migration
        /// operation cancelled, the instance started again, nothing deleted.
        #[tokio::test]
        async fn a_failed_pull_puts_the_source_back() {
            let source = server(success);
            let dest = server(|id| FakeAnswer::sync(operation(id, 400, json!({}), "disk full")));
            let err = move_c1(&source, &dest).await.expect_err("the pull failed");
            assert_eq!(err.to_string(), "disk full");
            let done = changes(&source);
            assert_eq!(done[0], "PUT /1.0/instances/c1/state");
            assert_eq!(done[1], "POST /1.0/instances/c1");
            assert!(
                done.contains(&"DELETE /1.0/operations/migrate1".to_owned()),
                "{done:?}"
            );
            assert_eq!(
                done.last().map(String::as_str),
                Some("PUT /1.0/instances/c1/state")
            );
            assert!(
                !done.contains(&"DELETE /1.0/instances/c1".to_owned()),
                "{done:?}"
            );
        }

        /// A move that works deletes the source only once the destination has the copy, then
        /// starts the copy.
        #[tokio::test]
        async fn a_move_deletes_the_source_after_the_copy_and_starts_it() {
            let (source, dest) = (server(success), server(success));
            assert_eq!(move_c1(&source, &dest).await.expect("moved"), "c1");
            assert_eq!(
                changes(&source),
                [
                    "PUT /1.0/instances/c1/state",
                    "POST /1.0/instances/c1",
                    "DELETE /1.0/instances/c1"
                ]
            );
            assert_eq!(
                changes(&dest),
                ["POST /1.0/instances", "PUT /1.0/instances/c1/state"]
            );
        }
    }
}
