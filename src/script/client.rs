//! `Client`: the scripted handle on one LXD server and project.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

use super::api::{Api, RegisterInto};
use super::context::RunContext;
use super::convert::object_to_map;
use super::errors::{RhaiResultOf, invalid_argument, script_error};
use super::instance::InstanceManager;
use super::options::{Options, describe_value, duration};
use super::runtime::Bridge;
use crate::lxd::client::ServerIdentity;
use crate::lxd::config::{ClientConfig, ConnectSpec, Verify, resolve};
use crate::lxd::instance::InstanceType;
use crate::lxd::transport::TransportOptions;
use crate::lxd::{self, ErrorKind};

/// A connected client: the LXD handle, the bridge that runs its calls, and `GET /1.0`.
#[derive(Debug, Clone)]
pub struct Client {
    /// The LXD client it calls through.
    pub(crate) lxd: lxd::Client,
    pub(crate) bridge: Bridge,
    host_info: Arc<Value>,
    progress: bool,
}

impl Client {
    /// Connects as `spec` says and reads `GET /1.0`, so a bad address fails here, clearly.
    pub fn connect(
        context: &RunContext,
        spec: &ConnectSpec,
        timeout: Option<Duration>,
    ) -> RhaiResultOf<Client> {
        let config = ClientConfig::discover().map_err(super::errors::lxd_error)?;
        let target = resolve(spec, &config).map_err(super::errors::lxd_error)?;
        let options = TransportOptions {
            timeout: timeout.or(context.defaults.timeout),
            verbose: context.defaults.verbose,
        };
        let connected = lxd::Client::connect(&target, options).map_err(super::errors::lxd_error)?;
        let host_info = context
            .bridge
            .block_on(connected.server_in_checked_project())?;
        Ok(Client {
            lxd: connected,
            bridge: context.bridge.clone(),
            host_info: Arc::new(host_info),
            progress: context.progress,
        })
    }

    /// A client over an LXD client already made (a fake's, in unit tests), with no server
    /// description.
    #[cfg(test)]
    pub(crate) fn over(lxd: lxd::Client, bridge: Bridge) -> Client {
        Client {
            lxd,
            bridge,
            host_info: Arc::new(Value::Null),
            progress: false,
        }
    }

    /// The server description (`GET /1.0`).
    pub fn host_info(&self) -> &Value {
        &self.host_info
    }

    /// True when the server trusts this client.
    pub fn is_trusted(&self) -> bool {
        self.host_info.get("auth").and_then(Value::as_str) == Some("trusted")
    }

    /// Reads `GET /1.0` again (after trust changed).
    pub fn reload_host_info(&mut self) -> RhaiResultOf<()> {
        self.host_info = Arc::new(self.bridge.block_on(self.lxd.server())?);
        Ok(())
    }

    /// Where the server is: `unix:/path` or `https://host:port`.
    pub fn endpoint(&self) -> String {
        self.lxd.endpoint().to_string()
    }

    /// The project its calls are made in.
    pub fn project(&self) -> &str {
        self.lxd.project()
    }

    /// The name of the lxc remote this client was reached through, if it was one.
    pub fn remote(&self) -> Option<&str> {
        self.lxd.remote()
    }

    /// The names in a collection such as `/1.0/instances` (the last segment of each URL).
    pub fn names(&self, collection: &str) -> RhaiResultOf<Vec<String>> {
        let urls = self.bridge.block_on(self.lxd.get(collection))?;
        Ok(crate::lxd::object::keys_of(&urls))
    }

    /// Whether long transfers may show a progress bar (not with `--no-progress`).
    pub fn progress_allowed(&self) -> bool {
        self.progress
    }

    fn extensions(&self) -> impl Iterator<Item = &str> {
        self.host_info
            .get("api_extensions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    }

    /// True when the server has the API extension.
    pub fn has_api_extension(&self, name: &str) -> bool {
        self.extensions().any(|e| e == name)
    }

    /// `ExtensionMissing` naming the first of `names` the server lacks, and what needed it,
    /// before any request is made.
    pub fn require_extensions(&self, names: &[&str], needed_by: &str) -> RhaiResultOf<()> {
        match names.iter().find(|name| !self.has_api_extension(name)) {
            None => Ok(()),
            Some(name) => Err(script_error(
                ErrorKind::ExtensionMissing,
                format!(
                    "the server ({}) lacks the API extension '{name}' that {needed_by} needs",
                    ServerIdentity::of(&self.host_info)
                ),
                None,
                None,
                Dynamic::UNIT,
            )),
        }
    }

    fn instances(&self, kind: Option<InstanceType>) -> InstanceManager {
        InstanceManager::new(self.clone(), kind)
    }
}

/// The connection defaults of `Client()`, from the command line.
#[derive(Debug, Clone, Default)]
pub struct ConnectDefaults {
    /// `--remote`.
    pub remote: Option<String>,
    /// `--endpoint`.
    pub endpoint: Option<String>,
    /// `--project`.
    pub project: Option<String>,
    /// `--timeout`.
    pub timeout: Option<Duration>,
    /// `-v`: log every request.
    pub verbose: bool,
}

impl ConnectDefaults {
    fn spec(&self) -> ConnectSpec {
        ConnectSpec {
            remote: self.remote.clone(),
            endpoint: self.endpoint.clone(),
            project: self.project.clone(),
            ..ConnectSpec::default()
        }
    }
}

/// `Client(s)`: a socket path, an `https://` URL or a remote name.
fn spec_from_string(defaults: &ConnectDefaults, s: &str) -> ConnectSpec {
    let mut spec = ConnectSpec {
        project: defaults.project.clone(),
        ..ConnectSpec::default()
    };
    if s.starts_with('/') || s.starts_with("unix:") || s.starts_with("https://") {
        spec.endpoint = Some(s.to_owned());
    } else {
        spec.remote = Some(s.to_owned());
    }
    spec
}

/// `Client(#{endpoint, cert, key, verify, project, timeout, remote})`.
fn spec_from_map(map: Map) -> RhaiResultOf<(ConnectSpec, Option<Duration>)> {
    const KEYS: [&str; 7] = [
        "endpoint", "cert", "key", "verify", "project", "timeout", "remote",
    ];
    let opts = Options::new("Client", map.clone(), &KEYS)?;
    let verify = match map.get("verify") {
        None => Verify::Pinned,
        Some(v) if v.is_unit() => Verify::Pinned,
        Some(v) => match (v.as_bool(), v.clone().into_string()) {
            (Ok(true), _) => Verify::Pinned,
            (Ok(false), _) => Verify::Disabled,
            (_, Ok(path)) => Verify::PinnedFile(PathBuf::from(path)),
            _ => {
                return Err(invalid_argument(format!(
                    "Client: option 'verify' must be true, false or a certificate path, not {}",
                    v.type_name()
                )));
            }
        },
    };
    let spec = ConnectSpec {
        remote: opts.string("remote")?,
        endpoint: opts.string("endpoint")?,
        cert: opts.string("cert")?.map(PathBuf::from),
        key: opts.string("key")?.map(PathBuf::from),
        verify,
        project: opts.string("project")?,
    };
    let timeout = opts.seconds("timeout")?;
    Ok((spec, timeout))
}

/// Registers `Client` and its constructors.
pub fn register(api: &mut Api, context: &Arc<RunContext>) {
    api.register_type_with_name::<Client>("Client");

    let s = context.clone();
    rhai::FuncRegistration::new("Client")
        .with_comments(["/// Connects to the default remote: --remote/--endpoint, else lxc's default-remote, else the local unix socket."])
        .register_into(api, move || Client::connect(&s, &s.defaults.spec(), None));
    let s = context.clone();
    rhai::FuncRegistration::new("Client")
        .with_params_info(["target: &str", "Client"])
        .with_comments(["/// Connects to a socket path (`/...`, `unix:...`), an `https://` endpoint, or a remote of the lxc configuration by name."])
        .register_into(api, move |target: &str| {
            Client::connect(&s, &spec_from_string(&s.defaults, target), None)
        });
    let s = context.clone();
    rhai::FuncRegistration::new("Client")
        .with_params_info(["options: Map", "Client"])
        .with_comments(["/// Connects explicitly: #{endpoint, cert, key, verify (true, false or a cert path), project, timeout, remote}."])
        .register_into(api, move |options: Map| {
            let (spec, timeout) = spec_from_map(options)?;
            Client::connect(&s, &spec, timeout)
        });

    rhai::FuncRegistration::new_getter("host_info")
        .with_comments(["/// The server description (`GET /1.0`) as a map."])
        .register_into(api, |c: &mut Client| match c.host_info.as_ref() {
            Value::Object(m) => object_to_map(m),
            _ => Map::new(),
        });
    api.register_type_with_name::<ServerIdentity>("Server");
    rhai::FuncRegistration::new_getter("server")
        .with_comments([
            "/// Which server answered: `server.name` is `lxd` or `incus`, `server.version` its release (`\"incus 6.0.4\"` as text).",
        ])
        .register_into(api, |c: &mut Client| ServerIdentity::of(&c.host_info));
    rhai::FuncRegistration::new_getter("name")
        .with_comments(["/// `lxd` or `incus`, as the server names itself."])
        .register_into(api, |s: &mut ServerIdentity| s.name.clone());
    rhai::FuncRegistration::new_getter("version")
        .with_comments(["/// The server's release, such as `5.0.2` or `6.0.4`."])
        .register_into(api, |s: &mut ServerIdentity| s.version.clone());
    super::register_display(api, |s: &ServerIdentity| s.to_string());
    rhai::FuncRegistration::new_getter("trusted")
        .with_comments(["/// True when the server trusts this client."])
        .register_into(api, |c: &mut Client| c.is_trusted());
    rhai::FuncRegistration::new_getter("server_clustered")
        .with_comments(["/// True when the server is a cluster member."])
        .register_into(api, |c: &mut Client| {
            c.host_info
                .pointer("/environment/server_clustered")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        });
    rhai::FuncRegistration::new_getter("api_extensions")
        .with_comments(["/// The server's API extensions."])
        .register_into(api, |c: &mut Client| {
            c.extensions()
                .map(|e| Dynamic::from(e.to_owned()))
                .collect::<Array>()
        });
    rhai::FuncRegistration::new_getter("project")
        .with_comments(["/// The project every call of this client carries."])
        .register_into(api, |c: &mut Client| c.lxd.project().to_owned());
    rhai::FuncRegistration::new_getter("endpoint")
        .with_comments(["/// Where the server is: `unix:/path` or `https://host:port`."])
        .register_into(api, |c: &mut Client| c.lxd.endpoint().to_string());
    rhai::FuncRegistration::new("has_api_extension")
        .with_comments(["/// True when the server has the named API extension."])
        .register_into(api, |c: &mut Client, name: &str| c.has_api_extension(name));
    rhai::FuncRegistration::new("assert_has_api_extension")
        .with_comments([
            "/// Throws ExtensionMissing unless the server has the named API extension.",
        ])
        .register_into(api, |c: &mut Client, name: &str| -> RhaiResultOf<()> {
            c.require_extensions(&[name], "this script")
        });
    rhai::FuncRegistration::new("with_project")
        .with_comments(["/// The same server on another project, sharing the connection (its host_info is read in that project)."])
        .register_into(api, |c: &mut Client, project: &str| -> RhaiResultOf<Client> {
            let mut other = Client {
                lxd: c.lxd.with_project(project),
                ..c.clone()
            };
            let host_info = other
                .bridge
                .block_on(other.lxd.server_in_checked_project())?;
            other.host_info = Arc::new(host_info);
            Ok(other)
        });
    rhai::FuncRegistration::new_getter("instances")
        .with_comments(["/// The instances of every type."])
        .register_into(api, |c: &mut Client| c.instances(None));
    rhai::FuncRegistration::new_getter("containers")
        .with_comments(["/// The containers only."])
        .register_into(api, |c: &mut Client| {
            c.instances(Some(InstanceType::Container))
        });
    rhai::FuncRegistration::new_getter("virtual_machines")
        .with_comments(["/// The virtual machines only."])
        .register_into(api, |c: &mut Client| {
            c.instances(Some(InstanceType::VirtualMachine))
        });
    super::register_display(api, describe);
}

fn describe(c: &Client) -> String {
    format!("Client {} (project {})", c.lxd.endpoint(), c.lxd.project())
}

/// The remotes of the lxc client configuration, by name (empty when there is none).
pub fn remote_names() -> Vec<String> {
    ClientConfig::discover()
        .map(|config| config.remote_names().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// A number of seconds from a script value, for timeouts.
pub fn duration_arg(call: &str, v: &Dynamic) -> RhaiResultOf<Duration> {
    duration(v).map_err(|expected| {
        invalid_argument(format!(
            "{call}: the timeout must be {expected}, not {}",
            describe_value(v)
        ))
    })
}
