//! What anomaly models leave besides each decision's score: the features a training session
//! collects, anomalies (both keyed by the event, so that a redelivered batch stores nothing
//! twice), and trust changes (each replacing only an earlier one).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use portcullis_engine::anomaly::trust::TrustChange;
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

/// `anomalies`: judged events scored at or above their line's threshold.
pub(in crate::sinks::postgres) struct Anomalies;

impl Table for Anomalies {
    fn name(&self) -> &'static str {
        "anomalies"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        observed(sets).any(|o| o.observation.anomaly.is_some())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        let mut rows = AnomalyColumns::default();
        for o in observed(sets) {
            let (Some(finding), Some(score), Some(version)) = (
                &o.observation.anomaly,
                o.observation.score,
                o.observation.model_version,
            ) else {
                continue;
            };
            rows.tenants.push(o.tenant.to_string());
            rows.ids.push(o.event_id.clone());
            rows.times.push(o.event_time);
            rows.scopes.push(o.scope.as_str());
            rows.subjects.push(o.subject.clone());
            rows.actions.push(o.action.clone());
            rows.scores.push(score);
            rows.thresholds.push(finding.threshold);
            rows.versions.push(version);
            rows.unusual.push(Json(finding.unusual.clone()));
            rows.trust
                .push(i16::from(o.observation.trust.unwrap_or(100)));
        }
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO anomalies (tenant_id, event_id, event_time, scope, subject, action,
                                        score, threshold, model_version, unusual, trust)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[],
                                      $5::text[], $6::text[], $7::float8[], $8::float8[],
                                      $9::int4[], $10::jsonb[], $11::int2[])
                 ON CONFLICT DO NOTHING",
            )
            .bind(rows.tenants)
            .bind(rows.ids)
            .bind(rows.times)
            .bind(rows.scopes)
            .bind(rows.subjects)
            .bind(rows.actions)
            .bind(rows.scores)
            .bind(rows.thresholds)
            .bind(rows.versions)
            .bind(rows.unusual)
            .bind(rows.trust)
            .execute(conn)
            .await?;
            Ok(done.rows_affected())
        })
    }
}

#[derive(Default)]
struct AnomalyColumns {
    tenants: Vec<String>,
    ids: Vec<String>,
    times: Vec<DateTime<Utc>>,
    scopes: Vec<&'static str>,
    subjects: Vec<String>,
    actions: Vec<String>,
    scores: Vec<f64>,
    thresholds: Vec<f64>,
    versions: Vec<i32>,
    unusual: Vec<Json<Vec<portcullis_engine::anomaly::UnusualFeature>>>,
    trust: Vec<i16>,
}

/// `trust_scores`: each subject's latest trust change in these sets. A change replaces the
/// stored one only if it came later — a later event time, or the same one and a later `seq` —
/// whatever order batches commit in, and whichever engine's actor made it.
pub(in crate::sinks::postgres) struct TrustScores;

impl Table for TrustScores {
    fn name(&self) -> &'static str {
        "trust_scores"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        observed(sets).any(|o| o.observation.trust_change.is_some())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        // One row per subject: an upsert may not touch a row twice.
        let mut latest: HashMap<(String, &'static str, &str), &TrustChange> = HashMap::new();
        for o in observed(sets) {
            let Some(change) = &o.observation.trust_change else {
                continue;
            };
            latest
                .entry((
                    o.tenant.to_string(),
                    o.scope.subject_kind(),
                    &change.subject,
                ))
                .and_modify(|kept| {
                    if kept.seq < change.seq {
                        *kept = change;
                    }
                })
                .or_insert(change);
        }
        let mut tenants = Vec::new();
        let mut kinds = Vec::new();
        let mut subjects = Vec::new();
        let mut risks = Vec::new();
        let mut trusts = Vec::new();
        let mut as_ofs = Vec::new();
        let mut seqs = Vec::new();
        for ((tenant, kind, subject), change) in latest {
            tenants.push(tenant);
            kinds.push(kind);
            subjects.push(subject.to_owned());
            risks.push(change.state.risk);
            trusts.push(i16::from(change.trust));
            as_ofs.push(change.state.as_of);
            seqs.push(change.seq);
        }
        Box::pin(async move {
            let done = sqlx::query(
                "INSERT INTO trust_scores (tenant_id, subject_kind, subject, risk, trust, as_of, seq)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[],
                                      $5::int2[], $6::timestamptz[], $7::int8[])
                 ON CONFLICT (tenant_id, subject_kind, subject) DO UPDATE
                 SET risk = EXCLUDED.risk, trust = EXCLUDED.trust, as_of = EXCLUDED.as_of,
                     seq = EXCLUDED.seq, updated_at = now()
                 WHERE (trust_scores.as_of, trust_scores.seq) < (EXCLUDED.as_of, EXCLUDED.seq)",
            )
            .bind(tenants)
            .bind(kinds)
            .bind(subjects)
            .bind(risks)
            .bind(trusts)
            .bind(as_ofs)
            .bind(seqs)
            .execute(conn)
            .await?;
            Ok(done.rows_affected())
        })
    }
}
