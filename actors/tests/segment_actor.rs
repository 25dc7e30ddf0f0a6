//! The segment actor's order and bookkeeping, with an outbox kept in memory (the Postgres and
//! MQTT one is tested on the real services in `pipelines/tests/it/distribution.rs`): versions go
//! out oldest first, one flush at a time, a failed send stops the flush with what went before
//! recorded, and a segment claimed elsewhere is left alone.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use portcullis_actors::{
    Arbiters, Claimed, EntityDirectory, EntityLimits, Flush, OutboxError, OutgoingVersion,
    SegmentActor, SegmentOutbox,
};
use portcullis_engine::distribution::{SegmentId, SegmentKey};
use portcullis_engine::TenantId;

#[derive(Default)]
struct Memory {
    /// Per segment: version → sent.
    versions: Mutex<BTreeMap<String, BTreeMap<u64, bool>>>,
    wire: Mutex<Vec<(String, u64)>>,
    /// Sending this version fails once.
    fail_once: Mutex<Option<u64>>,
    claimed_elsewhere: Mutex<bool>,
}

impl Memory {
    fn publish(&self, key: &SegmentKey, version: u64) {
        self.versions
            .lock()
            .unwrap()
            .entry(key.to_string())
            .or_default()
            .insert(version, false);
    }
}

impl SegmentOutbox for Memory {
    type Claim = ();

    fn sent_through(
        &self,
        key: SegmentKey,
    ) -> impl std::future::Future<Output = Result<u64, OutboxError>> + Send + 'static {
        let v = self
            .versions
            .lock()
            .unwrap()
            .get(&key.to_string())
            .map_or(0, |m| {
                m.iter()
                    .filter(|(_, s)| **s)
                    .map(|(v, _)| *v)
                    .max()
                    .unwrap_or(0)
            });
        async move { Ok(v) }
    }

    fn claim(
        &self,
        key: SegmentKey,
    ) -> impl std::future::Future<Output = Result<Claimed<()>, OutboxError>> + Send + 'static {
        let out = if *self.claimed_elsewhere.lock().unwrap() {
            None
        } else {
            let unsent =
                self.versions
                    .lock()
                    .unwrap()
                    .get(&key.to_string())
                    .map_or(Vec::new(), |m| {
                        m.iter()
                            .filter(|(_, sent)| !**sent)
                            .map(|(v, _)| OutgoingVersion {
                                version: *v,
                                envelope: v.to_string().into_bytes(),
                            })
                            .collect()
                    });
            Some(((), unsent))
        };
        async move { Ok(out) }
    }

    fn send(
        &self,
        key: SegmentKey,
        version: OutgoingVersion,
    ) -> impl std::future::Future<Output = Result<(), OutboxError>> + Send + 'static {
        let mut fail = self.fail_once.lock().unwrap();
        let result = if *fail == Some(version.version) {
            *fail = None;
            Err(OutboxError::Send("broker away".into()))
        } else {
            self.wire
                .lock()
                .unwrap()
                .push((key.to_string(), version.version));
            Ok(())
        };
        // A send takes time, as a broker's acknowledgement does: flushes that overlapped
        // would show here as versions sent twice or out of order.
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            result
        }
    }

    fn release(
        &self,
        _: (),
        key: SegmentKey,
        sent: Vec<u64>,
    ) -> impl std::future::Future<Output = Result<(), OutboxError>> + Send + 'static {
        if let Some(m) = self.versions.lock().unwrap().get_mut(&key.to_string()) {
            for v in sent {
                m.insert(v, true);
            }
        }
        async { Ok(()) }
    }
}

fn key(segment: &str) -> SegmentKey {
    SegmentKey {
        tenant: TenantId::parse("acme").unwrap(),
        segment: SegmentId::parse(segment).unwrap(),
    }
}

#[actix_rt::test]
async fn versions_go_out_in_order_once_and_a_failure_keeps_what_went_before() {
    let memory = Arc::new(Memory::default());
    let dir: Arc<EntityDirectory<SegmentActor<Memory>>> = Arc::new(EntityDirectory::new(
        Arc::new(Arbiters::start(2)),
        memory.clone(),
        EntityLimits::default(),
    ));
    let (hr, eu) = (key("hr"), key("eu"));
    for v in 1..=3 {
        memory.publish(&hr, v);
    }
    memory.publish(&eu, 1);
    *memory.fail_once.lock().unwrap() = Some(2);

    let failed = dir.send(&hr, Flush).await.unwrap().unwrap_err();
    assert_eq!(failed.sent, [1], "v1 went out before v2 failed");
    // Many wake-ups at once: handled one at a time, so nothing goes out twice or out of order.
    let flushes: Vec<_> = (0..5)
        .map(|_| {
            let (dir, hr) = (dir.clone(), hr.clone());
            actix_rt::spawn(async move { dir.send(&hr, Flush).await })
        })
        .collect();
    let mut sent = Vec::new();
    for f in flushes {
        sent.extend(f.await.unwrap().unwrap().unwrap().sent);
    }
    assert_eq!(sent, [2, 3]);
    let flushed = dir.send(&eu, Flush).await.unwrap().unwrap();
    assert_eq!((flushed.sent, flushed.sent_through), (vec![1], 1));

    let hr_wire: Vec<u64> = memory
        .wire
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k == "acme/hr")
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(
        hr_wire,
        [1, 2, 3],
        "on the wire: every version once, in order"
    );

    // Claimed by another engine: left alone, and sent by a later flush once free.
    memory.publish(&hr, 4);
    *memory.claimed_elsewhere.lock().unwrap() = true;
    assert!(dir.send(&hr, Flush).await.unwrap().unwrap().sent.is_empty());
    *memory.claimed_elsewhere.lock().unwrap() = false;
    let flushed = dir.send(&hr, Flush).await.unwrap().unwrap();
    assert_eq!((flushed.sent, flushed.sent_through), (vec![4], 4));
}
