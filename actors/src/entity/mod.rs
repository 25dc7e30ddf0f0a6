//! Entity actors: one generic, keyed directory of supervised actix actors.
//!
//! An entity is the live state of one key of one kind: a tenant today; a segment, an agent
//! session or an anomaly model next. The [`EntityDirectory`] of a kind activates an entity on
//! its first message (its state loaded then, off the arbiter threads), places it on one of the
//! shared [`Arbiters`] by hash of its key (so one key's messages are handled in order and
//! different keys run in parallel), and passivates it after an idle time or when its kind has
//! more live entities than its cap, least recently used first, as Akka Cluster Sharding and
//! Orleans do: a million registered agents cost memory only for those active.
//!
//! Supervision: a handler runs what can fail on user input (Rego, models, decoding) inside
//! [`catch_panic`]. A panic there answers the message in flight with an error, and stops the
//! actor; its actix `Supervisor` restarts it at once, and `Supervised::restarting` reloads its
//! state. Other actors, on the same arbiter or not, keep serving.
//!
//! At most one actor lives per key: a passivated actor finishes what its mailbox holds, and the
//! key is activated again only once it has stopped (its [`Lease`] says when).

mod arbiters;
mod directory;
mod lease;
mod limits;
mod stats;

use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use actix::{Actor, ActorContext, Context, Supervised};
use tracing::error;

pub use arbiters::Arbiters;
pub use directory::{EntityDirectory, EntityError};
pub use lease::Lease;
pub use limits::EntityLimits;
pub use stats::{EntityCounts, EntityStats};

/// An actor that lives in an [`EntityDirectory`].
///
/// Implementations keep the [`Lease`] they are activated with for as long as they live, and
/// call [`Lease::restarting`] from `Supervised::restarting`, where they reload their state.
pub trait Entity: Actor<Context = Context<Self>> + Supervised + Send {
    /// What names one entity of this kind.
    type Key: Clone + Eq + Hash + Display + Send + Sync + 'static;
    /// What activation needs (stores, pools), shared by every entity of the kind.
    type Services: Send + Sync + 'static;
    /// Why an entity could not be activated (it does not exist, its state cannot be loaded).
    type Error: std::error::Error + Clone + Send + Sync + 'static;
    /// The kind's name in metrics and logs: `tenant`, `segment`, `agent_session`, …
    const KIND: &'static str;

    /// Loads the state of `key`'s entity. Runs on the async runtime, not on an arbiter:
    /// blocking work (file reads, compiles, queries) belongs in `spawn_blocking` or an async
    /// client.
    fn activate(
        key: Self::Key,
        services: Arc<Self::Services>,
        lease: Lease,
    ) -> impl Future<Output = Result<Self, Self::Error>> + Send;
}

/// A handler's work panicked: the actor is restarting, and this message has no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {kind} actor panicked while handling this message; it was restarted")]
pub struct Panicked {
    pub kind: &'static str,
}

/// Runs `work` for a handler of `A`. A panic in it stops the actor, so that its supervisor
/// restarts it with its state reloaded (`Supervised::restarting`), and is returned as
/// [`Panicked`] for the message in flight. actix itself does not catch panics in handlers: one
/// would end the actor's task, and its supervisor with it.
pub fn catch_panic<A: Entity, R>(
    ctx: &mut Context<A>,
    key: &A::Key,
    work: impl FnOnce() -> R,
) -> Result<R, Panicked> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|_| {
        error!(kind = A::KIND, key = %key, "actor panicked; restarting it with its state reloaded");
        ctx.stop();
        Panicked { kind: A::KIND }
    })
}
