//! Stage 1: each message becomes events, or dead letters that say why not.

use std::sync::{Arc, RwLock};

use portcullis_engine::decode::{decode_cloudtrail, decode_device, Rejected};
use portcullis_engine::{DeadLetter, Event, Origin, TenantRegistry};

use super::{Inbound, RowSet};

/// The tenant registry, replaced whole when it is re-read from Postgres.
pub type SharedRegistry = Arc<RwLock<Arc<TenantRegistry>>>;

/// Limits and names the decoders need.
#[derive(Debug, Clone)]
pub struct DecodeLimits {
    pub kafka_max_bytes: usize,
    pub mqtt_max_bytes: usize,
    pub mqtt_prefix: String,
}

/// An event and the message it came from (its index in the batch).
pub struct Decoded {
    pub message: usize,
    pub event: Event,
}

pub struct Decoder {
    registry: SharedRegistry,
    limits: DecodeLimits,
}

impl Decoder {
    pub fn new(registry: SharedRegistry, limits: DecodeLimits) -> Self {
        Self { registry, limits }
    }

    /// The batch's events, in order, and one row set per message holding its dead letters so
    /// far.
    pub fn decode(&self, batch: &[Inbound]) -> (Vec<Decoded>, Vec<RowSet>) {
        let registry = self
            .registry
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|p| p.into_inner().clone());
        let mut events = Vec::with_capacity(batch.len());
        let mut sets: Vec<RowSet> = Vec::with_capacity(batch.len());
        for (message, msg) in batch.iter().enumerate() {
            let mut set = RowSet::default();
            let mut take = |decoded: Result<Event, Rejected>| match decoded {
                Ok(event) => events.push(Decoded { message, event }),
                Err(r) => set.dead_letters.push(rejected(&msg.origin, r)),
            };
            match &msg.origin {
                Origin::Kafka { .. } => {
                    for decoded in
                        decode_cloudtrail(&msg.payload, &registry, self.limits.kafka_max_bytes)
                    {
                        take(decoded);
                    }
                }
                Origin::Mqtt { topic } => take(decode_device(
                    &self.limits.mqtt_prefix,
                    topic,
                    &msg.payload,
                    &registry,
                    self.limits.mqtt_max_bytes,
                )),
            }
            sets.push(set);
        }
        (events, sets)
    }
}

fn rejected(origin: &Origin, r: Rejected) -> DeadLetter {
    let mut d = DeadLetter::new(origin.clone(), r.record_index, &r.raw, r.error.to_string());
    d.tenant_hint = r.tenant_hint;
    d
}
