//! The event path against a sink in memory: what is judged once, what is retried, what is set
//! aside. Real tenant actors and a real policy store; only the sink stands in for Postgres.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use portcullis_actors::{
    Arbiters, BundleSource, EntityLimits, LoadError, PolicyStore, TenantDirectory,
};
use portcullis_engine::{Bundle, Origin, TenantId, TenantRegistry};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::retry::Cancelled;
use crate::sources::memory::run_memory_source;
use crate::sources::BatchLimits;

const ACCOUNT: &str = "111111111111";

/// Stamps every decision with the time it was made, so a second judgement would show.
const STAMPED: &str = "package tenants.acme\nimport rego.v1\n\
    decision := {\"allow\": input.event.action != \"DeleteBucket\", \"at\": input.context.time}";

struct Bundles;

impl BundleSource for Bundles {
    fn load(&self, tenant: &TenantId) -> Result<Bundle, LoadError> {
        if tenant.as_str() != "acme" {
            return Err(LoadError::NotFound(tenant.to_string()));
        }
        Ok(Bundle {
            tenant: tenant.clone(),
            modules: vec![("p.rego".into(), STAMPED.into())],
            data: None,
            revision: None,
            mask: Vec::new(),
            packs: Vec::new(),
        })
    }
}

/// Keeps every write attempt; fails the first `unavailable` of them, and refuses any set that
/// holds an event named `refuse`.
#[derive(Default)]
struct MemorySink {
    unavailable: Mutex<usize>,
    refuse: Option<&'static str>,
    attempts: Mutex<Vec<Vec<RowSet>>>,
    committed: Mutex<Vec<RowSet>>,
}

impl RowSink for MemorySink {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn write<'a>(&'a self, sets: &'a [RowSet]) -> BoxFuture<'a, Result<WriteCounts, SinkError>> {
        Box::pin(async move {
            self.attempts.lock().unwrap().push(sets.to_vec());
            {
                let mut down = self.unavailable.lock().unwrap();
                if *down > 0 {
                    *down -= 1;
                    return Err(SinkError::Unavailable("down for the test".into()));
                }
            }
            let refused = |s: &RowSet| {
                s.events
                    .iter()
                    .any(|e| Some(e.action.as_str()) == self.refuse)
            };
            if sets.iter().any(refused) {
                return Err(SinkError::Refused("no such action here".into()));
            }
            let mut counts = WriteCounts::default();
            counts.set("events", sets.iter().map(|s| s.events.len() as u64).sum());
            self.committed.lock().unwrap().extend(sets.iter().cloned());
            Ok(counts)
        })
    }
}

#[derive(Default)]
struct Recorded(Mutex<Vec<usize>>);

impl AfterCommit for Recorded {
    fn committed(&self, sets: &[RowSet]) {
        self.0.lock().unwrap().push(sets.len());
    }
}

fn path_over(sink: Arc<MemorySink>) -> EventPath {
    let mut registry = TenantRegistry::new();
    registry.add_account(ACCOUNT, TenantId::parse("acme").unwrap());
    registry.add_account("222222222222", TenantId::parse("ghost").unwrap());
    let registry: SharedRegistry = Arc::new(RwLock::new(Arc::new(registry)));
    let store = Arc::new(PolicyStore::new(Arc::new(Bundles), "decision"));
    let directory = Arc::new(TenantDirectory::new(
        Arc::new(Arbiters::start(1)),
        store,
        EntityLimits::default(),
    ));
    let decoder = Decoder::new(
        registry,
        DecodeLimits {
            kafka_max_bytes: 1 << 20,
            mqtt_max_bytes: 1 << 20,
            mqtt_prefix: "portcullis".into(),
        },
    );
    EventPath::new(decoder, directory, sink, Arc::new(Default::default()))
}

fn message(offset: i64, account: &str, action: &str) -> Inbound {
    let record = json!({
        "eventVersion": "1.08", "eventID": format!("e{offset}"), "eventName": action,
        "eventTime": "2026-11-30T10:00:00Z", "eventSource": "s3.amazonaws.com",
        "recipientAccountId": account, "eventType": "AwsApiCall",
        "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::1:user/alice", "userName": "alice"},
    });
    Inbound::new(
        Origin::Kafka {
            topic: "t".into(),
            partition: 0,
            offset,
        },
        serde_json::to_vec(&record).unwrap(),
    )
}

/// Every decision result in `sets`, in order.
fn results(sets: &[RowSet]) -> Vec<serde_json::Value> {
    sets.iter()
        .flat_map(|s| s.decisions.iter().map(|d| d.result.clone()))
        .collect()
}

#[actix_rt::test]
async fn a_write_that_fails_is_retried_without_judging_again() {
    let sink = Arc::new(MemorySink {
        unavailable: Mutex::new(3),
        ..Default::default()
    });
    let path = path_over(sink.clone());
    let batch = [
        message(1, ACCOUNT, "GetObject"),
        message(2, ACCOUNT, "PutObject"),
    ];
    let committed = path
        .process(&batch, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(committed.stored.of("events"), 2);
    let attempts = sink.attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 4, "three failures, then the commit");
    // Retries are 100, 200 and 400 ms apart: a second judgement would carry a later time.
    let first = results(&attempts[0]);
    assert_eq!(first.len(), 2);
    for attempt in &attempts[1..] {
        assert_eq!(results(attempt), first, "judged once, written four times");
    }
    assert_eq!(results(&committed.sets), first);
}

#[actix_rt::test]
async fn rows_the_sink_refuses_are_set_aside_message_by_message_without_judging_again() {
    let sink = Arc::new(MemorySink {
        refuse: Some("DeleteBucket"),
        ..Default::default()
    });
    let path = path_over(sink.clone());
    let batch = [
        message(1, ACCOUNT, "GetObject"),
        message(2, ACCOUNT, "DeleteBucket"),
        message(3, ACCOUNT, "PutObject"),
    ];
    let committed = path
        .process(&batch, &CancellationToken::new())
        .await
        .unwrap();
    let sets = &committed.sets;
    assert_eq!(sets.len(), 3);
    assert_eq!(sets[0].events[0].event_id, "e1");
    assert_eq!(sets[2].events[0].event_id, "e3");
    assert!(sets[1].events.is_empty() && sets[1].decisions.is_empty());
    let reason = &sets[1].dead_letters[0].reason;
    assert!(
        reason.contains("could not be stored in memory") && reason.contains("no such action"),
        "{reason}"
    );
    assert_eq!(
        sets[1].dead_letters[0].payload, batch[1].payload,
        "kept whole"
    );
    let attempts = sink.attempts.lock().unwrap().clone();
    let judged = results(&attempts[0]);
    assert_eq!(
        results(&committed.sets),
        [judged[0].clone(), judged[2].clone()],
        "the rows written one by one are the ones judged first"
    );
    // Exactly what was committed: messages 1, 2 (as a dead letter) and 3, once each.
    assert_eq!(sink.committed.lock().unwrap().len(), 3);
}

#[actix_rt::test]
async fn events_of_a_tenant_without_a_policy_become_dead_letters_that_say_why() {
    let sink = Arc::new(MemorySink::default());
    let path = path_over(sink.clone());
    let batch = [
        message(1, "222222222222", "GetObject"),
        message(2, ACCOUNT, "GetObject"),
    ];
    let committed = path
        .process(&batch, &CancellationToken::new())
        .await
        .unwrap();
    let dead = &committed.sets[0].dead_letters;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].reason, "no policy bundle for tenant ghost");
    assert_eq!(dead[0].tenant_hint.as_deref(), Some("ghost"));
    assert_eq!(committed.sets[1].events.len(), 1);
}

#[actix_rt::test]
async fn shutting_down_while_the_sink_is_away_commits_and_acknowledges_nothing() {
    let sink = Arc::new(MemorySink {
        unavailable: Mutex::new(usize::MAX),
        ..Default::default()
    });
    let path = path_over(sink.clone());
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        stop.cancel();
    });
    let outcome = path
        .process(&[message(1, ACCOUNT, "GetObject")], &cancel)
        .await;
    assert_eq!(outcome.unwrap_err(), Cancelled);
    assert!(sink.committed.lock().unwrap().is_empty());
}

#[actix_rt::test]
async fn the_memory_source_feeds_every_message_once_and_after_commit_steps_see_each_batch() {
    let sink = Arc::new(MemorySink::default());
    let seen = Arc::new(Recorded::default());
    let path = Arc::new(path_over(sink.clone()).with_after_commit(seen.clone()));
    let messages: Vec<Inbound> = (0..95).map(|i| message(i, ACCOUNT, "GetObject")).collect();
    let limits = BatchLimits {
        max_messages: 10,
        max_bytes: usize::MAX,
        linger: Duration::ZERO,
    };
    let run = run_memory_source(&path, messages, limits, 2, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!((run.messages, run.batches), (95, 10));
    assert_eq!(run.stored.of("events"), 95);
    let committed = sink.committed.lock().unwrap();
    let mut ids: Vec<String> = committed
        .iter()
        .flat_map(|s| s.events.iter().map(|e| e.event_id.clone()))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 95, "every message once");
    let batches = seen.0.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), 95);
    assert_eq!(batches.len(), 10);
    let by_size: HashMap<usize, usize> = batches.iter().fold(HashMap::new(), |mut m, n| {
        *m.entry(*n).or_default() += 1;
        m
    });
    assert_eq!(by_size, HashMap::from([(10, 9), (5, 1)]));
}
