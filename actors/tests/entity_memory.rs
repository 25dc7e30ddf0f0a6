//! Many thousand entities activated, then passivated: memory goes back to where it was. A test
//! binary of its own, so that its allocator counts this test's allocations only.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use portcullis_actors::{Arbiters, EntityDirectory, EntityLimits};
use support::worker::{Services, Work, Worker};

/// The system allocator, counting the bytes allocated and not yet freed.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ENTITIES: u32 = 20_000;
const STATE_BYTES: usize = 1024;

async fn activate_all(dir: &EntityDirectory<Worker>, keys: std::ops::Range<u32>) {
    for key in keys {
        assert_eq!(dir.send(&key, Work { panic: false }).await.unwrap(), Ok(1));
    }
}

async fn all_stopped(dir: &EntityDirectory<Worker>) {
    let until = Instant::now() + Duration::from_secs(30);
    while dir.stats().read().live > 0 {
        assert!(Instant::now() < until, "passivated actors did not stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_rt::test]
async fn many_thousand_entities_activated_then_passivated_give_their_memory_back() {
    let dir = EntityDirectory::new(
        Arc::new(Arbiters::start(2)),
        Arc::new(Services {
            state_bytes: STATE_BYTES,
            ..Services::default()
        }),
        EntityLimits::default(),
    );
    // A first round, so that what is allocated once (thread locals, the runtime's own
    // structures, the directory's tables at their largest) is there before the baseline.
    activate_all(&dir, 0..ENTITIES).await;
    dir.passivate_all();
    all_stopped(&dir).await;
    let baseline = LIVE_BYTES.load(Ordering::Relaxed);

    activate_all(&dir, ENTITIES..2 * ENTITIES).await;
    let peak = LIVE_BYTES.load(Ordering::Relaxed);
    let grown = peak - baseline;
    assert_eq!(dir.live(), ENTITIES as usize);
    assert!(
        grown >= ENTITIES as isize * STATE_BYTES as isize,
        "{ENTITIES} live entities hold their state: grew {grown} bytes"
    );

    dir.passivate_all();
    all_stopped(&dir).await;
    let after = LIVE_BYTES.load(Ordering::Relaxed);
    let counts = dir.stats().read();
    assert_eq!(counts.activations, 2 * u64::from(ENTITIES));
    assert_eq!(counts.passivations, 2 * u64::from(ENTITIES));
    assert_eq!(dir.live(), 0);
    // Back near where it started: within 2 % of what the entities grew it by.
    let left = after - baseline;
    assert!(
        left < grown / 50,
        "{left} of {grown} bytes still allocated after passivation (baseline {baseline})"
    );
}
