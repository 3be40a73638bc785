//! Pending operations: a call made with `wait: false` leaves its operation on the
//! object; `obj.wait()` or the object's next call joins it first, so scripts never race.

use std::time::Duration;

use super::api::{Api, RegisterInto};
use super::client::Client;
use super::errors::{RhaiResultOf, lxd_error};
use super::runtime::Bridge;
use crate::lxd::instance::{Instances, Watched};
use crate::lxd::{self, response::Operation};

/// What the object must do once its pending operation has ended.
#[derive(Debug, Clone, PartialEq)]
pub enum After {
    /// Reload the object from the server.
    Reload,
    /// The object now has this name; reload it under the new name.
    Renamed(String),
    /// The object is gone.
    Deleted,
    /// Nothing to do (a publish: the image is the result, not this object).
    Nothing,
}

/// An operation started by an object and not yet joined.
#[derive(Debug, Clone)]
pub struct Pending {
    operation: String,
    after: After,
    watched: Option<Watched>,
}

impl Pending {
    /// Remembers `op`, started through `client`, to be followed by `after`. Until something
    /// joins it, it is one of the [`unjoined`] operations a run waits for before it ends.
    pub fn new(client: &lxd::Client, op: &Operation, after: After) -> Self {
        let description = op
            .field("description")
            .and_then(|d| d.as_str().map(str::to_owned))
            .unwrap_or_default();
        unjoined().push(Unjoined {
            client: client.clone(),
            id: op.id().to_owned(),
            description,
        });
        Pending {
            operation: op.id().to_owned(),
            after,
            watched: None,
        }
    }

    /// Remembers an instance operation whose failure is explained alike on LXD and Incus.
    pub fn watched(client: &lxd::Client, op: &Operation, after: After, watched: Watched) -> Self {
        Pending {
            watched: Some(watched),
            ..Pending::new(client, op, after)
        }
    }

    /// Waits for the operation. The outer error is an interrupt; the inner one is how the
    /// operation (or the wait) failed, still typed.
    fn wait(
        &self,
        bridge: &Bridge,
        client: &lxd::Client,
        timeout: Option<Duration>,
    ) -> RhaiResultOf<lxd::Result<Operation>> {
        bridge.block_on(async {
            let waited = client.wait_operation(&self.operation, timeout).await;
            Ok(match (waited, &self.watched) {
                (Err(failure), Some(watched)) => Err(Instances::new(client.clone(), None)
                    .explain_failure(watched, failure)
                    .await),
                (waited, _) => waited,
            })
        })
    }
}

/// Takes the pending operation of `slot` and joins it; `None` when there was none.
///
/// On a timeout the operation stays pending, so a later `wait()` can join it again.
pub fn join_slot(
    slot: &mut Option<Pending>,
    bridge: &Bridge,
    client: &lxd::Client,
    timeout: Option<Duration>,
) -> RhaiResultOf<Option<(Operation, After)>> {
    let Some(pending) = slot.take() else {
        return Ok(None);
    };
    let waited = pending.wait(bridge, client, timeout)?;
    if !matches!(&waited, Err(err) if err.kind() == lxd::ErrorKind::Timeout) {
        unjoined().retain(|u| u.id != pending.operation);
    }
    match waited {
        Ok(op) => Ok(Some((op, pending.after))),
        Err(err) => {
            if err.kind() == lxd::ErrorKind::Timeout {
                *slot = Some(pending);
            }
            Err(lxd_error(err))
        }
    }
}

/// An operation an object started without waiting that nothing has joined yet.
#[derive(Debug)]
struct Unjoined {
    client: lxd::Client,
    id: String,
    description: String,
}

/// The operations started without waiting and not joined since (by `wait()` or the object's
/// next call). A run joins them before it ends, so that none fails unseen.
static UNJOINED: std::sync::Mutex<Vec<Unjoined>> = std::sync::Mutex::new(Vec::new());

fn unjoined() -> std::sync::MutexGuard<'static, Vec<Unjoined>> {
    UNJOINED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An operation started without waiting that failed after its script stopped looking.
#[derive(Debug)]
pub struct UnseenFailure {
    /// The operation's id.
    pub id: String,
    /// LXD's description of it ("Renaming instance").
    pub description: String,
    /// Where it ran: `project 'default' of remote 'main'`.
    pub place: String,
    /// How it failed.
    pub error: lxd::Error,
}

/// Waits for every operation started without waiting and never joined (all at once), and
/// returns those that failed. Called as a run ends, after the script's last statement.
pub async fn join_unjoined() -> Vec<UnseenFailure> {
    let left = std::mem::take(&mut *unjoined());
    let waits = left.into_iter().map(|u| async move {
        match u.client.wait_operation(&u.id, None).await {
            // Gone: it ended long enough ago for LXD to forget it; nothing to say.
            Err(e) if e.kind() == lxd::ErrorKind::NotFound => None,
            Err(error) => Some(UnseenFailure {
                place: u.client.place(),
                id: u.id,
                description: u.description,
                error,
            }),
            Ok(_) => None,
        }
    });
    futures_util::future::join_all(waits)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// An object that can have a pending operation: it gets `join`, `settle` and `follow` from
/// four accessors.
pub trait Settles {
    /// The object's pending-operation slot.
    fn pending(&mut self) -> &mut Option<Pending>;
    /// The client it talks through.
    fn owner(&self) -> &Client;
    /// Takes its new name after a rename.
    fn rename_to(&mut self, name: String);
    /// Reloads from the server, dropping local edits.
    fn reload(&mut self) -> RhaiResultOf<()>;

    /// Joins the pending operation, if any, and does what it left to do.
    fn join(&mut self, timeout: Option<Duration>) -> RhaiResultOf<()> {
        let (bridge, api) = (self.owner().bridge.clone(), self.owner().lxd.clone());
        match join_slot(self.pending(), &bridge, &api, timeout)? {
            Some((_, after)) => self.settle(after),
            None => Ok(()),
        }
    }

    /// Does what an ended operation left to do.
    fn settle(&mut self, after: After) -> RhaiResultOf<()> {
        match after {
            After::Reload => self.reload(),
            After::Renamed(name) => {
                self.rename_to(name);
                self.reload()
            }
            After::Deleted | After::Nothing => Ok(()),
        }
    }

    /// Follows what a call started: waits for its operation (then settles) or leaves it
    /// pending; a call LXD answered at once settles now.
    fn follow(&mut self, op: Option<Operation>, wait: bool, after: After) -> RhaiResultOf<()> {
        match op {
            Some(op) => {
                let pending = Pending::new(&self.owner().lxd, &op, after);
                self.follow_pending(pending, wait)
            }
            None => {
                *self.pending() = None;
                self.settle(after)
            }
        }
    }

    /// Makes `pending` the object's pending operation, and joins it now when `wait`.
    fn follow_pending(&mut self, pending: Pending, wait: bool) -> RhaiResultOf<()> {
        *self.pending() = Some(pending);
        if wait { self.join(None) } else { Ok(()) }
    }
}

/// Registers the two overloads of a call that starts an operation: `name()`, which waits as
/// `waits` says (pylxd's default for that call), and `name(wait)`. `what` says what it does.
pub fn register_waitable<T: rhai::Variant + Clone>(
    api: &mut Api,
    name: &'static str,
    what: &str,
    waits: bool,
    call: fn(&mut T, bool) -> RhaiResultOf<()>,
) {
    rhai::FuncRegistration::new(name)
        .with_comments([default_wait_doc(what, waits)])
        .register_into(api, move |t: &mut T| call(t, waits));
    rhai::FuncRegistration::new(name)
        .with_comments([format!("/// {what}; waits when `wait` is true.")])
        .register_into(api, move |t: &mut T, wait: bool| call(t, wait));
}

/// [`register_waitable`] for a call that takes a name first (`rename(name)`, `rename(name, wait)`).
pub fn register_waitable_named<T: rhai::Variant + Clone>(
    api: &mut Api,
    name: &'static str,
    what: &str,
    waits: bool,
    call: fn(&mut T, &str, bool) -> RhaiResultOf<()>,
) {
    rhai::FuncRegistration::new(name)
        .with_comments([default_wait_doc(what, waits)])
        .register_into(api, move |t: &mut T, key: &str| call(t, key, waits));
    rhai::FuncRegistration::new(name)
        .with_comments([format!("/// {what}; waits when `wait` is true.")])
        .register_into(api, move |t: &mut T, key: &str, wait: bool| {
            call(t, key, wait)
        });
}

/// The doc line of the overload without `wait`.
fn default_wait_doc(what: &str, waits: bool) -> String {
    match waits {
        true => format!("/// {what} and waits."),
        false => format!("/// {what} (does not wait)."),
    }
}
