//! Receipts and their proofs, checkpoints, and the keys that sign them. Reading needs
//! `read:<tenant>`; the keys are public and need only a valid token.
//!
//! `GET /v1/receipts/{tenant}/{index}[?size=]`        a receipt, its inclusion proof, its check
//! `GET /v1/receipts?tenant_id=&decision_id=`          the same, found by its decision
//! `GET /v1/checkpoints[?tenant_id=&before=&limit=]`   newest first
//! `GET /v1/checkpoints/{tenant}/consistency?from=&to=` RFC 6962 consistency proof
//! `GET /v1/evidence-keys`                             every key that has signed checkpoints

use actix_web::{web, HttpRequest, HttpResponse};
use portcullis_engine::TenantId;
use serde_json::json;

use super::auth::Authorized;
use super::error::ApiError;
use super::query::QueryParams;
use super::records::{db_error, read_scope};
use super::State;
use crate::evidence::{
    consistency_proof, list_checkpoints, list_keys, receipt_with_proof, EvidenceStoreError,
    ReceiptKey, ReceiptProof,
};
use portcullis_engine::access::Permission;

fn evidence_error(e: EvidenceStoreError) -> ApiError {
    match e {
        EvidenceStoreError::Database(e) => db_error(e),
        EvidenceStoreError::Refused(why) => ApiError::bad_request(why),
        other => {
            tracing::warn!(error = %other, "evidence API failed");
            ApiError::unavailable("evidence_unavailable", other.to_string())
        }
    }
}

fn readable_tenant(caller: &Authorized, tenant: &str) -> Result<TenantId, ApiError> {
    let tenant = TenantId::parse(tenant).map_err(|e| ApiError::bad_request(e.to_string()))?;
    caller.require(Permission::Read, &tenant)?;
    Ok(tenant)
}

/// A receipt with its proof, or a 404 that says what was not found.
fn proven(
    found: Option<ReceiptProof>,
    missing: impl FnOnce() -> String,
) -> Result<HttpResponse, ApiError> {
    match found {
        Some(proof) => Ok(HttpResponse::Ok().json(json!({ "result": proof }))),
        None => Err(ApiError::not_found(missing())),
    }
}

/// `GET /v1/receipts/{tenant}/{index}`.
pub(super) async fn receipt(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (tenant, index) = path.into_inner();
    let tenant = readable_tenant(&caller, &tenant)?;
    let index: u64 = index.parse().map_err(|_| {
        ApiError::bad_request(format!("{index:?} is not a leaf index (a whole number)"))
    })?;
    let p = QueryParams::parse(req.query_string(), &["size"])?;
    let size = p.number::<u64>("size")?;
    let found = receipt_with_proof(&state.pool, tenant.as_str(), ReceiptKey::Index(index), size)
        .await
        .map_err(evidence_error)?;
    proven(found, || format!("tenant {tenant} has no receipt {index}"))
}

/// `GET /v1/receipts?tenant_id=&decision_id=`.
pub(super) async fn receipt_of_decision(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id", "decision_id"])?;
    let (Some(tenant), Some(decision)) = (p.text("tenant_id"), p.text("decision_id")) else {
        return Err(ApiError::bad_request(
            "give tenant_id and decision_id (or use /v1/receipts/{tenant}/{index})",
        ));
    };
    let tenant = readable_tenant(&caller, &tenant)?;
    let decision: uuid::Uuid = decision
        .parse()
        .map_err(|_| ApiError::bad_request(format!("decision_id {decision:?} is not a UUID")))?;
    let found = receipt_with_proof(
        &state.pool,
        tenant.as_str(),
        ReceiptKey::Decision(decision),
        None,
    )
    .await
    .map_err(evidence_error)?;
    proven(found, || {
        format!("tenant {tenant} has no receipt for decision {decision}")
    })
}

/// `GET /v1/checkpoints`.
pub(super) async fn checkpoints(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id", "before", "limit"])?;
    let scope = read_scope(&caller, p.text("tenant_id").as_deref())?;
    let rows = list_checkpoints(
        &state.pool,
        scope.ids().as_deref(),
        p.time("before")?,
        p.limit(50)?,
    )
    .await
    .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

/// `GET /v1/checkpoints/{tenant}/consistency?from=&to=`.
pub(super) async fn consistency(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let tenant = readable_tenant(&caller, &path.into_inner())?;
    let p = QueryParams::parse(req.query_string(), &["from", "to"])?;
    let (Some(from), Some(to)) = (p.number::<u64>("from")?, p.number::<u64>("to")?) else {
        return Err(ApiError::bad_request(
            "give from and to: two checkpoint sizes",
        ));
    };
    let proof = consistency_proof(&state.pool, tenant.as_str(), from, to)
        .await
        .map_err(evidence_error)?;
    Ok(HttpResponse::Ok().json(json!({
        "result": { "tenant": tenant.as_str(), "from": from, "to": to, "proof": proof }
    })))
}

/// `GET /v1/evidence-keys`.
pub(super) async fn keys(
    state: web::Data<State>,
    _caller: Authorized,
) -> Result<HttpResponse, ApiError> {
    let rows = list_keys(&state.pool).await.map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}
