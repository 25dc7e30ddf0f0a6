//! Decisions on events, with the event each judged: newest first, and one in full with the
//! event's raw record and the rule's whole result.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::cursor::Cursor;
use super::page::{Page, TenantScope, Window};

/// What to list: a window (by event time) and optional filters.
#[derive(Debug, Clone)]
pub struct DecisionQuery {
    pub window: Window,
    /// `allow` or `deny`.
    pub outcome: Option<String>,
    pub principal: Option<String>,
    pub action: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DecisionSummary {
    pub decision_id: Uuid,
    pub tenant_id: String,
    pub event_id: String,
    pub event_time: DateTime<Utc>,
    pub outcome: String,
    /// The rule's `reasons`, when its result has them.
    pub reasons: Option<serde_json::Value>,
    pub rule_path: String,
    pub bundle_revision: String,
    pub eval_micros: i32,
    pub decided_at: DateTime<Utc>,
    /// The event's anomaly score policy was given; `None` when no model scored it.
    pub anomaly_score: Option<f64>,
    pub source: String,
    pub kind: String,
    pub account: String,
    pub principal: String,
    pub action: String,
    pub service: String,
    pub resource: Option<String>,
    pub source_ip: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DecisionDetail {
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub decision: DecisionSummary,
    /// The rule's whole value; `null` when it was undefined (which denies).
    pub result: Option<serde_json::Value>,
    /// The event's original record.
    pub raw: serde_json::Value,
}

const COLUMNS: &str = "d.decision_id, d.tenant_id, d.event_id, d.event_time, d.outcome, \
    d.result -> 'reasons' AS reasons, d.rule_path, d.bundle_revision, d.eval_micros, d.decided_at, \
    d.anomaly_score, e.source, e.kind, e.account, e.principal, e.action, e.service, e.resource, e.source_ip";
const FROM: &str = " FROM decisions d JOIN events e \
    ON e.tenant_id = d.tenant_id AND e.event_id = d.event_id AND e.event_time = d.event_time";

fn key(d: &DecisionSummary) -> Cursor {
    Cursor {
        at: d.event_time,
        id: d.decision_id.to_string(),
    }
}

pub async fn decision_page(
    pool: &PgPool,
    q: &DecisionQuery,
) -> Result<Page<DecisionSummary>, sqlx::Error> {
    let limit = q.window.page_size();
    let mut b = QueryBuilder::<Postgres>::new(format!("SELECT {COLUMNS}{FROM} WHERE true"));
    q.window.push_filters(&mut b, "d.tenant_id", "d.event_time");
    if let Some(o) = &q.outcome {
        b.push(" AND d.allowed = ").push_bind(o == "allow");
    }
    if let Some(p) = &q.principal {
        b.push(" AND e.principal = ").push_bind(p.clone());
    }
    if let Some(a) = &q.action {
        b.push(" AND e.action = ").push_bind(a.clone());
    }
    if let Some(c) = &q.window.after {
        // A cursor this API made holds a UUID; anything else starts from nowhere.
        let id = Uuid::parse_str(&c.id).unwrap_or(Uuid::max());
        b.push(" AND (d.event_time, d.decision_id) < (")
            .push_bind(c.at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    b.push(" ORDER BY d.event_time DESC, d.decision_id DESC LIMIT ")
        .push_bind(limit + 1);
    let rows = b
        .build_query_as::<DecisionSummary>()
        .fetch_all(pool)
        .await?;
    Ok(Page::from_rows(rows, limit, key))
}

/// One decision in full, with its event's raw record; `None` if there is none by that id or it
/// belongs to a tenant outside `scope`.
pub async fn decision_detail(
    pool: &PgPool,
    decision_id: Uuid,
    scope: &TenantScope,
) -> Result<Option<DecisionDetail>, sqlx::Error> {
    let mut b = QueryBuilder::<Postgres>::new(format!(
        "SELECT {COLUMNS}, d.result, e.raw{FROM} WHERE d.decision_id = "
    ));
    b.push_bind(decision_id);
    if let Some(ids) = scope.ids() {
        b.push(" AND d.tenant_id = ANY(").push_bind(ids).push(")");
    }
    b.push(" LIMIT 1");
    b.build_query_as::<DecisionDetail>()
        .fetch_optional(pool)
        .await
}
