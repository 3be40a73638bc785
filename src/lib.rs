//! lxd-script: automate LXD with Rhai scripts.
//!
//! # Layout
//!
//! Three layers; dependencies point one way (`cli`/`repl` → `script` → `lxd`):
//!
//! - [`lxd`]: the async LXD client (transport, TLS pinning, operations, one module per LXD
//!   object). It knows nothing of Rhai.
//! - `script`: the Rhai bindings: one engine builder, one module per scripted type, the
//!   blocking bridge into the async client, conversions and errors. It knows nothing of HTTP.
//! - `terminal`: the caller's terminal attached to a PTY session in an instance (raw mode,
//!   window size), over the LXD client; `lxd-script shell` and scripts' `interactive()` use it.
//! - `repl` and [`cli`]: the interactive shell and the command line; `main.rs` only calls
//!   [`cli::main`].
//!
//! The scripting API follows pylxd; `lxd-script api` prints all of it.

pub mod cli;
pub mod lxd;
mod repl;
mod script;
mod terminal;
