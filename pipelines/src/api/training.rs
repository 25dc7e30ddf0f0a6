//! Anomaly training sessions and model versions for administrators. Reading needs
//! `read:<tenant>`; starting, stopping and force-closing need `admin:<tenant>` (or `admin`).
//!
//! `POST /v1/anomaly/{tenant}/{scope}/training`        start a session (201; 409 if one is active)
//! `GET  /v1/anomaly/{tenant}/{scope}/training`        the active session (404 if none)
//! `POST /v1/anomaly/{tenant}/{scope}/training/stop`   stop it and train the next model version
//! `POST /v1/anomaly/{tenant}/{scope}/training/close`  force-close it without training
//! `GET  /v1/training-sessions[?tenant_id=&limit=]`    sessions, newest first
//! `GET  /v1/anomaly-models[?tenant_id=&limit=]`       model versions, newest first

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use portcullis_engine::access::Permission;
use portcullis_engine::anomaly::{ForestParams, ModelScope};
use portcullis_engine::TenantId;
use serde_json::json;

use super::auth::Authorized;
use super::error::ApiError;
use super::query::QueryParams;
use super::records::{db_error, read_scope};
use super::State;
use crate::anomaly::{
    active_session, close_session, list_models, list_sessions, start_session, stop_session,
    TrainingError,
};

pub(super) fn target(path: (String, String)) -> Result<(TenantId, ModelScope), ApiError> {
    let tenant = TenantId::parse(&path.0).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let scope = ModelScope::parse(&path.1).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((tenant, scope))
}

/// The tenant and scope a change names, once the caller is checked to administer the tenant,
/// and who the change is recorded as made by.
pub(super) fn admin_target(
    caller: &Authorized,
    path: (String, String),
) -> Result<(TenantId, ModelScope, String), ApiError> {
    let (tenant, scope) = target(path)?;
    caller.require(Permission::Administer, &tenant)?;
    Ok((tenant, scope, format!("token:{}", caller.0.name)))
}

pub(super) fn training_error(e: TrainingError) -> ApiError {
    match e {
        TrainingError::UnknownTenant(_) | TrainingError::NoneActive { .. } => {
            ApiError::not_found(e.to_string())
        }
        TrainingError::AlreadyActive { .. } => {
            ApiError::new(StatusCode::CONFLICT, "session_active", e.to_string())
        }
        TrainingError::Model(_) => ApiError::bad_request(e.to_string()),
        TrainingError::Db(e) => db_error(e),
    }
}

/// `POST /v1/anomaly/{tenant}/{scope}/training`.
pub(super) async fn start(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, scope, by) = admin_target(&caller, path.into_inner())?;
    let session = start_session(&state.pool, &tenant, scope, &by)
        .await
        .map_err(training_error)?;
    Ok(HttpResponse::Created().json(json!({ "result": session })))
}

/// `GET /v1/anomaly/{tenant}/{scope}/training`.
pub(super) async fn status(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, scope) = target(path.into_inner())?;
    caller.require(Permission::Read, &tenant)?;
    match active_session(&state.pool, &tenant, scope)
        .await
        .map_err(db_error)?
    {
        Some(session) => Ok(HttpResponse::Ok().json(json!({ "result": session }))),
        None => Err(training_error(TrainingError::NoneActive {
            tenant: tenant.to_string(),
            scope,
        })),
    }
}

/// `POST /v1/anomaly/{tenant}/{scope}/training/stop`: 200 with the session and, if training
/// succeeded, the model version (`model` is null and the session's `failure` says why if not).
pub(super) async fn stop(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, scope, by) = admin_target(&caller, path.into_inner())?;
    let stopped = stop_session(&state.pool, &tenant, scope, ForestParams::default(), &by)
        .await
        .map_err(training_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": stopped })))
}

/// `POST /v1/anomaly/{tenant}/{scope}/training/close`.
pub(super) async fn close(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, scope, by) = admin_target(&caller, path.into_inner())?;
    let session = close_session(&state.pool, &tenant, scope, &by)
        .await
        .map_err(training_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": session })))
}

fn listing(
    caller: &Authorized,
    req: &HttpRequest,
) -> Result<(crate::records::TenantScope, i64), ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id", "limit"])?;
    let scope = read_scope(caller, p.text("tenant_id").as_deref())?;
    let limit = p.limit(50)?;
    Ok((scope, limit))
}

/// `GET /v1/training-sessions[?tenant_id=&limit=]`.
pub(super) async fn sessions(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (scope, limit) = listing(&caller, &req)?;
    let rows = list_sessions(&state.pool, &scope, limit)
        .await
        .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

/// `GET /v1/anomaly-models[?tenant_id=&limit=]`.
pub(super) async fn models(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (scope, limit) = listing(&caller, &req)?;
    let rows = list_models(&state.pool, &scope, limit)
        .await
        .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}
