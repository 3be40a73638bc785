//! What one run of the engine shares: the bridge to the async client, the connection defaults
//! from the command line, and the script's arguments.

use std::path::PathBuf;

use super::client::ConnectDefaults;
use super::runtime::Bridge;

/// The shared context of every binding of one engine.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Runs client calls, cancellable by Ctrl-C.
    pub bridge: Bridge,
    /// `Client()`'s defaults.
    pub defaults: ConnectDefaults,
    /// The script's arguments (`ARGS`).
    pub args: Vec<String>,
    /// The directory of the running script, for its relative imports.
    pub script_dir: Option<PathBuf>,
    /// The operation limit (`--max-operations`; 0 means none).
    pub max_operations: u64,
    /// Whether long operations may show progress bars (`--no-progress` turns them off).
    pub progress: bool,
}
