//! `client.operations` and Operation, the raw API `client.api` and the
//! event stream `client.events(...)`.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

use super::api::{Api, RegisterInto};
use super::client::{Client, duration_arg};
use super::convert::{dynamic_to_json, json_to_dynamic, object_to_map};
use super::errors::{RhaiResultOf, invalid_argument, lxd_error};
use super::options::{Options, strings};
use crate::lxd::events::{EventFilter, EventStream};
use crate::lxd::object;
use crate::lxd::request::{Request, segment};
use crate::lxd::response::{Answer, Operation as LxdOperation};

/// `client.operations`.
#[derive(Debug, Clone)]
pub struct OperationManager {
    client: Client,
}

/// One operation, as last seen.
#[derive(Debug, Clone)]
pub struct Operation {
    client: Client,
    op: LxdOperation,
}

impl Operation {
    /// An operation of `client`, as last seen.
    pub fn new(client: &Client, op: LxdOperation) -> Self {
        Operation {
            client: client.clone(),
            op,
        }
    }

    fn id(&self) -> String {
        self.op.id().to_owned()
    }

    /// The operation as LXD last described it.
    pub fn fields(&self) -> &LxdOperation {
        &self.op
    }

    fn wait(&mut self, timeout: Option<Duration>) -> RhaiResultOf<()> {
        let api = self.client.lxd.clone();
        let id = self.id();
        // The outcome itself, not its error: a failed operation's final state is kept too.
        let done = self
            .client
            .bridge
            .block_on(async move { Ok(api.wait_operation(&id, timeout).await) })?;
        match done {
            Ok(op) => {
                self.op = op;
                Ok(())
            }
            Err(err) => {
                if let crate::lxd::Error::OperationFailed {
                    metadata,
                    message,
                    status_code,
                    ..
                } = &err
                {
                    self.op.status_code = u64::from(*status_code);
                    self.op.status = match *status_code {
                        401 => "Cancelled",
                        _ => "Failure",
                    }
                    .to_owned();
                    self.op.err = message.clone();
                    self.op.metadata = metadata.clone();
                }
                Err(lxd_error(err))
            }
        }
    }
}

/// Makes the request of one `client.api` method for a path.
type BuildRequest = fn(&str) -> Request;

/// `client.api`: raw access to any endpoint.
#[derive(Debug, Clone)]
pub struct RawApi {
    client: Client,
}

impl RawApi {
    /// Sends the request `build` makes for `path`, with `body` as its JSON.
    fn call(
        &self,
        build: BuildRequest,
        path: &str,
        body: Option<&Dynamic>,
    ) -> RhaiResultOf<Dynamic> {
        if !path.starts_with('/') {
            return Err(invalid_argument(format!(
                "api: the path must start with /, like \"/1.0/instances\", not \"{path}\""
            )));
        }
        let mut req = build(path);
        if let Some(body) = body {
            req =
                req.json(dynamic_to_json(body).map_err(|e| invalid_argument(format!("api: {e}")))?);
        }
        match self.client.bridge.block_on(self.client.lxd.call(&req))? {
            Answer::Sync { metadata, .. } => Ok(json_to_dynamic(&metadata)),
            Answer::Async(op) => Ok(Dynamic::from(Operation {
                client: self.client.clone(),
                op,
            })),
        }
    }
}

/// An open event stream.
#[derive(Debug, Clone)]
pub struct Events {
    client: Client,
    stream: Arc<EventStream>,
}

impl Events {
    fn open(client: &Client, filter: EventFilter) -> RhaiResultOf<Events> {
        let stream = client
            .bridge
            .block_on(EventStream::open(&client.lxd, &filter))?;
        Ok(Events {
            client: client.clone(),
            stream: Arc::new(stream),
        })
    }

    fn next(&self, timeout: Option<Duration>) -> RhaiResultOf<Dynamic> {
        let stream = self.stream.clone();
        let event = self
            .client
            .bridge
            .block_on(async move { Ok(stream.next(timeout).await) })?;
        Ok(event.as_ref().map_or(Dynamic::UNIT, json_to_dynamic))
    }
}

fn filter_from_map(options: Map) -> RhaiResultOf<EventFilter> {
    let o = Options::new(
        "client.events",
        options,
        &["types", "all_projects", "queue"],
    )?;
    let queue = o.int("queue")?.unwrap_or(0);
    Ok(EventFilter {
        types: o.strings("types")?.unwrap_or_default(),
        all_projects: o.bool("all_projects")?.unwrap_or(false),
        queue: usize::try_from(queue).map_err(|_| {
            invalid_argument(format!(
                "client.events: queue must be positive, not {queue}"
            ))
        })?,
    })
}

/// Operation attributes (read-only).
const OPERATION_FIELDS: [&str; 8] = [
    "id",
    "class",
    "status",
    "status_code",
    "metadata",
    "may_cancel",
    "err",
    "created_at",
];

/// Registers operations, the raw API and events.
pub fn register(api: &mut Api) {
    api.register_type_with_name::<OperationManager>("Operations");
    api.register_type_with_name::<Operation>("Operation");
    api.register_type_with_name::<RawApi>("Api");
    api.register_type_with_name::<Events>("EventStream");

    rhai::FuncRegistration::new_getter("operations")
        .with_comments(["/// The server's operations."])
        .register_into(api, |c: &mut Client| OperationManager { client: c.clone() });
    rhai::FuncRegistration::new("all")
        .with_comments([
            "/// Every current operation (running and recently ended), in one request.",
        ])
        .register_into(api, |m: &mut OperationManager| -> RhaiResultOf<Array> {
            let req = Request::get(object::OPERATIONS).query("recursion", "1");
            let by_status = m
                .client
                .bridge
                .block_on(m.client.lxd.call(&req))?
                .into_metadata();
            by_status
                .as_object()
                .into_iter()
                .flat_map(|groups| groups.values())
                .filter_map(Value::as_array)
                .flatten()
                .map(|op| {
                    LxdOperation::from_value(op.clone())
                        .map(|op| Dynamic::from(Operation::new(&m.client, op)))
                        .map_err(lxd_error)
                })
                .collect::<RhaiResultOf<Array>>()
        });
    rhai::FuncRegistration::new("get")
        .with_comments(["/// Loads an operation by id; NotFound once LXD has forgotten it (5 s after it ended)."])
        .register_into(api, |m: &mut OperationManager, id: &str| -> RhaiResultOf<Operation> {
            let op = m.client.bridge.block_on(m.client.lxd.get(&format!("{}/{}", object::OPERATIONS, segment(id))))?;
            Ok(Operation::new(&m.client, LxdOperation::from_value(op).map_err(lxd_error)?))
        });
    for field in OPERATION_FIELDS {
        rhai::FuncRegistration::new_getter(field)
            .with_comments([format!("/// The operation's `{field}`.")])
            .register_into(api, move |o: &mut Operation| {
                o.op.field(field)
                    .map_or(Dynamic::UNIT, |v| json_to_dynamic(&v))
            });
    }
    rhai::FuncRegistration::new("wait")
        .with_comments(["/// Waits for the operation to end (its final state is kept); throws OperationFailed if it failed."])
        .register_into(api, |o: &mut Operation| o.wait(None));
    rhai::FuncRegistration::new("wait")
        .with_comments([
            "/// Waits for the operation to end, throwing Timeout after `timeout` seconds.",
        ])
        .register_into(api, |o: &mut Operation, timeout: Dynamic| {
            let t = duration_arg("Operation.wait", &timeout)?;
            o.wait(Some(t))
        });
    rhai::FuncRegistration::new("cancel")
        .with_comments(["/// Cancels the operation (LXD allows it where `may_cancel` is true)."])
        .register_into(api, |o: &mut Operation| {
            let id = o.id();
            o.client.bridge.block_on(o.client.lxd.cancel_operation(&id))
        });
    rhai::FuncRegistration::new("to_map")
        .with_comments(["/// The whole operation as a map."])
        .register_into(api, |o: &mut Operation| match o.op.to_value() {
            Value::Object(m) => object_to_map(&m),
            _ => Map::new(),
        });
    super::register_display(api, |o: &Operation| {
        format!("Operation {} {}", o.op.id(), o.op.status)
    });

    rhai::FuncRegistration::new_getter("api")
        .with_comments([
            "/// Raw access to any endpoint: api.get/post/put/patch/delete(path[, body]).",
        ])
        .register_into(api, |c: &mut Client| RawApi { client: c.clone() });
    let bodiless: [(&str, BuildRequest); 2] = [
        ("get", |p| Request::get(p)),
        ("delete", |p| Request::delete(p)),
    ];
    for (name, build) in bodiless {
        let method = name.to_uppercase();
        rhai::FuncRegistration::new(name)
            .with_comments([format!("/// {method} a path (\"/1.0/...\"): a sync answer's metadata, or an Operation (not waited).")])
            .register_into(api, move |a: &mut RawApi, path: &str| a.call(build, path, None));
    }
    let with_body: [(&str, BuildRequest); 3] = [
        ("post", |p| Request::post(p, Value::Null)),
        ("put", |p| Request::put(p, Value::Null)),
        ("patch", |p| Request::patch(p, Value::Null)),
    ];
    for (name, build) in with_body {
        let method = name.to_uppercase();
        rhai::FuncRegistration::new(name)
            .with_comments([format!("/// {method} a JSON body to a path: a sync answer's metadata, or an Operation (not waited).")])
            .register_into(api, move |a: &mut RawApi, path: &str, body: Dynamic| {
                a.call(build, path, Some(&body))
            });
    }
    super::register_display(api, |a: &RawApi| {
        format!("Raw API of {}", a.client.lxd.endpoint())
    });

    rhai::FuncRegistration::new("events")
        .with_comments(["/// Opens the event stream of this client's project (every type)."])
        .register_into(api, |c: &mut Client| {
            Events::open(c, EventFilter::default())
        });
    rhai::FuncRegistration::new("events")
        .with_comments([
            "/// Opens the event stream for these types (`lifecycle`, `operation`, `logging`).",
        ])
        .register_into(api, |c: &mut Client, types: Array| {
            let types = strings(&Dynamic::from(types))
                .ok_or_else(|| invalid_argument("client.events: types must be strings"))?;
            Events::open(
                c,
                EventFilter {
                    types,
                    ..EventFilter::default()
                },
            )
        });
    rhai::FuncRegistration::new("events")
        .with_comments(["/// Opens the event stream with options #{types, all_projects, queue (events kept for a slow reader, default 1024)}."])
        .register_into(api, |c: &mut Client, options: Map| {
            Events::open(c, filter_from_map(options)?)
        });
    rhai::FuncRegistration::new("next")
        .with_comments(["/// The next event (#{type, timestamp, metadata, location, project}); blocks until one comes."])
        .register_into(api, |e: &mut Events| e.next(None));
    rhai::FuncRegistration::new("next")
        .with_comments(["/// The next event, or () after `timeout` seconds."])
        .register_into(api, |e: &mut Events, timeout: Dynamic| {
            let t = duration_arg("EventStream.next", &timeout)?;
            e.next(Some(t))
        });
    rhai::FuncRegistration::new_getter("dropped")
        .with_comments(["/// How many events were dropped because the script read too slowly."])
        .register_into(api, |e: &mut Events| {
            i64::try_from(e.stream.dropped()).unwrap_or(i64::MAX)
        });
    rhai::FuncRegistration::new_getter("pending")
        .with_comments([
            "/// How many events wait to be read now (never more than the queue bound).",
        ])
        .register_into(api, |e: &mut Events| {
            i64::try_from(e.stream.pending()).unwrap_or(i64::MAX)
        });
    rhai::FuncRegistration::new("close")
        .with_comments(["/// Ends the stream."])
        .register_into(api, |e: &mut Events| e.stream.close());
    super::register_display(api, |e: &Events| {
        format!(
            "EventStream ({} dropped{})",
            e.stream.dropped(),
            if e.stream.is_closed() { ", closed" } else { "" }
        )
    });
}
