//! The one batcher: messages are gathered into a batch until it holds enough of them, or
//! enough bytes, or the first of them has waited long enough.

use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;

/// When a batch closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_messages: usize,
    /// A batch closes once its messages reach this many bytes (one larger message still makes
    /// a batch of its own).
    pub max_bytes: usize,
    /// How long a batch waits to fill before it goes anyway.
    pub linger: Duration,
}

impl BatchLimits {
    /// A batch that starts with `first` and takes from `more` until a limit is reached, the
    /// linger has passed, or `more` says the batch is done (an item `None`, or its end).
    pub async fn fill<T>(
        &self,
        first: T,
        size: impl Fn(&T) -> usize,
        more: &mut (impl Stream<Item = Option<T>> + Unpin),
    ) -> Vec<T> {
        let mut bytes = size(&first);
        let mut batch = Vec::with_capacity(self.max_messages.clamp(1, 1024));
        batch.push(first);
        let deadline = Instant::now() + self.linger;
        while batch.len() < self.max_messages && bytes < self.max_bytes {
            tokio::select! {
                item = more.next() => match item.flatten() {
                    Some(m) => {
                        bytes += size(&m);
                        batch.push(m);
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_messages: usize, max_bytes: usize, linger_ms: u64) -> BatchLimits {
        BatchLimits {
            max_messages,
            max_bytes,
            linger: Duration::from_millis(linger_ms),
        }
    }

    #[tokio::test]
    async fn a_batch_closes_at_its_count_its_bytes_or_when_the_source_says_so() {
        let mut source = futures::stream::iter((1..=9).map(Some).chain([None, Some(10)]));
        let batch = limits(4, usize::MAX, 1000)
            .fill(0, |_| 1, &mut source)
            .await;
        assert_eq!(batch, [0, 1, 2, 3]);
        // First 4, then 4 and 5 from the source: 8 bytes, then 13, past the 9 allowed.
        let batch = limits(100, 9, 1000).fill(4, |n| *n, &mut source).await;
        assert_eq!(batch, [4, 4, 5]);
        let batch = limits(100, usize::MAX, 1000)
            .fill(0, |_| 1, &mut source)
            .await;
        assert_eq!(batch, [0, 6, 7, 8, 9], "an item None ends the batch");
        let batch = limits(100, usize::MAX, 1000)
            .fill(0, |_| 1, &mut source)
            .await;
        assert_eq!(batch, [0, 10], "and so does the end of the stream");
    }

    #[tokio::test]
    async fn a_batch_that_does_not_fill_goes_when_its_linger_has_passed() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        tx.send(1).await.unwrap();
        let mut source = futures::stream::poll_fn(|cx| rx.poll_recv(cx).map(|m| m.map(Some)));
        let started = Instant::now();
        let batch = limits(100, usize::MAX, 20)
            .fill(0, |_| 1, &mut source)
            .await;
        assert_eq!(batch, [0, 1]);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(20) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        drop(tx);
    }
}
