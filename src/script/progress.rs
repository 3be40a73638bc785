//! Progress bars for long transfers: drawn on stderr only when it is a terminal, never with
//! `--no-progress`, only once a transfer has lasted a second, and cleared when it ends.

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use super::client::Client;
use crate::lxd::client::OperationProgress;
use crate::lxd::local::Progress;

/// A progress bar that is cleared from the terminal when the transfer (its owner) ends.
struct ClearedBar(Option<ProgressBar>);

impl Drop for ClearedBar {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

/// A byte-counting progress reporter for a transfer, or `None` where no bar may be drawn.
pub fn byte_progress(client: &Client, what: String, total: Option<u64>) -> Option<Progress> {
    if !client.progress_allowed() || !std::io::stderr().is_terminal() {
        return None;
    }
    let started = Instant::now();
    let bar: Arc<Mutex<ClearedBar>> = Arc::new(Mutex::new(ClearedBar(None)));
    let report: Progress = Arc::new(move |done| {
        if started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let Ok(mut slot) = bar.lock() else { return };
        let bar = slot.0.get_or_insert_with(|| {
            let b = total.map_or_else(ProgressBar::no_length, ProgressBar::new);
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_message(what.clone());
            b
        });
        bar.set_position(done);
    });
    Some(report)
}

/// A spinner showing an operation's progress text (image unpack, publish, copy, migration), or
/// `None` where no bar may be drawn.
pub fn operation_progress(client: &Client, what: &str) -> Option<OperationProgress> {
    if !client.progress_allowed() || !std::io::stderr().is_terminal() {
        return None;
    }
    let started = Instant::now();
    let what = what.to_owned();
    let bar: Arc<Mutex<ClearedBar>> = Arc::new(Mutex::new(ClearedBar(None)));
    let report: OperationProgress = Arc::new(move |text| {
        if started.elapsed() < Duration::from_secs(1) {
            return;
        }
        let Ok(mut slot) = bar.lock() else { return };
        let bar = slot.0.get_or_insert_with(|| {
            let b = ProgressBar::new_spinner();
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        bar.set_message(format!("{what}: {text}"));
    });
    Some(report)
}
