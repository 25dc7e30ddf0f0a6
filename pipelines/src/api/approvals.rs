//! Approval requests (docs/approvals.md). Listing and reading need `read:<tenant>` or
//! `approve:<tenant>`; a requester holding `query:<tenant>` may read (and wait on) one request
//! by its id; answering needs `approve:<tenant>`.
//!
//! `GET  /v1/approvals[?tenant_id=&status=&principal=&limit=]`  newest first
//! `GET  /v1/approvals/{id}[?wait=SECONDS]`                      one; waits while it is pending
//! `POST /v1/approvals/{id}/approve` / `deny`, body `{"note": …}` (optional)

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use portcullis_engine::access::Permission;
use portcullis_engine::approval::{ApprovalError, ApprovalStatus, Resolution};
use portcullis_engine::TenantId;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use uuid::Uuid;

use super::auth::Authorized;
use super::error::ApiError;
use super::query::QueryParams;
use super::records::{db_error, scope_for_any};
use super::State;
use crate::approvals::{self, Answer, AnswerError, ApprovalQuery, ApprovalRow, Opened};
use crate::records::TenantScope;

/// Longest wait a request may ask for, and how often a pending request is looked at again.
const MAX_WAIT: Duration = Duration::from_secs(60);
const WAIT_POLL: Duration = Duration::from_millis(250);
/// Longest note an approver may leave.
const MAX_NOTE_CHARS: usize = 1000;

/// What the decision API and the gateway say of a decision's approval request.
pub(super) fn approval_summary(opened: &Opened) -> Json {
    let (row, granted) = (opened.row(), opened.is_granted());
    let mut summary = json!({
        "id": row.approval_id,
        "status": row.status,
        "href": format!("/v1/approvals/{}", row.approval_id),
    });
    if granted {
        summary["answered_by"] = json!(row.answered_by);
        summary["grant_until"] = json!(row.grant_until);
    } else {
        summary["expires_at"] = json!(row.expires_at);
    }
    summary
}

/// The tenants whose requests the caller may see: those it may read or approve.
fn visible_tenants(caller: &Authorized, tenant: Option<&str>) -> Result<TenantScope, ApiError> {
    scope_for_any(caller, tenant, &[Permission::Read, Permission::Approve])
}

pub(super) async fn list(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(
        req.query_string(),
        &["tenant_id", "status", "principal", "limit"],
    )?;
    let q = ApprovalQuery {
        tenants: visible_tenants(&caller, p.text("tenant_id").as_deref())?,
        status: p
            .one_of("status", &["pending", "approved", "denied", "expired"])?
            .and_then(|s| ApprovalStatus::parse(&s)),
        principal: p.text("principal"),
        limit: p.limit(50)?,
    };
    let rows = approvals::list(&state.pool, &q).await.map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

fn approval_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not an approval id (a UUID)")))
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::not_found(format!("no approval request {id}"))
}

/// May the caller see this request: read or approve its tenant, or query it (the requester).
fn may_see(caller: &Authorized, row: &ApprovalRow) -> bool {
    TenantId::parse(&row.tenant_id).is_ok_and(|t| {
        [Permission::Read, Permission::Approve, Permission::Query]
            .into_iter()
            .any(|p| caller.0.allows(p, &t))
    })
}

pub(super) async fn one(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = approval_id(&path)?;
    let p = QueryParams::parse(req.query_string(), &["wait"])?;
    let wait = Duration::from_secs(p.number::<u64>("wait")?.unwrap_or(0)).min(MAX_WAIT);
    let until = tokio::time::Instant::now() + wait;
    loop {
        let row = approvals::get(&state.pool, id)
            .await
            .map_err(db_error)?
            .filter(|r| may_see(&caller, r))
            .ok_or_else(|| not_found(id))?;
        // A pending request past its expiry is answered as what it is, expired, even before
        // the sweep has marked it.
        let pending =
            row.status() == ApprovalStatus::Pending && row.expires_at > chrono::Utc::now();
        if !pending || tokio::time::Instant::now() >= until || state.cancel.is_cancelled() {
            return Ok(HttpResponse::Ok().json(json!({ "result": row })));
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct AnswerBody {
    note: Option<String>,
}

pub(super) async fn approve(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &caller, &path, &body, Resolution::Approve).await
}

pub(super) async fn deny(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    answer(&state, &caller, &path, &body, Resolution::Deny).await
}

async fn answer(
    state: &State,
    caller: &Authorized,
    id: &str,
    body: &[u8],
    resolution: Resolution,
) -> Result<HttpResponse, ApiError> {
    let id = approval_id(id)?;
    let body: AnswerBody = if body.iter().all(u8::is_ascii_whitespace) {
        AnswerBody::default()
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body must be {{\"note\": \"...\"}} or empty: {e}"
            ))
        })?
    };
    let note = body.note.filter(|n| !n.trim().is_empty());
    if let Some(n) = &note {
        if n.chars().count() > MAX_NOTE_CHARS || n.contains('\0') {
            return Err(ApiError::bad_request(format!(
                "a note is at most {MAX_NOTE_CHARS} characters, without NUL"
            )));
        }
    }
    let answered = approvals::answer(
        &state.pool,
        Answer {
            id,
            resolution,
            by: &caller.0.name,
            note: note.as_deref(),
        },
        &state.approvals,
        state.receipts,
        |tenant| TenantId::parse(tenant).is_ok_and(|t| caller.0.allows(Permission::Approve, &t)),
    )
    .await;
    match answered {
        Ok(row) => {
            state
                .stats
                .metrics
                .approvals
                .with_label_values(&[&row.tenant_id, &row.status])
                .inc();
            Ok(HttpResponse::Ok().json(json!({ "result": row })))
        }
        // Also when the caller may not answer it: whether it exists is not told.
        Err(AnswerError::NotFound(id)) => Err(not_found(id)),
        Err(AnswerError::Refused(e)) => {
            let code = match e {
                ApprovalError::AlreadyAnswered { .. } => "approval_answered",
                ApprovalError::Expired { .. } => "approval_expired",
            };
            Err(ApiError::new(StatusCode::CONFLICT, code, e.to_string()))
        }
        Err(AnswerError::Db(e)) => Err(db_error(e)),
    }
}
