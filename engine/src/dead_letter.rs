//! Records that could not be decoded or evaluated. They are kept, never dropped.

use serde::Serialize;

use crate::{ids, Source};

/// Where a message came from, precisely enough to find it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Origin {
    Kafka {
        topic: String,
        partition: i32,
        offset: i64,
    },
    Mqtt {
        topic: String,
    },
}

impl Origin {
    pub fn source(&self) -> Source {
        match self {
            Origin::Kafka { .. } => Source::Kafka,
            Origin::Mqtt { .. } => Source::Mqtt,
        }
    }

    pub fn topic(&self) -> &str {
        match self {
            Origin::Kafka { topic, .. } | Origin::Mqtt { topic } => topic,
        }
    }
}

/// Largest raw payload kept in a dead letter; the rest is cut and the cut is said in the reason.
pub const MAX_DEAD_LETTER_PAYLOAD: usize = 256 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// Stable id so a redelivered bad message yields one row, not two.
    pub id: String,
    pub origin: Origin,
    /// Index of the record inside a CloudTrail log file, when only that record was bad.
    pub record_index: Option<u32>,
    pub tenant_hint: Option<String>,
    pub payload: Vec<u8>,
    pub reason: String,
}

impl DeadLetter {
    pub fn new(
        origin: Origin,
        record_index: Option<u32>,
        payload: &[u8],
        reason: impl Into<String>,
    ) -> Self {
        let mut reason = reason.into();
        let id = match &origin {
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => match record_index {
                Some(i) => format!("kafka:{topic}:{partition}:{offset}:{i}"),
                None => format!("kafka:{topic}:{partition}:{offset}"),
            },
            // MQTT has no offsets; a hash of topic and payload identifies a redelivery. The topic
            // is hashed, not embedded, so a hostile topic cannot make the key too long to index.
            Origin::Mqtt { topic } => {
                let mut keyed = topic.as_bytes().to_vec();
                keyed.push(0);
                keyed.extend_from_slice(payload);
                format!("mqtt:{}", ids::content_hash(&keyed))
            }
        };
        let payload = if payload.len() > MAX_DEAD_LETTER_PAYLOAD {
            reason.push_str(&format!(
                " (payload of {} bytes cut to the first {MAX_DEAD_LETTER_PAYLOAD})",
                payload.len()
            ));
            payload[..MAX_DEAD_LETTER_PAYLOAD].to_vec()
        } else {
            payload.to_vec()
        };
        Self {
            id,
            origin,
            record_index,
            tenant_hint: None,
            payload,
            reason,
        }
    }

    pub fn with_tenant_hint(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_hint = Some(tenant.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_origin() {
        let k = Origin::Kafka {
            topic: "ct".into(),
            partition: 2,
            offset: 9,
        };
        assert_eq!(
            DeadLetter::new(k.clone(), None, b"x", "r").id,
            "kafka:ct:2:9"
        );
        assert_eq!(DeadLetter::new(k, Some(3), b"x", "r").id, "kafka:ct:2:9:3");
        let m = Origin::Mqtt {
            topic: "p/a".into(),
        };
        let a = DeadLetter::new(m.clone(), None, b"x", "r");
        assert_eq!(a.id, DeadLetter::new(m.clone(), None, b"x", "other").id);
        assert_ne!(a.id, DeadLetter::new(m, None, b"y", "r").id);
        let other_topic = DeadLetter::new(
            Origin::Mqtt {
                topic: "p/b".into(),
            },
            None,
            b"x",
            "r",
        );
        assert_ne!(a.id, other_topic.id);
        // A hostile topic cannot make the key long: it is always `mqtt:` + 64 hex digits.
        let long = DeadLetter::new(
            Origin::Mqtt {
                topic: "t".repeat(10_000),
            },
            None,
            b"x",
            "r",
        );
        assert_eq!(long.id.len(), 5 + 64);
    }

    #[test]
    fn oversized_payloads_are_cut_and_say_so() {
        let big = vec![b'a'; MAX_DEAD_LETTER_PAYLOAD + 10];
        let d = DeadLetter::new(Origin::Mqtt { topic: "t".into() }, None, &big, "too big");
        assert_eq!(d.payload.len(), MAX_DEAD_LETTER_PAYLOAD);
        assert!(d.reason.starts_with("too big (payload of"));
    }
}
