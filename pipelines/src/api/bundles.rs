//! Bundle status, like OPA's status API: the serving revision of each tenant and the error of
//! a refused newer bundle, if any.

use actix_web::{web, HttpResponse};
use portcullis_actors::BundleStatus;
use portcullis_engine::access::Permission;
use portcullis_engine::TenantId;
use serde_json::{json, Value as Json};

use super::auth::Authorized;
use super::error::ApiError;
use super::State;

pub(super) fn status_json(tenant: &TenantId, s: &BundleStatus) -> Json {
    json!({
        "tenant_id": tenant,
        "revision": s.active.as_ref().map(|a| &a.revision),
        "digest": s.active.as_ref().map(|a| &a.digest),
        "activated_at": s.active.as_ref().map(|a| a.activated_at),
        "healthy": s.last_error.is_none(),
        "last_error": s.last_error,
        "last_error_at": s.last_error_at,
        "evaluation": s.evaluation,
    })
}

/// `GET /v1/bundles`: every tenant the engine has loaded or tried to, that the caller may read.
pub(super) async fn list(state: web::Data<State>, caller: Authorized) -> HttpResponse {
    let visible = caller.0.visible(Permission::Read);
    let all: Vec<Json> = state
        .store
        .statuses()
        .iter()
        .filter(|(t, _)| visible.contains(t))
        .map(|(t, s)| status_json(t, s))
        .collect();
    HttpResponse::Ok().json(json!({ "result": all }))
}

/// `GET /v1/bundles/{tenant}`.
pub(super) async fn one(
    state: web::Data<State>,
    caller: Authorized,
    tenant: web::Path<String>,
) -> HttpResponse {
    let tenant = match TenantId::parse(&tenant) {
        Ok(t) => t,
        Err(e) => return ApiError::bad_request(e.to_string()).response(),
    };
    if let Err(e) = caller.require(Permission::Read, &tenant) {
        return e.response();
    }
    match state.store.status(&tenant) {
        Some(s) => HttpResponse::Ok().json(json!({ "result": status_json(&tenant, &s) })),
        None => ApiError::not_found(format!("no policy bundle for tenant {tenant}")).response(),
    }
}
