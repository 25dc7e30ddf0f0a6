//! Enrolling agents on the broker (`admin:<tenant>`): credentials bound to the agent's client
//! id and confined to its own topics, shown once; revoking them; listing who is enrolled.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use portcullis_engine::access::Permission;
use portcullis_engine::TenantId;
use serde::Deserialize;
use serde_json::json;

use super::auth::Authorized;
use super::error::ApiError;
use super::query::QueryParams;
use super::records::{db_error, read_scope};
use super::State;
use crate::distribution::{enroll_agent, list_enrollments, revoke_agent, EnrollmentError};

fn enrollment_error(e: EnrollmentError) -> ApiError {
    match e {
        EnrollmentError::UnknownTenant(_) => ApiError::not_found(e.to_string()),
        EnrollmentError::BadAgentId(_) | EnrollmentError::BadGroups(_) => {
            ApiError::bad_request(e.to_string())
        }
        EnrollmentError::NoEngineAccount
        | EnrollmentError::SameAccount
        | EnrollmentError::Broker(_) => ApiError::unavailable("broker_admin", e.to_string()),
        EnrollmentError::Db(e) => db_error(e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollRequest {
    groups: Vec<String>,
}

fn tenant_of(caller: &Authorized, tenant: &str) -> Result<TenantId, ApiError> {
    let tenant = TenantId::parse(tenant).map_err(|e| ApiError::bad_request(e.to_string()))?;
    caller.require(Permission::Administer, &tenant)?;
    Ok(tenant)
}

/// `POST /v1/agents/{tenant}/{agent}/enrollment` with `{"groups": [...]}`: 201 with the
/// agent's broker credentials. Enrolling again gives a new password and disconnects the old.
pub(super) async fn enroll(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (tenant, agent) = path.into_inner();
    let tenant = tenant_of(&caller, &tenant)?;
    let request: EnrollRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!("expected {{\"groups\": [\"hr\", ...]}}: {e}"))
    })?;
    let credentials = enroll_agent(
        &state.pool,
        &state.broker,
        &tenant,
        &agent,
        request.groups,
        &format!("token:{}", caller.0.name),
    )
    .await
    .map_err(enrollment_error)?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "result": credentials })))
}

/// `DELETE /v1/agents/{tenant}/{agent}/enrollment`: the agent's credentials stop working and
/// it is disconnected; 404 if it was not enrolled.
pub(super) async fn revoke(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, agent) = path.into_inner();
    let tenant = tenant_of(&caller, &tenant)?;
    if revoke_agent(&state.pool, &state.broker, &tenant, &agent)
        .await
        .map_err(enrollment_error)?
    {
        Ok(HttpResponse::Ok().json(json!({ "result": { "revoked": true } })))
    } else {
        let shown: String = agent.chars().take(140).collect();
        Err(ApiError::not_found(format!(
            "agent {shown:?} of tenant {tenant} is not enrolled"
        )))
    }
}

/// `GET /v1/enrollments[?tenant_id=]`.
pub(super) async fn list(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id"])?;
    let scope = read_scope(&caller, p.text("tenant_id").as_deref())?;
    let rows = list_enrollments(&state.pool, &scope)
        .await
        .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}
