//! Compliance violations (docs/compliance.md). Reading needs `read:<tenant>` or
//! `comply:<tenant>`; changing a violation's status needs `comply:<tenant>`.
//!
//! `GET  /v1/compliance/violations[?tenant_id=&status=&active=&severity=&pack=&control=&resource=&limit=]`
//! `GET  /v1/compliance/violations/{id}`          the violation, its evidence, history and remediation
//! `POST /v1/compliance/violations/{id}/status`   `{"status": …, "reason": …, "until": …}`
//! `POST /v1/compliance/violations/{id}/remediate`  a new remediation command (comply)
//! `GET  /v1/compliance/resources[?tenant_id=&type=&state=&drifted=&limit=]`  the inventory
//! `GET  /v1/compliance/remediations[?tenant_id=&status=&violation_id=&limit=]`  remediation actions
//! `GET  /v1/compliance/frameworks?tenant_id=`    frameworks the tenant's packs map to
//! `POST /v1/compliance/scans`                    `{"tenant_id", "framework", "from", "to"}` (comply)
//! `GET  /v1/compliance/scans[?tenant_id=&framework=&limit=]`  newest first: the trend
//! `GET  /v1/compliance/scans/{id}[?format=json|csv|ocsf|html]`  one scan, as a report

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use portcullis_engine::access::Permission;
use portcullis_engine::compliance::{PackManifest, StatusChange, ViolationStatus};
use portcullis_engine::TenantId;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::auth::Authorized;
use super::error::ApiError;
use super::query::QueryParams;
use super::records::{db_error, scope_for_any};
use super::State;
use crate::compliance::{
    self, ChangeError, RequestError, ResourceQuery, ViolationQuery, ViolationRow,
};
use crate::records::TenantScope;

/// Evidence events shown with one violation.
const EVIDENCE_SHOWN: i64 = 50;

/// Remediation actions shown with one violation, newest first.
const REMEDIATIONS_SHOWN: i64 = 20;

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// Compliance records are read with `read:<tenant>` or `comply:<tenant>`.
const READERS: &[Permission] = &[Permission::Read, Permission::Comply];

/// May the caller read `tenant`'s compliance records.
fn may_read(caller: &Authorized, tenant: &str) -> bool {
    TenantId::parse(tenant).is_ok_and(|t| READERS.iter().any(|p| caller.0.allows(*p, &t)))
}

/// The tenants a compliance listing may show: the one asked for, or all the caller may read.
fn readable(caller: &Authorized, p: &QueryParams) -> Result<TenantScope, ApiError> {
    scope_for_any(caller, p.text("tenant_id").as_deref(), READERS)
}

fn may_see(caller: &Authorized, row: &ViolationRow) -> bool {
    may_read(caller, &row.tenant_id)
}

pub(super) async fn list(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(
        req.query_string(),
        &[
            "tenant_id",
            "status",
            "active",
            "severity",
            "pack",
            "control",
            "resource",
            "limit",
        ],
    )?;
    let statuses: Vec<&str> = ViolationStatus::ALL.iter().map(|s| s.as_str()).collect();
    let q = ViolationQuery {
        tenants: readable(&caller, &p)?,
        status: p
            .one_of("status", &statuses)?
            .and_then(|s| ViolationStatus::parse(&s)),
        active_only: p.flag("active")?.unwrap_or(false),
        severity: p.one_of("severity", &SEVERITIES)?,
        pack: p.text("pack"),
        control: p.text("control"),
        resource: p.text("resource"),
        limit: p.limit(100)?,
    };
    let rows = compliance::list(&state.pool, &q).await.map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

fn violation_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::bad_request(format!("{text:?} is not a violation id (a UUID)")))
}

pub(super) async fn one(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = violation_id(&path)?;
    let row = compliance::get(&state.pool, id)
        .await
        .map_err(db_error)?
        .filter(|r| may_see(&caller, r))
        .ok_or_else(|| ApiError::not_found(format!("no violation {id}")))?;
    let evidence = compliance::evidence(&state.pool, id, EVIDENCE_SHOWN)
        .await
        .map_err(db_error)?;
    let history = compliance::history(&state.pool, id)
        .await
        .map_err(db_error)?;
    let tenant =
        TenantId::parse(&row.tenant_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let remediations = compliance::remediations(
        &state.pool,
        &TenantScope::Only(vec![tenant.clone()]),
        None,
        Some(id),
        REMEDIATIONS_SHOWN,
    )
    .await
    .map_err(db_error)?;
    // How its control says to put it right, as the tenant's packs say now: none when the pack
    // no longer serves it, or the packs cannot be read now (the rest of the answer stands).
    let remediation = packs_of(&state, &tenant)
        .await
        .unwrap_or_default()
        .iter()
        .find(|p| p.name == row.pack)
        .and_then(|p| p.control(&row.control_id))
        .map(|c| c.remediation.clone());
    Ok(HttpResponse::Ok().json(json!({
        "result": {"violation": row, "evidence": evidence, "history": history,
                   "remediation": remediation, "remediations": remediations}
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatusBody {
    status: String,
    reason: Option<String>,
    until: Option<DateTime<Utc>>,
}

pub(super) async fn set_status(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = violation_id(&path)?;
    let body: StatusBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be {{\"status\": \"acknowledged\", \"reason\": \"…\", \"until\": \"RFC 3339 time (suppressed only)\"}}: {e}"
        ))
    })?;
    let to = ViolationStatus::parse(&body.status).ok_or_else(|| {
        ApiError::bad_request(format!(
            "status {:?} is not one of open, acknowledged, remediating, resolved, suppressed",
            body.status
        ))
    })?;
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    if reason.as_deref().is_some_and(|r| r.contains('\0')) {
        return Err(ApiError::bad_request("a reason cannot contain NUL"));
    }
    let change = StatusChange {
        to,
        reason,
        until: body.until,
    };
    let changed = compliance::change_status(&state.pool, id, &change, &caller.0.name, |row| {
        TenantId::parse(&row.tenant_id).is_ok_and(|t| caller.0.allows(Permission::Comply, &t))
    })
    .await;
    match changed {
        Ok(row) => Ok(HttpResponse::Ok().json(json!({ "result": row }))),
        Err(ChangeError::NotFound(id)) => Err(ApiError::not_found(format!(
            "no violation {id} that this token may change (it needs comply:<tenant>)"
        ))),
        Err(ChangeError::Refused(e)) => Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "status_change_refused",
            e.to_string(),
        )),
        Err(ChangeError::Db(e)) => Err(db_error(e)),
    }
}

/// Asks for a new remediation command for violation `id` (docs/compliance.md, "Remediation").
pub(super) async fn remediate(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = violation_id(&path)?;
    let may_request = |row: &ViolationRow| {
        TenantId::parse(&row.tenant_id).is_ok_and(|t| caller.0.allows(Permission::Comply, &t))
    };
    let not_found = || {
        ApiError::not_found(format!(
            "no violation {id} that this token may remediate (it needs comply:<tenant>)"
        ))
    };
    let row = compliance::get(&state.pool, id)
        .await
        .map_err(db_error)?
        .filter(may_request)
        .ok_or_else(not_found)?;
    let tenant =
        TenantId::parse(&row.tenant_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let packs = packs_of(&state, &tenant).await?;
    match compliance::request_remediation(&state.pool, id, &packs, &caller.0.name, may_request)
        .await
    {
        Ok(action) => Ok(HttpResponse::Created().json(json!({ "result": action }))),
        Err(RequestError::NotFound(_)) => Err(not_found()),
        Err(RequestError::Db(e)) => Err(db_error(e)),
        Err(e) => Err(ApiError::new(
            actix_web::http::StatusCode::CONFLICT,
            "remediation_refused",
            e.to_string(),
        )),
    }
}

pub(super) async fn resources(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(
        req.query_string(),
        &["tenant_id", "type", "state", "drifted", "limit"],
    )?;
    let q = ResourceQuery {
        tenants: readable(&caller, &p)?,
        resource_type: p.text("type"),
        state: p.one_of("state", &["present", "deleted"])?,
        drifted_only: p.flag("drifted")?.unwrap_or(false),
        limit: p.limit(100)?,
    };
    let rows = compliance::resources(&state.pool, &q)
        .await
        .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

pub(super) async fn remediations(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(
        req.query_string(),
        &["tenant_id", "status", "violation_id", "limit"],
    )?;
    let tenants = readable(&caller, &p)?;
    let status = p.one_of(
        "status",
        &["pending", "sent", "succeeded", "failed", "cancelled"],
    )?;
    let violation = p
        .text("violation_id")
        .map(|v| violation_id(&v))
        .transpose()?;
    let rows = compliance::remediations(
        &state.pool,
        &tenants,
        status.as_deref(),
        violation,
        p.limit(100)?,
    )
    .await
    .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

/// The pack manifests `tenant` serves now, activating its bundle if no event has yet (a
/// blocking read and compile: call it on a blocking thread). None for a refused bundle.
fn tenant_packs(state: &State, tenant: &TenantId) -> Vec<PackManifest> {
    let slot = state
        .store
        .slot(tenant)
        .or_else(|| state.store.activate(tenant).ok());
    slot.map(|slot| {
        slot.load_full()
            .policy()
            .packs()
            .iter()
            .map(|p| p.manifest().as_ref().clone())
            .collect()
    })
    .unwrap_or_default()
}

/// [`tenant_packs`] on a blocking thread.
async fn packs_of(
    state: &web::Data<State>,
    tenant: &TenantId,
) -> Result<Vec<PackManifest>, ApiError> {
    let (state, tenant) = (state.clone(), tenant.clone());
    web::block(move || tenant_packs(&state, &tenant))
        .await
        .map_err(|_| {
            ApiError::unavailable("policy_unavailable", "cannot read the tenant's packs now")
        })
}

fn readable_tenant(caller: &Authorized, tenant: Option<String>) -> Result<TenantId, ApiError> {
    let t = tenant.ok_or_else(|| ApiError::bad_request("tenant_id is required"))?;
    let t = TenantId::parse(&t).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if !may_read(caller, t.as_str()) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "forbidden",
            format!("token {:?} may not read tenant {t}", caller.0.name),
        ));
    }
    Ok(t)
}

pub(super) async fn frameworks(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id"])?;
    let tenant = readable_tenant(&caller, p.text("tenant_id"))?;
    let packs = packs_of(&state, &tenant).await?;
    let frameworks: Vec<_> = compliance::frameworks_of(&packs)
        .into_iter()
        .map(|(id, title)| json!({"id": id, "title": title}))
        .collect();
    let packs: Vec<_> = packs
        .iter()
        .map(|p| json!({"name": p.name, "version": p.version, "title": p.title, "controls": p.controls.len()}))
        .collect();
    Ok(HttpResponse::Ok()
        .json(json!({ "result": {"tenant_id": tenant, "frameworks": frameworks, "packs": packs} })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ScanBody {
    tenant_id: String,
    framework: String,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
}

/// How far back a scan's period reaches when the request does not say.
const DEFAULT_SCAN_PERIOD: chrono::Duration = chrono::Duration::days(30);

pub(super) async fn start_scan(
    state: web::Data<State>,
    caller: Authorized,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let body: ScanBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be {{\"tenant_id\": \"acme\", \"framework\": \"cis_aws_3.0\", \"from\": …, \"to\": …}}: {e}"
        ))
    })?;
    let tenant =
        TenantId::parse(&body.tenant_id).map_err(|e| ApiError::bad_request(e.to_string()))?;
    caller.require(Permission::Comply, &tenant)?;
    let to = body.to.unwrap_or_else(Utc::now);
    let from = body.from.unwrap_or(to - DEFAULT_SCAN_PERIOD);
    let packs = packs_of(&state, &tenant).await?;
    match compliance::run_scan(
        &state.pool,
        &tenant,
        &packs,
        &body.framework,
        (from, to),
        &caller.0.name,
    )
    .await
    {
        Ok(row) => Ok(HttpResponse::Created().json(json!({ "result": row }))),
        Err(compliance::ScanError::Db(e)) => Err(db_error(e)),
        Err(e) => Err(ApiError::bad_request(e.to_string())),
    }
}

pub(super) async fn list_scans(
    state: web::Data<State>,
    caller: Authorized,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let p = QueryParams::parse(req.query_string(), &["tenant_id", "framework", "limit"])?;
    let tenants = readable(&caller, &p)?;
    let rows = compliance::scans(
        &state.pool,
        &tenants,
        p.text("framework").as_deref(),
        p.limit(50)?,
    )
    .await
    .map_err(db_error)?;
    Ok(HttpResponse::Ok().json(json!({ "result": rows })))
}

pub(super) async fn one_scan(
    state: web::Data<State>,
    caller: Authorized,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&path).map_err(|_| {
        ApiError::bad_request(format!("{:?} is not a scan id (a UUID)", path.as_str()))
    })?;
    let p = QueryParams::parse(req.query_string(), &["format"])?;
    let format = match p.one_of("format", &["json", "csv", "ocsf", "html"])? {
        Some(f) => compliance::ReportFormat::parse(&f),
        None => None,
    };
    let row = compliance::scan(&state.pool, id)
        .await
        .map_err(db_error)?
        .filter(|r| may_read(&caller, &r.tenant_id))
        .ok_or_else(|| ApiError::not_found(format!("no scan {id}")))?;
    let Some(format) = format else {
        return Ok(HttpResponse::Ok().json(json!({ "result": row })));
    };
    let mut response = HttpResponse::Ok();
    response.content_type(format.content_type());
    if format != compliance::ReportFormat::Html {
        response.insert_header((
            "Content-Disposition",
            format!(
                "attachment; filename=\"{}-{}-{}.{}\"",
                row.tenant_id,
                row.framework,
                row.scanned_at.format("%Y%m%dT%H%M%SZ"),
                format.extension()
            ),
        ));
    }
    Ok(response.body(compliance::render(&row, format)))
}
