//! The read API: tenants, events, decisions with their events, dead letters; and replay of dead
//! letters. Tenant-scoped by the caller's token: a listing shows only tenants the token may read,
//! and naming another tenant is 403.
//!
//! Listings are newest first and paged by keyset: pass a page's `next_cursor` back as `cursor`.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use portcullis_engine::access::{Permission, Visible};
use portcullis_engine::TenantId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::auth::Authorized;
use super::error::ApiError;
use super::query::QueryParams;
use super::State;
use crate::path::{Inbound, Replayed};
use crate::records::{
    dead_letter_page, decision_detail, decision_page, event_detail, event_page, tenant_list,
    Cursor, DeadLetterQuery, DecisionQuery, EventQuery, TenantScope, Window,
};
use crate::sinks::postgres::{list_dead_letters, DeadLetterFilter, DeadLetterRow};

/// Rows per page when `limit` is not given.
const DEFAULT_PAGE: i64 = 50;
/// Most dead letters one replay request may name.
const MAX_REPLAY: usize = 100;

pub(super) fn db_error(e: sqlx::Error) -> ApiError {
    tracing::warn!(error = %e, "read API: Postgres query failed");
    ApiError::unavailable("postgres_unavailable", "cannot read from Postgres now")
}

/// The tenants a listing may show: the one asked for, if the caller may read it, else all the
/// caller may read.
pub(super) fn read_scope(
    caller: &Authorized,
    tenant: Option<&str>,
) -> Result<TenantScope, ApiError> {
    if let Some(t) = tenant {
        let t = TenantId::parse(t).map_err(|e| ApiError::bad_request(e.to_string()))?;
        caller.require(Permission::Read, &t)?;
        return Ok(TenantScope::Only(vec![t]));
    }
    Ok(match caller.0.visible(Permission::Read) {
        Visible::All => TenantScope::All,
        Visible::Only(set) => TenantScope::Only(set.into_iter().collect()),
    })
}

/// The tenants a listing may show when any of `permissions` lets the caller see a tenant's
/// rows: the one asked for, if one does, else every tenant one does.
pub(super) fn scope_for_any(
    caller: &Authorized,
    tenant: Option<&str>,
    permissions: &[Permission],
) -> Result<TenantScope, ApiError> {
    if let Some(t) = tenant {
        let t = TenantId::parse(t).map_err(|e| ApiError::bad_request(e.to_string()))?;
        if !permissions.iter().any(|p| caller.0.allows(*p, &t)) {
            let names: Vec<&str> = permissions.iter().map(|p| p.as_str()).collect();
            return Err(ApiError::new(
                actix_web::http::StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "token {:?} holds none of {} for tenant {t}",
                    caller.0.name,
                    names.join(", ")
                ),
            ));
        }
        return Ok(TenantScope::Only(vec![t]));
    }
    let mut tenants = std::collections::BTreeSet::new();
    for p in permissions {
        match caller.0.grants.visible(*p) {
            Visible::All => return Ok(TenantScope::All),
            Visible::Only(set) => tenants.extend(set),
        }
    }
    Ok(TenantScope::Only(tenants.into_iter().collect()))
}

/// The parameters every listing takes.
const WINDOW_PARAMS: [&str; 5] = ["tenant_id", "from", "to", "limit", "cursor"];

fn with_window(own: &[&'static str]) -> Vec<&'static str> {
    WINDOW_PARAMS.iter().chain(own).copied().collect()
}

/// A listing's window from its parameters, scoped to what the caller may read.
fn window(caller: &Authorized, p: &QueryParams) -> Result<Window, ApiError> {
    Ok(Window {
        scope: read_scope(caller, p.text("tenant_id").as_deref())?,
        from: p.time("from")?,
        to: p.time("to")?,
        after: p
            .text("cursor")
            .map(|c| Cursor::decode(&c))
            .transpose()
            .map_err(|e| ApiError::bad_request(e.to_string()))?,
        limit: p.number("limit")?.unwrap_or(DEFAULT_PAGE),
    })
}

fn page_json<T: Serialize>(page: crate::records::Page<T>) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "result": page.items,
        "next_cursor": page.next_cursor,
    }))
}

/// `GET /v1/events`.
pub(super) async fn events(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(
        req.query_string(),
        &with_window(&["principal", "action", "source"]),
    )?;
    let q = EventQuery {
        window: window(&caller, &p)?,
        principal: p.text("principal"),
        action: p.text("action"),
        source: p.one_of("source", &["kafka", "mqtt"])?,
    };
    Ok(page_json(
        event_page(&state.pool, &q).await.map_err(db_error)?,
    ))
}

/// `GET /v1/events/{tenant}/{event id}`: one event with its raw record.
pub(super) async fn event(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, event_id) = path.into_inner();
    let tenant = TenantId::parse(&tenant).map_err(|e| ApiError::bad_request(e.to_string()))?;
    caller.require(Permission::Read, &tenant)?;
    if event_id.contains('\0') {
        return Err(ApiError::bad_request("the event id contains U+0000 (NUL)"));
    }
    match event_detail(&state.pool, tenant.as_str(), &event_id)
        .await
        .map_err(db_error)?
    {
        Some(e) => Ok(HttpResponse::Ok().json(json!({ "result": e }))),
        None => Err(ApiError::not_found(format!(
            "tenant {tenant} has no event {event_id:?}"
        ))),
    }
}

/// `GET /v1/decisions`.
pub(super) async fn decisions(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(
        req.query_string(),
        &with_window(&["outcome", "principal", "action"]),
    )?;
    let q = DecisionQuery {
        window: window(&caller, &p)?,
        outcome: p.one_of("outcome", &["allow", "deny"])?,
        principal: p.text("principal"),
        action: p.text("action"),
    };
    Ok(page_json(
        decision_page(&state.pool, &q).await.map_err(db_error)?,
    ))
}

/// `GET /v1/decisions/{decision id}`: the decision, its whole result, and its event's raw record.
pub(super) async fn decision(
    state: web::Data<State>,
    caller: Authorized,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::bad_request(format!("decision id {:?} is not a UUID", *id)))?;
    // A decision outside the caller's tenants is "not found": its id says nothing of its tenant.
    let scope = read_scope(&caller, None)?;
    match decision_detail(&state.pool, id, &scope)
        .await
        .map_err(db_error)?
    {
        Some(d) => Ok(HttpResponse::Ok().json(json!({ "result": d }))),
        None => Err(ApiError::not_found(format!(
            "no decision {id} among your tenants"
        ))),
    }
}

/// `GET /v1/dead-letters`: open ones unless `resolved=true`.
pub(super) async fn dead_letters(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(
        req.query_string(),
        &with_window(&["source", "reason_contains", "resolved"]),
    )?;
    let q = DeadLetterQuery {
        window: window(&caller, &p)?,
        source: p.one_of("source", &["kafka", "mqtt"])?,
        reason_contains: p.text("reason_contains"),
        include_resolved: p.flag("resolved")?.unwrap_or(false),
    };
    Ok(page_json(
        dead_letter_page(&state.pool, &q).await.map_err(db_error)?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    ids: Vec<String>,
}

/// `POST /v1/dead-letters/replay` with `{"ids": [...]}`: re-drives each through decoding, policy
/// and storage, as `portcullis dlq replay` does. Each needs `admin:{its tenant}`; one without a
/// tenant needs `admin`; others are answered `not_found`. Answers each id's outcome.
pub(super) async fn replay(
    state: web::Data<State>,
    caller: Authorized,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let request: ReplayRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"ids\": [\"dead letter id\", ...]}}: {e}"
        ))
    })?;
    if request.ids.is_empty() || request.ids.len() > MAX_REPLAY {
        return Err(ApiError::bad_request(format!(
            "name 1 to {MAX_REPLAY} dead letters in ids"
        )));
    }
    let Some(path) = &state.path else {
        return Err(ApiError::unavailable(
            "replay_unavailable",
            "this engine has no event path to replay through",
        ));
    };
    if request.ids.iter().any(|id| id.contains('\0')) {
        return Err(ApiError::bad_request(
            "a dead letter id contains U+0000 (NUL)",
        ));
    }
    // Each id once, in the order given.
    let mut ids: Vec<String> = Vec::with_capacity(request.ids.len());
    for id in request.ids {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let filter = DeadLetterFilter {
        ids: ids.clone(),
        include_resolved: true,
        limit: MAX_REPLAY as i64,
        ..DeadLetterFilter::default()
    };
    let rows = list_dead_letters(&state.pool, &filter)
        .await
        .map_err(db_error)?;
    // A dead letter outside the caller's tenants is "not found", as one that does not exist:
    // dead-letter ids follow Kafka offsets, and a 403 would say which exist and whose they are.
    let may_replay = |row: &&DeadLetterRow| match row.tenant_hint.as_deref().map(TenantId::parse) {
        Some(Ok(t)) => caller.0.allows(Permission::Administer, &t),
        _ => caller.0.is_admin(),
    };
    let never = CancellationToken::new();
    let mut results = Vec::with_capacity(ids.len());
    let mut failed = None;
    for id in &ids {
        let row = rows
            .iter()
            .find(|r| &r.dead_letter_id == id)
            .filter(may_replay);
        let Some(row) = row else {
            results.push(json!({"id": id, "outcome": "not_found"}));
            continue;
        };
        if failed.is_some() {
            results.push(json!({"id": id, "outcome": "not_attempted"}));
            continue;
        }
        if row.resolved_at.is_some() {
            results.push(
                json!({"id": id, "outcome": "already_resolved", "resolved_at": row.resolved_at}),
            );
            continue;
        }
        let inbound = Inbound::new(row.origin(), row.payload.clone());
        results.push(match path.replay(id, &inbound, &never).await {
            Ok(Replayed::Stored { events, new_rows }) => {
                json!({"id": id, "outcome": "stored", "events": events, "new_rows": new_rows})
            }
            Ok(Replayed::StillFailing(reason)) => {
                json!({"id": id, "outcome": "still_failing", "reason": reason})
            }
            // Postgres unavailable, say: this one and the rest are left as they were.
            Err(e) => {
                tracing::warn!(dead_letter = %id, error = %e, "replay through the API failed");
                failed = Some(e.to_string());
                json!({"id": id, "outcome": "error", "reason": "the replay could not be stored; try again"})
            }
        });
    }
    if failed.is_some() {
        return Ok(HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE).json(json!({
            "code": "replay_unavailable",
            "message": "a replay could not be stored (Postgres unavailable?); what was replayed before it stands, the rest was not attempted",
            "result": results,
        })));
    }
    Ok(HttpResponse::build(StatusCode::OK).json(json!({ "result": results })))
}

/// `GET /v1/tenants`: registered tenants and tenants with a bundle, each with its accounts and
/// bundle health, among those the caller may read.
pub(super) async fn tenants(
    state: web::Data<State>,
    caller: Authorized,
) -> Result<HttpResponse, ApiError> {
    let scope = read_scope(&caller, None)?;
    let registered = tenant_list(&state.pool, &scope).await.map_err(db_error)?;
    let visible = caller.0.visible(Permission::Read);
    let mut out: std::collections::BTreeMap<String, serde_json::Value> = registered
        .into_iter()
        .map(|t| {
            (
                t.tenant_id.clone(),
                json!({"tenant_id": t.tenant_id, "display_name": t.display_name,
                       "accounts": t.accounts, "registered": true, "created_at": t.created_at,
                       "bundle": null}),
            )
        })
        .collect();
    for (tenant, status) in state.store.statuses() {
        if !visible.contains(&tenant) {
            continue;
        }
        let entry = out.entry(tenant.to_string()).or_insert_with(|| {
            json!({"tenant_id": tenant, "display_name": null, "accounts": [],
                   "registered": false, "created_at": null})
        });
        entry["bundle"] = super::bundles::status_json(&tenant, &status);
    }
    Ok(HttpResponse::Ok().json(json!({ "result": out.into_values().collect::<Vec<_>>() })))
}
