//! Following a Postgres NOTIFY channel through reconnects: the one way the engine learns of
//! changes made by other processes (token revocations, published segment versions).

use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::retry::Backoff;

/// What a follower is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The listening connection is (re)made. Notifications sent while it was down are lost:
    /// whoever follows must look at the state afresh.
    Connected,
    /// A notification's payload.
    Payload(String),
}

/// Listens on `channel` until `cancel` fires or `on` returns `false`, reconnecting with the
/// shared backoff; `on` hears `Connected` after each (re)connection.
///
/// The listening connection is its own, made with `pool`'s settings but outside it: a listener
/// holds its connection for as long as it listens, and each one taken from the shared pool
/// would leave one fewer for the work (a small pool ran out once a fourth follower came).
pub async fn follow(
    pool: PgPool,
    channel: &'static str,
    cancel: CancellationToken,
    mut on: impl FnMut(Notice) -> bool,
) {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_lazy_with(pool.connect_options().as_ref().clone());
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        let attempt = async {
            let mut l = PgListener::connect_with(&pool).await?;
            l.listen(channel).await?;
            Ok::<_, sqlx::Error>(l)
        };
        let attempt = tokio::select! {
            l = attempt => l,
            _ = cancel.cancelled() => return,
        };
        match attempt {
            Ok(mut listener) => {
                if !on(Notice::Connected) {
                    return;
                }
                loop {
                    let next = tokio::select! {
                        n = listener.try_recv() => n,
                        _ = cancel.cancelled() => return,
                    };
                    match next {
                        Ok(Some(n)) => {
                            if !on(Notice::Payload(n.payload().to_owned())) {
                                return;
                            }
                        }
                        Ok(None) | Err(_) => {
                            tracing::warn!(
                                channel,
                                "lost the Postgres connection listening for changes; reconnecting"
                            );
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(channel, error = %e, "cannot listen for changes yet; retrying")
            }
        }
        if backoff.wait(&cancel).await.is_err() {
            return;
        }
    }
}

/// What a follower of a channel hears, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    Payload(String),
    /// The listening connection was made again: notifications sent meanwhile were missed, so
    /// whatever they would have said must be looked at afresh. (Not said for the first one.)
    Reconnected,
}

/// `channel`'s notifications and reconnections, in order; the receiver ends when `cancel`
/// fires.
pub fn heard(
    pool: PgPool,
    channel: &'static str,
    cancel: CancellationToken,
) -> mpsc::UnboundedReceiver<Heard> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut first = true;
    tokio::spawn(follow(pool, channel, cancel, move |notice| {
        let heard = match notice {
            Notice::Payload(p) => Heard::Payload(p),
            Notice::Connected if std::mem::take(&mut first) => return true,
            Notice::Connected => Heard::Reconnected,
        };
        tx.send(heard).is_ok()
    }));
    rx
}
