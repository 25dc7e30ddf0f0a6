//! `resources`: the inventory of what the batch's CloudTrail change events created, modified or
//! deleted. A resource keeps its latest change by event time, so a redelivered or late event
//! never rolls it back, and writing the same change again changes nothing.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use portcullis_engine::compliance::ChangeKind;
use sqlx::{AssertSqlSafe, PgConnection};

use super::Table;
use crate::path::RowSet;

pub(in crate::sinks::postgres) struct Resources;

/// Whether the change a row brings (`EXCLUDED`) is later than the one stored (`r`).
const NEWER: &str =
    "((EXCLUDED.last_changed_at, EXCLUDED.last_event_id) > (r.last_changed_at, r.last_event_id))";

impl Table for Resources {
    fn name(&self) -> &'static str {
        "resources"
    }

    fn has_rows(&self, sets: &[RowSet]) -> bool {
        sets.iter()
            .flat_map(|s| &s.decisions)
            .any(|d| d.resource_change.is_some())
    }

    fn write<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        sets: &'a [RowSet],
    ) -> BoxFuture<'a, Result<u64, sqlx::Error>> {
        // One row per resource per statement (ON CONFLICT may touch a row once): its latest
        // change in the batch, and its earliest sighting.
        let mut latest: HashMap<(&str, &str, &str), Row> = HashMap::new();
        for set in sets {
            for (event, decision) in set.events.iter().zip(&set.decisions) {
                let Some(change) = &decision.resource_change else {
                    continue;
                };
                let key = (
                    decision.tenant_id.as_str(),
                    change.resource_type,
                    change.resource_id.as_str(),
                );
                let row = Row {
                    account: event.account.clone(),
                    region: event
                        .raw
                        .get("awsRegion")
                        .and_then(|r| r.as_str())
                        .map(str::to_owned),
                    first_seen: decision.event_time,
                    change: change.change,
                    at: decision.event_time,
                    by: event.principal.clone(),
                    event_id: event.event_id.clone(),
                    event_name: event.action.clone(),
                };
                latest
                    .entry(key)
                    .and_modify(|r| {
                        let first = r.first_seen.min(row.first_seen);
                        if (row.at, &row.event_id) > (r.at, &r.event_id) {
                            *r = row.clone();
                        }
                        r.first_seen = first;
                    })
                    .or_insert(row);
            }
        }
        let mut cols = Columns::default();
        for ((tenant, kind, id), r) in latest {
            cols.tenant.push(tenant.to_owned());
            cols.kind.push(kind.to_owned());
            cols.id.push(id.to_owned());
            cols.account.push(r.account);
            cols.region.push(r.region);
            cols.first_seen.push(r.first_seen);
            cols.change.push(r.change.as_str().to_owned());
            cols.at.push(r.at);
            cols.by.push(r.by);
            cols.event_id.push(r.event_id);
            cols.event_name.push(r.event_name);
        }
        Box::pin(async move {
            // Only the constant NEWER is formatted in.
            let done = sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO resources AS r
                     (tenant_id, resource_type, resource_id, account, region, state, first_seen,
                      last_change, last_changed_at, last_changed_by, last_event_id, last_event_name)
                 SELECT t, k, i, a, reg, CASE WHEN c = 'deleted' THEN 'deleted' ELSE 'present' END,
                        f, c, at, by, e, n
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                             $6::timestamptz[], $7::text[], $8::timestamptz[], $9::text[],
                             $10::text[], $11::text[])
                      AS x(t, k, i, a, reg, f, c, at, by, e, n)
                 ORDER BY t, k, i
                 ON CONFLICT (tenant_id, resource_type, resource_id) DO UPDATE SET
                     first_seen = LEAST(r.first_seen, EXCLUDED.first_seen),
                     account = CASE WHEN {NEWER} THEN EXCLUDED.account ELSE r.account END,
                     region = CASE WHEN {NEWER} THEN EXCLUDED.region ELSE r.region END,
                     state = CASE WHEN {NEWER} THEN EXCLUDED.state ELSE r.state END,
                     last_change = CASE WHEN {NEWER} THEN EXCLUDED.last_change ELSE r.last_change END,
                     last_changed_at = GREATEST(r.last_changed_at, EXCLUDED.last_changed_at),
                     last_changed_by =
                         CASE WHEN {NEWER} THEN EXCLUDED.last_changed_by ELSE r.last_changed_by END,
                     last_event_id = CASE WHEN {NEWER} THEN EXCLUDED.last_event_id ELSE r.last_event_id END,
                     last_event_name =
                         CASE WHEN {NEWER} THEN EXCLUDED.last_event_name ELSE r.last_event_name END"
            )))
            .bind(&cols.tenant)
            .bind(&cols.kind)
            .bind(&cols.id)
            .bind(&cols.account)
            .bind(&cols.region)
            .bind(&cols.first_seen)
            .bind(&cols.change)
            .bind(&cols.at)
            .bind(&cols.by)
            .bind(&cols.event_id)
            .bind(&cols.event_name)
            .execute(&mut *conn)
            .await?;
            Ok(done.rows_affected())
        })
    }
}

#[derive(Clone)]
struct Row {
    account: String,
    region: Option<String>,
    first_seen: DateTime<Utc>,
    change: ChangeKind,
    at: DateTime<Utc>,
    by: String,
    event_id: String,
    event_name: String,
}

#[derive(Default)]
struct Columns {
    tenant: Vec<String>,
    kind: Vec<String>,
    id: Vec<String>,
    account: Vec<String>,
    region: Vec<Option<String>>,
    first_seen: Vec<DateTime<Utc>>,
    change: Vec<String>,
    at: Vec<DateTime<Utc>>,
    by: Vec<String>,
    event_id: Vec<String>,
    event_name: Vec<String>,
}
