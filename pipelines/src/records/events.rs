//! Events, newest first, without their raw record; one event in full.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};

use super::cursor::Cursor;
use super::page::{Page, Window};

/// What to list: a window (by event time) and optional filters.
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub window: Window,
    pub principal: Option<String>,
    pub action: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventSummary {
    pub tenant_id: String,
    pub event_id: String,
    pub event_time: DateTime<Utc>,
    pub source: String,
    pub kind: String,
    pub account: String,
    pub principal: String,
    pub action: String,
    pub service: String,
    pub resource: Option<String>,
    pub source_ip: Option<String>,
    pub ingested_at: DateTime<Utc>,
}

/// An event with the record it was normalized from.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EventDetail {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub event: EventSummary,
    pub raw: serde_json::Value,
}

const COLUMNS: &str = "tenant_id, event_id, event_time, source, kind, account, principal, action, \
                       service, resource, source_ip, ingested_at";

/// The cursor's id: tenant and event id, since event ids are unique only within a tenant.
fn key(e: &EventSummary) -> Cursor {
    Cursor {
        at: e.event_time,
        id: format!("{}/{}", e.tenant_id, e.event_id),
    }
}

pub async fn event_page(pool: &PgPool, q: &EventQuery) -> Result<Page<EventSummary>, sqlx::Error> {
    let limit = q.window.page_size();
    let mut b = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS} FROM events WHERE true"));
    q.window.push_filters(&mut b, "tenant_id", "event_time");
    if let Some(p) = &q.principal {
        b.push(" AND principal = ").push_bind(p.clone());
    }
    if let Some(a) = &q.action {
        b.push(" AND action = ").push_bind(a.clone());
    }
    if let Some(s) = &q.source {
        b.push(" AND source = ").push_bind(s.clone());
    }
    if let Some(c) = &q.window.after {
        let (tenant, id) = c.id.split_once('/').unwrap_or((&c.id, ""));
        b.push(" AND (event_time, tenant_id, event_id) < (")
            .push_bind(c.at)
            .push(", ")
            .push_bind(tenant.to_owned())
            .push(", ")
            .push_bind(id.to_owned())
            .push(")");
    }
    b.push(" ORDER BY event_time DESC, tenant_id DESC, event_id DESC LIMIT ")
        .push_bind(limit + 1);
    let rows = b.build_query_as::<EventSummary>().fetch_all(pool).await?;
    Ok(Page::from_rows(rows, limit, key))
}

/// One event of `tenant`, with its raw record.
pub async fn event_detail(
    pool: &PgPool,
    tenant: &str,
    event_id: &str,
) -> Result<Option<EventDetail>, sqlx::Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, raw FROM events WHERE tenant_id = $1 AND event_id = $2
         ORDER BY event_time DESC LIMIT 1"
    )))
    .bind(tenant)
    .bind(event_id)
    .fetch_optional(pool)
    .await
}
