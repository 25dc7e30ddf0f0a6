//! The entity directory on its own, with a small entity kind: supervision, passivation, the
//! per-kind cap, one actor per key.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_actors::entity::Panicked;
use portcullis_actors::{Arbiters, EntityDirectory, EntityError, EntityLimits};
use support::worker::{NoSuchWorker, Services, Work, Worker, MISSING};

fn directory(arbiters: usize, limits: EntityLimits) -> EntityDirectory<Worker> {
    EntityDirectory::new(
        Arc::new(Arbiters::start(arbiters)),
        Arc::new(Services::default()),
        limits,
    )
}

async fn work(dir: &EntityDirectory<Worker>, key: u32) -> Result<u32, Panicked> {
    dir.send(&key, Work { panic: false }).await.unwrap()
}

/// Waits until `check` holds, for at most 10 s.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let until = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < until, "{what}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_rt::test]
async fn a_panicking_handler_restarts_only_its_actor_with_its_state_reloaded() {
    // One arbiter: both actors share its thread.
    let dir = directory(1, EntityLimits::default());
    assert_eq!(work(&dir, 1).await, Ok(1));
    assert_eq!(work(&dir, 2).await, Ok(1));
    let before = dir.addr(&1).await.unwrap();

    // The message in flight gets an error; those queued behind it are handled by the actor
    // restarted with its state reloaded (its count starts again).
    let (panicked, next, after) = tokio::join!(
        dir.send(&1, Work { panic: true }),
        dir.send(&1, Work { panic: false }),
        dir.send(&1, Work { panic: false }),
    );
    assert_eq!(panicked.unwrap(), Err(Panicked { kind: "worker" }));
    assert_eq!(next.unwrap(), Ok(1));
    assert_eq!(after.unwrap(), Ok(2));
    // The other actor on the same thread never noticed.
    assert_eq!(work(&dir, 2).await, Ok(2));

    let counts = dir.stats().read();
    assert_eq!(counts.restarts, 1);
    assert_eq!(counts.activations, 2, "restarted, not activated again");
    assert_eq!(dir.services().loads.load(Ordering::SeqCst), 3);
    assert_eq!(
        dir.addr(&1).await.unwrap(),
        before,
        "supervision keeps the address"
    );
}

#[actix_rt::test]
async fn an_entity_that_cannot_be_activated_is_an_error_and_not_live() {
    let dir = directory(1, EntityLimits::default());
    let err = dir.send(&MISSING, Work { panic: false }).await.unwrap_err();
    assert_eq!(err, EntityError::Activation(NoSuchWorker(MISSING)));
    assert_eq!(dir.live(), 0);
    assert_eq!(dir.stats().read().activation_failures, 1);
}

#[actix_rt::test]
async fn past_its_cap_the_least_recently_used_entity_is_passivated() {
    let dir = directory(
        2,
        EntityLimits {
            max_live: 3,
            ..EntityLimits::default()
        },
    );
    for key in [1, 2, 3] {
        work(&dir, key).await.unwrap();
    }
    work(&dir, 1).await.unwrap(); // 2 is now the least recently used
    work(&dir, 4).await.unwrap();
    assert_eq!(dir.live(), 3);
    let stats = dir.stats();
    assert_eq!(stats.read().passivations, 1);
    eventually("the passivated actor stops", || stats.read().live == 3).await;
    // 2 comes back with fresh state; 1, still live, kept its count.
    assert_eq!(work(&dir, 2).await, Ok(1));
    assert_eq!(work(&dir, 1).await, Ok(3));
    assert_eq!(stats.read().activations, 5);
}

#[actix_rt::test]
async fn idle_entities_are_passivated() {
    let dir = directory(
        1,
        EntityLimits {
            idle_after: Duration::from_millis(100),
            ..EntityLimits::default()
        },
    );
    work(&dir, 1).await.unwrap();
    let stats = dir.stats();
    eventually("passivated once idle", || {
        let n = stats.read();
        n.passivations == 1 && n.live == 0
    })
    .await;
    assert_eq!(dir.live(), 0);
    assert_eq!(work(&dir, 1).await, Ok(1), "activated afresh");
}

#[actix_rt::test]
async fn a_key_is_activated_again_only_once_its_passivated_actor_has_stopped() {
    let dir = Arc::new(directory(1, EntityLimits::default()));
    work(&dir, 1).await.unwrap();
    // Someone still holds the actor's address: passivated, it cannot stop yet.
    let held = dir.addr(&1).await.unwrap();
    dir.passivate_all();
    let asking = tokio::spawn({
        let dir = dir.clone();
        async move { work(&dir, 1).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !asking.is_finished(),
        "a second actor for key 1 was activated"
    );
    assert_eq!(dir.stats().read().activations, 1);
    drop(held);
    assert_eq!(asking.await.unwrap(), Ok(1), "a fresh activation");
    assert_eq!(dir.stats().read().activations, 2);
    assert_eq!(dir.stats().read().live, 1);
}
