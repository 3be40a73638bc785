//! The async LXD client. It knows nothing of Rhai.
//!
//! - [`transport`] sends requests over kept-alive connections: on the unix socket with our own
//!   client ([`unix`]), over HTTPS with reqwest and a pinned certificate ([`tls`]); [`request`] builds requests as plain data and [`response`]
//!   decodes LXD's envelope and operations.
//! - [`config`] resolves where to connect (socket discovery, the `lxc` client configuration).
//! - [`client`] is the cheap-to-clone handle scripts hold; it waits for operations.
//! - One module per LXD object: [`instance`], [`snapshot`], [`image`], [`files`]; the objects
//!   that share one shape (profiles, networks, storage, projects, ...) are [`object`]s; [`exec`]
//!   runs commands over [`websocket`]s; recursive file transfers use an [`sftp`] session.
//! - [`error`] is the one error type.

pub mod backup;
pub mod client;
pub mod config;
pub mod error;
pub mod events;
pub mod exec;
pub mod files;
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
pub mod unix;
pub mod websocket;

pub use client::Client;
pub use error::{Error, ErrorKind, Result};
