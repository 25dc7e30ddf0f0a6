//! Where a segment actor's versions come from and go to: Postgres and MQTT, implemented at the
//! edges (`pipelines`), so the actor holds only the order and the state.

use std::future::Future;

use portcullis_engine::distribution::SegmentKey;

/// One published version, as it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingVersion {
    pub version: u64,
    /// The signed envelope's JSON, exactly as stored.
    pub envelope: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    #[error("cannot read or record segment versions: {0}")]
    Store(String),
    #[error("cannot send to agents: {0}")]
    Send(String),
}

/// A claim on a segment and its unsent versions, oldest first; `None`: held elsewhere.
pub type Claimed<C> = Option<(C, Vec<OutgoingVersion>)>;

/// The segment store and the agents' broker, as a segment actor uses them. Futures are
/// `'static`: implementations clone what they need (a pool, a publisher).
pub trait SegmentOutbox: Send + Sync + 'static {
    /// Holds a segment for sending: while it is held, no other engine sends that segment, so
    /// versions cannot go out of order (and a retained older version cannot replace a newer).
    type Claim: Send + 'static;

    /// The latest version of `key` already sent (0: none).
    fn sent_through(
        &self,
        key: SegmentKey,
    ) -> impl Future<Output = Result<u64, OutboxError>> + Send + 'static;

    /// Claims `key` and reads its versions published and not yet sent, oldest first; `None`
    /// when another engine holds it (that engine sends them).
    fn claim(
        &self,
        key: SegmentKey,
    ) -> impl Future<Output = Result<Claimed<Self::Claim>, OutboxError>> + Send + 'static;

    /// Publishes one version to `key`'s agents; resolves once the broker has acknowledged it.
    fn send(
        &self,
        key: SegmentKey,
        version: OutgoingVersion,
    ) -> impl Future<Output = Result<(), OutboxError>> + Send + 'static;

    /// Records that `sent` were sent and lets the segment go.
    fn release(
        &self,
        claim: Self::Claim,
        key: SegmentKey,
        sent: Vec<u64>,
    ) -> impl Future<Output = Result<(), OutboxError>> + Send + 'static;
}
