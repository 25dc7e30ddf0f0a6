//! The features a training session collects of judged events, keyed by the event, so that a
//! redelivered batch stores nothing twice. (Scores are columns of the decisions.)

use futures::future::BoxFuture;
use sqlx::types::Json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Table;
use crate::path::{Observed, RowSet};

fn observed(sets: &[RowSet]) -> impl Iterator<Item = &Observed> {
    sets.iter().flat_map(|s| &s.observed)
}

/// `training_rows`: the features of each event a training session collects.
pub(in crate::sinks::postgres) struct TrainingRows;

impl Table for TrainingRows {
    fn name(&self) -> &'static str {
        "training_rows"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        observed(sets).any(|o| o.observation.session.is_some())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let mut sessions: Vec<Uuid> = Vec::new();
        let mut ids = Vec::new();
        let mut categorical = Vec::new();
        let mut numeric = Vec::new();
        for o in observed(sets) {
            if let Some(session) = o.observation.session {
                sessions.push(session);
                ids.push(o.event_id.clone());
                categorical.push(Json(o.observation.features.categorical.clone()));
                numeric.push(Json(o.observation.features.numeric.clone()));
            }
        }
        Box::pin(async move {
            // Arrays of arrays of different lengths cannot be bound as one Postgres array:
            // each row's features travel as JSON and become arrays here. A session that ended
            // meanwhile takes no more rows: the sessions are read FOR KEY SHARE, which waits for
            // a stop in progress (it holds the row FOR UPDATE) and then sees it ended, so a
            // stopped session's rows are exactly what its model was trained on.
            let done = sqlx::query(
                "INSERT INTO training_rows (session_id, event_id, categorical, numeric)
                 SELECT t.session_id, t.event_id,
                        ARRAY(SELECT v FROM jsonb_array_elements_text(t.categorical)
                              WITH ORDINALITY AS e(v, i) ORDER BY i),
                        ARRAY(SELECT v::float8 FROM jsonb_array_elements_text(t.numeric)
                              WITH ORDINALITY AS e(v, i) ORDER BY i)
                 FROM unnest($1::uuid[], $2::text[], $3::jsonb[], $4::jsonb[])
                      AS t(session_id, event_id, categorical, numeric)
                 JOIN (SELECT session_id FROM training_sessions
                       WHERE session_id = ANY($1) AND state = 'active' FOR KEY SHARE) s
                   ON s.session_id = t.session_id
                 ON CONFLICT DO NOTHING",
            )
            .bind(sessions)
            .bind(ids)
            .bind(categorical)
            .bind(numeric)
            .execute(conn)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
