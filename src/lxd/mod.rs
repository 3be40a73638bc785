//! The async LXD client. It knows nothing of Rhai.
//!
//! - [`transport`] is the one seam to the server: it sends requests and upgrades connections
//!   (websockets, SFTP) over kept-alive HTTP/1.1 ([`http1`]) on the unix socket or HTTPS with a
//!   pinned certificate ([`tls`]), in the client's own [`body`] types; [`request`] builds
//!   requests as plain data and [`response`] decodes LXD's envelope and operations.
//! - [`config`] resolves where to connect (socket discovery, the `lxc` client configuration).
//! - [`client`] is the cheap-to-clone handle scripts hold; it waits for operations.
//! - One module per LXD object: [`instance`], [`snapshot`], [`image`], [`files`]; the objects
//!   that share one shape (profiles, networks, storage, projects, ...) are [`object`]s; [`exec`]
//!   runs commands over [`websocket`]s; recursive file transfers use an [`sftp`] session.
//! - [`error`] is the one error type.
//!
//! Outside the crate only what connects is public: [`Client`], where to connect ([`Target`],
//! [`resolve`], [`ClientConfig`], [`ConnectSpec`], [`Endpoint`], [`TransportOptions`]) and the
//! error; the modules are the crate's own.

pub(crate) mod backup;
pub(crate) mod body;
pub(crate) mod client;
pub(crate) mod config;
pub(crate) mod error;
pub(crate) mod events;
pub(crate) mod exec;
#[cfg(test)]
pub(crate) mod fake;
pub(crate) mod files;
pub(crate) mod http1;
pub(crate) mod idle;
pub(crate) mod image;
pub(crate) mod instance;
pub(crate) mod local;
pub(crate) mod migration;
pub(crate) mod object;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod sftp;
pub(crate) mod site;
pub(crate) mod snapshot;
pub(crate) mod tls;
pub(crate) mod transport;
pub(crate) mod trust;
pub(crate) mod websocket;

pub use client::Client;
pub use config::{ClientConfig, ConnectSpec, Target, resolve};
pub use error::{Error, ErrorKind, Result};
pub use transport::{Endpoint, TransportOptions};
