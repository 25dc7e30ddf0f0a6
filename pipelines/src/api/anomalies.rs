//! What anomaly models found: anomalies, trust per principal and agent, and each model line's
//! settings. Reading needs `read:<tenant>`; changing settings needs `admin:<tenant>`.
//!
//! `GET /v1/anomalies[?tenant_id=&scope=&subject=&since=&limit=]`    newest first
//! `GET /v1/trust-scores[?tenant_id=&kind=&subject=&limit=]`          least trusted first, as of now
//! `GET /v1/anomaly-settings[?tenant_id=]`                            every line, defaults included
//! `PUT /v1/anomaly/{tenant}/{scope}/settings` `{"threshold": 0.7, "trust_half_life_secs": 3600}`

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use portcullis_engine::anomaly::AnomalySettings;
use serde::Deserialize;
use serde_json::json;

use super::auth::Authorized;
use super::error::ApiError;
use super::query::QueryParams;
use super::records::{db_error, read_scope};
use super::training::{admin_target, training_error};
use super::State;
use crate::anomaly::{
    list_anomalies, list_settings, list_trust, set_line_settings, AnomalyQuery, TrustQuery,
};

/// `GET /v1/anomalies`.
pub(super) async fn anomalies(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(
        req.query_string(),
        &["tenant_id", "scope", "subject", "since", "limit"],
    )?;
    let q = AnomalyQuery {
        tenants: read_scope(&caller, p.text("tenant_id").as_deref())?,
        scope: p.one_of("scope", &["cloudtrail", "device"])?,
        subject: p.text("subject"),
        since: p.time("since")?,
        limit: p.limit(50)?,
    };
    let rows = list_anomalies(&state.pool, &q).await.map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

/// `GET /v1/trust-scores`: subjects that lost trust, as it stands now. A subject not listed
/// has full trust (100).
pub(super) async fn trust_scores(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(
        req.query_string(),
        &["tenant_id", "kind", "subject", "limit"],
    )?;
    let q = TrustQuery {
        tenants: read_scope(&caller, p.text("tenant_id").as_deref())?,
        subject_kind: p.one_of("kind", &["principal", "agent"])?,
        subject: p.text("subject"),
        limit: p.limit(50)?,
    };
    let rows = list_trust(&state.pool, &q, Utc::now())
        .await
        .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

/// `GET /v1/anomaly-settings`.
pub(super) async fn settings(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id"])?;
    let tenants = read_scope(&caller, p.text("tenant_id").as_deref())?;
    let rows = list_settings(&state.pool, &tenants)
        .await
        .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsRequest {
    threshold: Option<f64>,
    trust_half_life_secs: Option<u32>,
}

/// `PUT /v1/anomaly/{tenant}/{scope}/settings`: what is left out stays as it was.
pub(super) async fn set_settings(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (tenant, scope, by) = admin_target(&caller, path.into_inner())?;
    let request: SettingsRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"threshold\": 0.7, \"trust_half_life_secs\": 3600}} (either may be left out): {e}"
        ))
    })?;
    let now = crate::anomaly::line_settings(&state.pool, &tenant, scope)
        .await
        .map_err(db_error)?;
    let wanted = AnomalySettings::new(
        request.threshold.unwrap_or(now.threshold),
        request
            .trust_half_life_secs
            .unwrap_or(now.trust_half_life_secs),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let row = set_line_settings(&state.pool, &tenant, scope, wanted, &by)
        .await
        .map_err(training_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": row })))
}
