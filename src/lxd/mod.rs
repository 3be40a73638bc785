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

pub mod backup;
pub mod body;
pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod exec;
#[cfg(test)]
pub mod fake;
pub mod files;
pub mod http1;
pub mod idle;
pub mod image;
pub mod instance;
pub mod local;
pub mod migration;
pub mod object;
pub mod request;
pub mod response;
pub mod sftp;
pub mod snapshot;
pub mod tls;
pub mod transport;
pub mod trust;
pub mod websocket;

pub use client::Client;
pub use error::{Error, ErrorKind, Result};
