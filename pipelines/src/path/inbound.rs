//! One message as it arrived from a source, kept until its rows are committed.

use std::time::Instant;

use portcullis_engine::Origin;

#[derive(Debug, Clone)]
pub struct Inbound {
    pub origin: Origin,
    pub payload: Vec<u8>,
    /// When it arrived, for end-to-end latency.
    pub received: Instant,
}

impl Inbound {
    pub fn new(origin: Origin, payload: Vec<u8>) -> Self {
        Self {
            origin,
            payload,
            received: Instant::now(),
        }
    }
}
