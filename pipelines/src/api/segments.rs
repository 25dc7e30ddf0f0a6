//! Policy distribution for administrators: segments and their version history, publishing a
//! version, segmentation rules, and agents with their drift. Reading needs `read:<tenant>`;
//! changing needs `admin:<tenant>` (or `admin`).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use portcullis_engine::access::Permission;
use portcullis_engine::distribution::{SegmentId, SegmentKey, SegmentRule};
use portcullis_engine::TenantId;
use serde::Deserialize;
use serde_json::json;

use super::auth::Authorized;
use super::error::ApiError;
use super::query::QueryParams;
use super::records::{db_error, read_scope};
use super::State;
use crate::distribution::{
    add_segment_rule, list_agents, list_rules, list_segments, list_versions, publish_version,
    remove_segment_rule, version_detail, DistributionError, NewVersion,
};

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(e.to_string())
}

fn segment_key(tenant: &str, segment: &str) -> Result<SegmentKey, ApiError> {
    Ok(SegmentKey {
        tenant: TenantId::parse(tenant).map_err(bad)?,
        segment: SegmentId::parse(segment).map_err(bad)?,
    })
}

fn distribution_error(e: DistributionError) -> ApiError {
    match e {
        DistributionError::UnknownTenant(_) => ApiError::not_found(e.to_string()),
        DistributionError::Db(e) => db_error(e),
        DistributionError::TooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        DistributionError::NoModules | DistributionError::Policy(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_policy", e.to_string())
        }
    }
}

/// `GET /v1/segments[?tenant_id=]`.
pub(super) async fn list(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id"])?;
    let scope = read_scope(&caller, p.text("tenant_id").as_deref())?;
    let rows = list_segments(&state.pool, &scope).await.map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

/// `GET /v1/segments/{tenant}/{segment}/versions[?before=&limit=]`: newest first, without
/// modules (see one version for those).
pub(super) async fn versions(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (tenant, segment) = path.into_inner();
    let key = segment_key(&tenant, &segment)?;
    caller.require(Permission::Read, &key.tenant)?;
    let p = QueryParams::parse(req.query_string(), &["before", "limit"])?;
    let limit = p.limit(50)?;
    let rows = list_versions(&state.pool, &key, p.number("before")?, limit)
        .await
        .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

/// `GET /v1/segments/{tenant}/{segment}/versions/{version}`: with modules, data and the
/// signed envelope as sent.
pub(super) async fn version(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (tenant, segment, version) = path.into_inner();
    let key = segment_key(&tenant, &segment)?;
    caller.require(Permission::Read, &key.tenant)?;
    let number: u64 = version
        .parse()
        .map_err(|_| bad(format!("version {version:?} must be a positive integer")))?;
    match version_detail(&state.pool, &key, number)
        .await
        .map_err(db_error)?
    {
        Some(v) => Ok(HttpResponse::Ok().json(json!({ "result": v }))),
        None => Err(ApiError::not_found(format!(
            "segment {key} has no version {number}"
        ))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublishRequest {
    /// Rego modules by file name.
    modules: BTreeMap<String, String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// `POST /v1/segments/{tenant}/{segment}/versions` with `{"modules": {...}, "data": {...}}`:
/// checks, numbers, signs and stores the next version (201); the engine then sends it to
/// agents. The latest version's policy again is 200 with `"unchanged": true` and that version.
pub(super) async fn publish(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (tenant, segment) = path.into_inner();
    let key = segment_key(&tenant, &segment)?;
    caller.require(Permission::Administer, &key.tenant)?;
    let Some(signer) = state.signer.clone() else {
        return Err(ApiError::unavailable(
            "distribution_disabled",
            "policy distribution is off on this engine (distribution.enabled = false)",
        ));
    };
    let request: PublishRequest = serde_json::from_slice(&body).map_err(|e| {
        bad(format!(
            "expected {{\"modules\": {{\"file.rego\": \"package segments.{}...\"}}, \"data\": {{...}}}}: {e}",
            key.segment
        ))
    })?;
    let new = NewVersion {
        tenant: key.tenant,
        segment: key.segment,
        modules: request.modules,
        data: request.data.unwrap_or_else(|| json!({})),
        published_by: format!("token:{}", caller.0.name),
    };
    let done = publish_version(&state.pool, new, &signer, state.max_policy_bytes)
        .await
        .map_err(distribution_error)?;
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(json!({
        "result": done.version,
        "unchanged": !done.created,
    })))
}

/// `GET /v1/segment-rules[?tenant_id=]`.
pub(super) async fn rules(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id"])?;
    let scope = read_scope(&caller, p.text("tenant_id").as_deref())?;
    let rows = list_rules(&state.pool, &scope).await.map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRequest {
    tenant_id: String,
    group: String,
    segment_id: String,
}

fn rule_from(body: &[u8], caller: &Authorized) -> Result<(TenantId, SegmentRule), ApiError> {
    let r: RuleRequest = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "expected {{\"tenant_id\": ..., \"group\": ..., \"segment_id\": ...}}: {e}"
        ))
    })?;
    let tenant = TenantId::parse(&r.tenant_id).map_err(bad)?;
    caller.require(Permission::Administer, &tenant)?;
    let group = r.group.trim();
    if group.is_empty() || group.len() > 200 || group.contains('\0') {
        return Err(bad("group must be 1 to 200 characters, without NUL"));
    }
    let rule = SegmentRule {
        group: group.to_owned(),
        segment: SegmentId::parse(&r.segment_id).map_err(bad)?,
    };
    Ok((tenant, rule))
}

/// `POST /v1/segment-rules` with `{"tenant_id", "group", "segment_id"}` (idempotent).
pub(super) async fn add_rule(
    state: web::Data<State>,
    caller: Authorized,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (tenant, rule) = rule_from(&body, &caller)?;
    add_segment_rule(&state.pool, &tenant, &rule)
        .await
        .map_err(distribution_error)?;
    Ok(
        HttpResponse::build(StatusCode::CREATED).json(json!({ "result": {
            "tenant_id": tenant, "group": rule.group, "segment_id": rule.segment,
        }})),
    )
}

/// `DELETE /v1/segment-rules` with the same body; 404 if there was no such rule.
pub(super) async fn remove_rule(
    state: web::Data<State>,
    caller: Authorized,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (tenant, rule) = rule_from(&body, &caller)?;
    if remove_segment_rule(&state.pool, &tenant, &rule)
        .await
        .map_err(db_error)?
    {
        Ok(HttpResponse::Ok().json(json!({ "result": { "removed": true } })))
    } else {
        Err(ApiError::not_found(format!(
            "tenant {tenant} has no rule giving group {:?} segment {}",
            rule.group, rule.segment
        )))
    }
}

/// `GET /v1/agents[?tenant_id=&behind=true&limit=]`: agents with the versions they apply and
/// how many of their segments are behind the latest.
pub(super) async fn agents(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id", "behind", "limit"])?;
    let scope = read_scope(&caller, p.text("tenant_id").as_deref())?;
    let limit = p.limit(100)?;
    let rows = list_agents(
        &state.pool,
        &scope,
        p.flag("behind")?.unwrap_or(false),
        limit,
    )
    .await
    .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}
