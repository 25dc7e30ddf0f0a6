//! The one retry schedule: waits that double from a first delay up to a ceiling, cut short by
//! shutdown. Used wherever the engine waits for a service to come back.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Shutting down before the work was done: nothing was acknowledged, so the source redelivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shutting down before the batch was committed; it will be redelivered")]
pub struct Cancelled;

#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self { next: first, max }
    }

    /// What the event path uses for a write that did not commit.
    pub fn for_writes() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    /// The next delay (the one after it is twice as long, up to the ceiling).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Sleeps for the next delay, or returns `Cancelled` as soon as `cancel` fires.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> Result<(), Cancelled> {
        let delay = self.next_delay();
        tokio::select! {
            _ = cancel.cancelled() => Err(Cancelled),
            _ = tokio::time::sleep(delay) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_ceiling() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350));
        let delays: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 350, 350]);
    }

    #[tokio::test]
    async fn a_cancelled_wait_returns_at_once() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
        let started = std::time::Instant::now();
        assert_eq!(b.wait(&cancel).await, Err(Cancelled));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
