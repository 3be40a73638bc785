//! A short-lived cache of the live server's names (instances, images, profiles...) for
//! completion inside string arguments. Lists are fetched on a thread of their own, so the
//! completer never blocks on the network for long: it offers what the cache holds, and waits a
//! moment only the very first time a list is needed.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::script::client::Client;

/// How long a fetched list is trusted.
const FRESH_FOR: Duration = Duration::from_secs(5);
/// How long the completer waits for a list it has never had.
const FIRST_WAIT: Duration = Duration::from_millis(400);

#[derive(Default)]
struct State {
    client: Option<Client>,
    /// Identifies the client (endpoint and project), to drop lists when it changes.
    identity: String,
    /// Collection path → when fetched, and its names.
    lists: HashMap<&'static str, (Instant, Vec<String>)>,
    /// Collections being fetched now.
    fetching: Vec<&'static str>,
}

/// The names cache; cheap to clone (all clones share one cache).
#[derive(Clone, Default)]
pub struct NameCache {
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl NameCache {
    fn state(&self) -> MutexGuard<'_, State> {
        match self.shared.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Uses `client` from now on (the REPL's `client` variable); lists of another server or
    /// project are dropped.
    pub fn set_client(&self, client: Option<&Client>) {
        let identity =
            client.map_or_else(String::new, |c| format!("{} {}", c.endpoint(), c.project()));
        let mut state = self.state();
        if state.identity != identity {
            state.lists.clear();
            state.identity = identity;
        }
        state.client = client.cloned();
    }

    /// Marks every list stale (after an evaluation, which may have created or deleted things).
    pub fn invalidate(&self) {
        let mut state = self.state();
        let stale = Instant::now()
            .checked_sub(FRESH_FOR)
            .unwrap_or_else(Instant::now);
        for (fetched, _) in state.lists.values_mut() {
            *fetched = stale;
        }
    }

    /// Starts fetching a list in the background, if it is not fresh.
    pub fn prefetch(&self, collection: &'static str) {
        let mut state = self.state();
        self.refresh_if_stale(&mut state, collection);
    }

    /// The names in `collection` as last fetched (refreshing them in the background when stale).
    pub fn names(&self, collection: &'static str) -> Vec<String> {
        let mut state = self.state();
        self.refresh_if_stale(&mut state, collection);
        if !state.lists.contains_key(collection) && state.fetching.contains(&collection) {
            let deadline = Instant::now() + FIRST_WAIT;
            while !state.lists.contains_key(collection) && state.fetching.contains(&collection) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                state = match self.shared.1.wait_timeout(state, left) {
                    Ok((guard, _)) => guard,
                    Err(poisoned) => poisoned.into_inner().0,
                };
            }
        }
        state
            .lists
            .get(collection)
            .map(|(_, names)| names.clone())
            .unwrap_or_default()
    }

    fn refresh_if_stale(&self, state: &mut State, collection: &'static str) {
        let fresh = state
            .lists
            .get(collection)
            .is_some_and(|(at, _)| at.elapsed() < FRESH_FOR);
        let Some(client) = state.client.clone() else {
            return;
        };
        if fresh || state.fetching.contains(&collection) {
            return;
        }
        state.fetching.push(collection);
        let cache = self.clone();
        let identity = state.identity.clone();
        std::thread::spawn(move || {
            let names = client.names(collection).ok();
            let mut state = cache.state();
            state.fetching.retain(|c| *c != collection);
            if let Some(names) = names
                && state.identity == identity
            {
                state.lists.insert(collection, (Instant::now(), names));
            }
            cache.shared.1.notify_all();
        });
    }
}
