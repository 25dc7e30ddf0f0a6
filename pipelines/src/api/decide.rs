//! One decision, as the decision API and the gateway make it: evaluated on this HTTP worker,
//! queued for the decision log (with its receipt) before it is answered, and streamed.

use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use chrono::Utc;
use portcullis_actors::{FailedQuery, PolicyUnavailable, Query, QueryError};
use portcullis_engine::approval::{ApprovalRequest, Verdict};
use portcullis_engine::evidence::{json_digest, reasons_of};
use portcullis_engine::policy::{Answer, RulePath};
use portcullis_engine::{PolicyError, TenantId};
use serde_json::Value as Json;
use uuid::Uuid;

use super::error::ApiError;
use super::State;
use crate::approvals::{open_request, Opened};
use crate::policy_service::StreamedDecision;
use crate::sinks::postgres::{ApiDecisionRow, ApprovalLink};

/// Longest wait to find or open an approval request.
const APPROVAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A decision made and queued for the log.
pub(super) struct Decided {
    pub decision_id: Uuid,
    pub answer: Answer,
    /// What was answered: the rule's verdict, or `Allow` when an approval let it through.
    pub verdict: Verdict,
    /// The approval request a `require_approval` answer opened or found.
    pub approval: Option<Opened>,
}

/// Who asks, for the decision stream and for an approval request's description.
pub(super) enum Asker {
    /// The decision API: the request is its input, named by the input's digest.
    Api,
    /// The gateway: the request is `METHOD host/path`.
    Gateway { resource: String, host: String },
}

impl Asker {
    fn source(&self) -> &'static str {
        match self {
            Asker::Api => "api",
            Asker::Gateway { .. } => "gateway",
        }
    }
}

/// Evaluates `path` for `tenant` with `input` (the caller's scope already checked), opens or
/// finds an approval request when the rule asks for one, then logs and streams the decision.
pub(super) async fn decide(
    state: &State,
    tenant: &TenantId,
    path: RulePath,
    input: Option<Json>,
    body_bytes: usize,
    asker: Asker,
) -> Result<Decided, ApiError> {
    let source = asker.source();
    let now = Utc::now();
    // The query's arrival counts in its unit's load; policy sees the unit's level.
    let protection = state.protection.as_ref().and_then(|board| {
        let key = match &asker {
            Asker::Api => format!("api:{}", path.under(&format!("tenants.{tenant}"))),
            Asker::Gateway { host, .. } => format!("gateway:{host}"),
        };
        board.arrive(tenant, &key)
    });
    let protection_level = protection.as_ref().map(|p| p.level);
    // Signals about the input's principal lower its trust; they and those about the unit
    // are shown to policy.
    let signals = match &state.signals {
        Some(board) => {
            let about = match text_field(input.as_ref(), "principal") {
                Some(principal) => board.active(tenant, "principal", &principal, now),
                None => board.none(),
            };
            board.with_unit(about, tenant, protection.as_ref().map(|p| &*p.unit), now)
        }
        None => std::sync::Arc::from([]),
    };
    // Evaluated here, on this HTTP worker, on an evaluator of the tenant's serving policy: no
    // hop to the tenant's actor thread (docs/decisions/0006). A tenant whose rules recently
    // ran long is answered on the slow lane instead, so it cannot hold every worker.
    let reply = match state
        .slow_lane
        .query(
            tenant,
            Query {
                path,
                input,
                now,
                protection,
                signals,
            },
        )
        .await
    {
        Ok(reply) => reply,
        Err(QueryError::Failed(failed)) => {
            return Err(log_failure(state, tenant, *failed, now, body_bytes))
        }
        Err(QueryError::Unavailable(e @ PolicyUnavailable::Unknown(_))) => {
            return Err(ApiError::not_found(e.to_string()))
        }
        Err(QueryError::Unavailable(e)) => {
            return Err(ApiError::unavailable("policy_unavailable", e.to_string()))
        }
        Err(QueryError::Policy(e)) => return Err(evaluation_error(&e)),
        Err(e @ QueryError::Throttled(_)) => {
            return Err(ApiError::unavailable("tenant_throttled", e.to_string()))
        }
    };
    let answer = reply.answer;
    let decision_id = Uuid::now_v7();
    // A place in the log first: a decision is served (and streamed, and its approval request
    // opened) only once it will be logged.
    let place = state
        .decision_log
        .reserve()
        .map_err(|e| ApiError::unavailable("decision_log_unavailable", e.to_string()))?;
    let mut verdict = answer.result.as_ref().map_or(Verdict::Deny, Verdict::of);
    let approval = if verdict == Verdict::RequireApproval {
        let request = ApprovalRequest {
            tenant: tenant.to_string(),
            rule: answer.path.clone(),
            principal: text_field(reply.logged_input.as_ref(), "principal"),
            action: text_field(reply.logged_input.as_ref(), "action"),
            resource: match asker {
                Asker::Gateway { resource, .. } => resource,
                Asker::Api => format!(
                    "input {}",
                    json_digest(reply.logged_input.as_ref().unwrap_or(&Json::Null))
                ),
            },
            reasons: reasons_of(answer.result.as_ref().unwrap_or(&Json::Null)),
            source,
            decision_id,
            policy_revision: answer.revision.clone(),
            policy_digest: answer.digest.to_string(),
        };
        // Bounded: the place held in the decision log must not be held for long.
        let opened = tokio::time::timeout(
            APPROVAL_TIMEOUT,
            open_request(&state.pool, &request, now, &state.approvals, state.receipts),
        )
        .await
        .map_err(|_| {
            ApiError::unavailable(
                "approvals_unavailable",
                "Postgres did not open the approval request in time",
            )
        })?
        .map_err(|e| ApiError::unavailable("approvals_unavailable", e.to_string()))?;
        let m = &state.stats.metrics.approvals;
        match &opened {
            Opened::Granted(_) => verdict = Verdict::Allow,
            Opened::Pending(row) if row.decision_id == decision_id => {
                m.with_label_values(&[tenant.as_str(), "opened"]).inc();
                // Approvals are a unit too: their arrivals against the approvers' rate.
                if let Some(board) = &state.protection {
                    board.arrive(tenant, "approvals");
                }
            }
            Opened::Pending(_) => {}
        }
        Some(opened)
    } else {
        None
    };
    let row = ApiDecisionRow {
        decision_id,
        tenant_id: tenant.to_string(),
        path: answer.path.clone(),
        input: reply.logged_input,
        erased: reply.erased,
        result: answer.result.clone(),
        bundle_revision: answer.revision.clone(),
        policy_digest: answer.digest.clone(),
        eval_micros: answer.eval_micros,
        decided_at: now,
        error: None,
        size_hint: body_bytes + 256,
        protection_level,
        approval: approval.as_ref().map(|o| ApprovalLink {
            approval_id: o.row().approval_id,
            granted: o.is_granted(),
        }),
    };
    let id_text = decision_id.to_string();
    let streamed = state.bus.prepare(&StreamedDecision {
        event_id: &id_text,
        decision_id,
        tenant,
        decided_at: now,
        source,
        path: &row.path,
        revision: &row.bundle_revision,
        result: row.result.as_ref(),
        input: row.input.as_ref(),
        eval_micros: row.eval_micros,
    });
    place.log(row);
    if let Some(message) = streamed {
        state.bus.send(tenant, message);
    }

    Ok(Decided {
        decision_id,
        answer,
        verdict,
        approval,
    })
}

fn text_field(input: Option<&Json>, name: &str) -> Option<String> {
    input?.get(name)?.as_str().map(str::to_owned)
}

/// Counts a request's outcome in the API's metrics (`status`: what the answer was) and turns
/// it into the response.
pub(super) fn counted(
    state: &State,
    tenant: &str,
    started: Instant,
    outcome: Result<(HttpResponse, &'static str), ApiError>,
) -> HttpResponse {
    let m = &state.stats.metrics;
    m.api_seconds.observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok((response, status)) => {
            m.api_decisions.with_label_values(&[tenant, status]).inc();
            response
        }
        Err(e) => {
            // Only a tenant the engine knows becomes a label: ids from requests must not grow
            // the metric.
            let known = TenantId::parse(tenant).is_ok_and(|t| state.store.status(&t).is_some());
            if known {
                m.api_decisions.with_label_values(&[tenant, "error"]).inc();
            }
            e.response()
        }
    }
}

/// Longest error text logged with a failed query, in bytes.
const MAX_LOGGED_ERROR: usize = 1024;

/// A 500 for an evaluation that failed: stopped by the time limit or a bound, or broken.
fn evaluation_error(e: &PolicyError) -> ApiError {
    let code = match e {
        PolicyError::LimitExceeded(_) | PolicyError::ValueTooLarge(_) => "evaluation_limit",
        _ => "evaluation_error",
    };
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, e.to_string())
}

/// Logs a failed query, as a decision is logged, and gives the error to answer with. A failure
/// is answered only once it will be logged too: with the log full, the answer is a 503.
fn log_failure(
    state: &State,
    tenant: &TenantId,
    failed: FailedQuery,
    now: chrono::DateTime<Utc>,
    body_bytes: usize,
) -> ApiError {
    let mut answer = evaluation_error(&failed.error);
    let decision_id = Uuid::now_v7();
    // The error's text may quote the input; it is kept short (a runaway's message is a line).
    let mut error = failed.error.to_string();
    if error.len() > MAX_LOGGED_ERROR {
        let cut = (0..=MAX_LOGGED_ERROR)
            .rev()
            .find(|&i| error.is_char_boundary(i))
            .unwrap_or(0);
        error.truncate(cut);
        error.push('…');
    }
    let row = ApiDecisionRow {
        decision_id,
        tenant_id: tenant.to_string(),
        path: failed.path,
        input: failed.logged_input,
        erased: failed.erased,
        result: None,
        bundle_revision: failed.revision,
        // A failure has no receipt.
        policy_digest: "".into(),
        eval_micros: failed.eval_micros,
        decided_at: now,
        size_hint: body_bytes + 256 + error.len(),
        error: Some(error),
        protection_level: None,
        approval: None,
    };
    match state.decision_log.try_log(row) {
        Ok(()) => {
            answer.decision_id = Some(decision_id);
            answer
        }
        Err(e) => ApiError::unavailable("decision_log_unavailable", e.to_string()),
    }
}
