//! Following answered and expired requests, whichever process answered them: each answer and
//! expiry sends a NOTIFY on [`APPROVALS_CHANNEL`] with the request's id, at its commit.

use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::APPROVALS_CHANNEL;
use crate::sinks::postgres::notifications::{follow, Notice};

/// What a follower hears.
pub enum Heard {
    /// The listener (re)connected: answers sent while it was away were not heard.
    Connected,
    /// This request was answered or expired.
    Answered(Uuid),
}

/// Listens until `cancel` fires (or the receiver is dropped); abort the handle to stop sooner.
pub fn follow_answers(
    pool: PgPool,
    cancel: CancellationToken,
) -> (JoinHandle<()>, mpsc::UnboundedReceiver<Heard>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let listener = tokio::spawn(follow(pool, APPROVALS_CHANNEL, cancel, move |notice| {
        match notice {
            Notice::Connected => tx.send(Heard::Connected).is_ok(),
            // Anything else on the channel is not ours to act on.
            Notice::Payload(p) => {
                Uuid::parse_str(&p).map_or(true, |id| tx.send(Heard::Answered(id)).is_ok())
            }
        }
    }));
    (listener, rx)
}
