//! Re-driving a dead letter through the same stages once its cause is fixed.

use tokio_util::sync::CancellationToken;

use super::{EventPath, Inbound, RowSet, SinkError};
use crate::retry::Cancelled;

/// What replaying one dead letter did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replayed {
    /// Its events were judged and stored (`new_rows` of them were not stored already).
    Stored { events: usize, new_rows: u64 },
    /// It still cannot be processed, for this reason (recorded beside the dead letter).
    StillFailing(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Sink(SinkError),
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

impl EventPath {
    /// Decodes and judges `msg`, the payload of dead letter `dead_letter_id`. If it now goes
    /// through, its rows are stored and the dead letter marked resolved in one transaction;
    /// otherwise the new reason is recorded beside it. Tried once: a sink that is unavailable
    /// is an error for the caller.
    pub async fn replay(
        &self,
        dead_letter_id: &str,
        msg: &Inbound,
        cancel: &CancellationToken,
    ) -> Result<Replayed, ReplayError> {
        let batch = std::slice::from_ref(msg);
        let mut sets = self.decode_and_judge(batch, cancel).await?;
        let mut set = sets.pop().unwrap_or_default();
        if !set.dead_letters.is_empty() {
            let reason = set
                .dead_letters
                .iter()
                .map(|d| d.reason.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            return self.still_failing(dead_letter_id, reason).await;
        }
        set.resolves.push(dead_letter_id.to_owned());
        let events = set.events.len();
        match self.persist.sink().write(std::slice::from_ref(&set)).await {
            Ok(counts) => Ok(Replayed::Stored {
                events,
                new_rows: counts.of("events"),
            }),
            // Refused for its content again (e.g. a message the path set aside): record it
            // and let the replay go on with the next dead letter.
            Err(SinkError::Refused(e)) => {
                let sink = self.persist.sink().name();
                self.still_failing(
                    dead_letter_id,
                    format!("its rows could not be stored in {sink}: {e}"),
                )
                .await
            }
            Err(e) => Err(ReplayError::Sink(e)),
        }
    }

    async fn still_failing(&self, id: &str, reason: String) -> Result<Replayed, ReplayError> {
        let noted = RowSet {
            replay_failures: vec![(id.to_owned(), reason.clone())],
            ..Default::default()
        };
        self.persist
            .sink()
            .write(std::slice::from_ref(&noted))
            .await
            .map_err(ReplayError::Sink)?;
        Ok(Replayed::StillFailing(reason))
    }
}
