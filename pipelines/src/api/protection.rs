//! Protection levels (docs/protection.md). Reading needs `read:<tenant>`; configuring units
//! needs `admin:<tenant>` (or `admin`).
//!
//! `GET    /v1/protection[?tenant_id=]`                    units, with this engine's λ, μ, ρ, level
//!                                                         (and what signals hold it at)
//! `PUT    /v1/protection/{tenant}/{unit}`                 `{"selector": …, "capacity_per_sec": …}`
//! `DELETE /v1/protection/{tenant}/{unit}`
//! `GET    /v1/protection/{tenant}/{unit}/samples[?since=]` the load over time (default: 1 h)
//! `GET    /v1/protection-transitions[?tenant_id=&limit=]`  changes of level, newest first

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use portcullis_engine::access::Permission;
use portcullis_engine::protection::{is_unit_name_valid, ProtectionLevel, Selector};
use portcullis_engine::TenantId;
use serde::Deserialize;
use serde_json::{json, Value as Json};

use super::auth::Authorized;
use super::error::ApiError;
use super::query::QueryParams;
use super::records::{db_error, read_scope};
use super::State;
use crate::protection::{
    finite_json, list_samples, list_transitions, list_units, load_board, remove_unit, set_unit,
};

pub(super) async fn units(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id"])?;
    let scope = read_scope(&caller, p.text("tenant_id").as_deref())?;
    let rows = list_units(&state.pool, &scope).await.map_err(db_error)?;
    let live = state
        .protection
        .as_ref()
        .map(|b| b.state())
        .unwrap_or_default();
    let at = Utc::now();
    let result: Vec<Json> = rows
        .into_iter()
        .map(|r| {
            let now = live
                .iter()
                .find(|u| u.tenant.as_str() == r.tenant_id && *u.unit == *r.unit);
            let measured = now.map_or(ProtectionLevel::Permissive, |u| u.level);
            let tenant = TenantId::parse(&r.tenant_id).ok();
            let held = state
                .protection
                .as_ref()
                .zip(tenant.as_ref())
                .and_then(|(b, t)| b.held(t, &r.unit, at));
            let held_by: Vec<Json> = state
                .signals
                .as_ref()
                .zip(tenant.as_ref())
                .map(|(b, t)| b.active(t, "unit", &r.unit, at))
                .into_iter()
                .flat_map(|list| list.iter().map(|s| json!(s)).collect::<Vec<_>>())
                .collect();
            json!({
                "tenant_id": r.tenant_id,
                "unit": r.unit,
                "selector": r.selector,
                "capacity_per_sec": r.capacity_per_sec,
                "updated_at": r.updated_at,
                // What decisions get: the measured level, or higher while a signal holds it.
                "level": held.map_or(measured, |h| h.max(measured)).as_str(),
                "measured_level": measured.as_str(),
                "held_level": held.map(ProtectionLevel::as_str),
                "signals": held_by,
                // `null` when infinite: work arrived and nothing served it.
                "rho":now.map_or(json!(0.0), |u| finite_json(u.rho)),
                "lambda": now.map_or(0.0, |u| u.lambda),
                "mu": now.map_or(r.capacity_per_sec, |u| u.mu),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "result": result,
        "enabled": state.protection.is_some(),
    })))
}

fn unit_target(
    caller: &Authorized,
    (tenant, unit): (String, String),
    permission: Permission,
) -> Result<(TenantId, String), ApiError> {
    let tenant = TenantId::parse(&tenant).map_err(|e| ApiError::bad_request(e.to_string()))?;
    caller.require(permission, &tenant)?;
    if !is_unit_name_valid(&unit) {
        return Err(ApiError::bad_request(format!(
            "unit {unit:?}: a letter or digit, then up to 62 letters, digits, '_', '.' or '-'"
        )));
    }
    Ok((tenant, unit))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UnitRequest {
    selector: String,
    capacity_per_sec: f64,
}

pub(super) async fn set(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (tenant, unit) = unit_target(&caller, path.into_inner(), Permission::Administer)?;
    let request: UnitRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"selector\": \"cloudtrail:iam.amazonaws.com\", \"capacity_per_sec\": 50}}: {e}"
        ))
    })?;
    let selector =
        Selector::parse(&request.selector).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !(request.capacity_per_sec.is_finite() && request.capacity_per_sec > 0.0) {
        return Err(ApiError::bad_request(
            "capacity_per_sec must be a positive number (what the unit serves per second)",
        ));
    }
    let row = set_unit(
        &state.pool,
        &tenant,
        &unit,
        &selector,
        request.capacity_per_sec,
    )
    .await
    .map_err(db_error)?;
    reload(&state).await;
    Ok(HttpResponse::Ok().json(json!({ "result": row })))
}

pub(super) async fn remove(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, unit) = unit_target(&caller, path.into_inner(), Permission::Administer)?;
    if !remove_unit(&state.pool, &tenant, &unit)
        .await
        .map_err(db_error)?
    {
        return Err(ApiError::not_found(format!(
            "tenant {tenant} has no unit {unit:?}"
        )));
    }
    reload(&state).await;
    Ok(HttpResponse::new(StatusCode::NO_CONTENT))
}

/// This engine applies a change at once; the others within `protection.refresh_ms`.
async fn reload(state: &State) {
    if let Some(board) = &state.protection {
        if let Err(e) = load_board(&state.pool, board).await {
            tracing::warn!(error = %e, "cannot reload protection units now; the ticker will");
        }
    }
}

pub(super) async fn samples(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (tenant, unit) = unit_target(&caller, path.into_inner(), Permission::Read)?;
    let p = QueryParams::parse(req.query_string(), &["since"])?;
    let since = p
        .time("since")?
        .unwrap_or_else(|| Utc::now() - chrono::Duration::hours(1));
    let rows = list_samples(&state.pool, &tenant, &unit, since)
        .await
        .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

pub(super) async fn transitions(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id", "limit"])?;
    let scope = read_scope(&caller, p.text("tenant_id").as_deref())?;
    let rows = list_transitions(&state.pool, &scope, p.limit(50)?)
        .await
        .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}
