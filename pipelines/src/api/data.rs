//! The decision API, shaped like OPA's Data API:
//! `POST /v1/data/tenants/{tenant}/{rule path}` with `{"input": …}` →
//! `{"decision_id": …, "result": …}` (no `result` when undefined), `metrics` with `?metrics=true`,
//! `provenance` with `?provenance=true`.

use std::collections::HashMap;
use std::time::Instant;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures::StreamExt;
use portcullis_engine::access::Permission;
use portcullis_engine::policy::{query_input, RulePath};
use portcullis_engine::TenantId;
use serde_json::{json, Map, Value as Json};

use super::approvals::approval_summary;
use super::auth::Authorized;
use super::decide::{counted, decide, Asker, Decided};
use super::error::ApiError;
use super::State;
use crate::approvals::Opened;

type Params = web::Query<HashMap<String, String>>;

/// Everything under `/v1/data`. Routed by hand rather than by path patterns: this is the hot
/// path, and actix matches a pattern with captures through a regex engine (7 % of the engine's
/// CPU per decision in a profile at 10,000 requests/s).
///
/// `/tenants/{tenant}` is the tenant's whole package document, `/tenants/{tenant}/{rule path}`
/// one rule or package below it; anything else is not served.
pub(super) async fn route(
    state: web::Data<State>,
    params: Params,
    req: HttpRequest,
    body: web::Payload,
    caller: Authorized,
) -> HttpResponse {
    let Some((tenant, rule)) = tenant_document(req.match_info().unprocessed()) else {
        return ApiError::not_found(
            "only tenant documents are served: POST /v1/data/tenants/{tenant}/{rule path}",
        )
        .response();
    };
    if req.method() != Method::POST {
        let mut response = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!(
                "{} is not served here: POST /v1/data/tenants/{{tenant}}/{{rule path}} with {{\"input\": ...}}",
                req.method()
            ),
        )
        .response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    answer(&state, &caller, tenant, rule, &params, &req, body).await
}

/// `/tenants/{tenant}[/{rule path}]` (the path below `/v1/data`) → tenant and rule path, both
/// still to be validated.
fn tenant_document(below_data: &str) -> Option<(&str, &str)> {
    let rest = below_data.strip_prefix("/tenants/")?;
    let (tenant, rule) = rest.split_once('/').unwrap_or((rest, ""));
    (!tenant.is_empty()).then_some((tenant, rule))
}

async fn answer(
    state: &State,
    caller: &Authorized,
    tenant: &str,
    rule: &str,
    params: &Params,
    req: &HttpRequest,
    body: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let outcome = evaluate(state, caller, tenant, rule, params, req, body).await;
    counted(state, tenant, started, outcome)
}

async fn evaluate(
    state: &State,
    caller: &Authorized,
    tenant: &str,
    rule: &str,
    params: &Params,
    req: &HttpRequest,
    body: web::Payload,
) -> Result<(HttpResponse, &'static str), ApiError> {
    let tenant = TenantId::parse(tenant).map_err(|e| ApiError::bad_request(e.to_string()))?;
    // Before anything else about the tenant: a caller without the scope learns nothing, not
    // even whether the tenant exists.
    caller.require(Permission::Query, &tenant)?;
    let path = RulePath::from_url(rule).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (input, body_bytes) = read_input(req, body, state.max_body_bytes).await?;
    let Decided {
        decision_id,
        answer,
        approval,
        ..
    } = decide(state, &tenant, path, input, body_bytes, Asker::Api).await?;
    let status = match (&approval, &answer.result) {
        (Some(Opened::Pending(_)), _) => "require_approval",
        (_, Some(_)) => "defined",
        (_, None) => "undefined",
    };
    let mut body = Map::new();
    body.insert("decision_id".into(), json!(decision_id));
    if let Some(result) = answer.result {
        body.insert("result".into(), result);
    }
    if let Some(opened) = &approval {
        body.insert("approval".into(), approval_summary(opened));
    }
    if flag(params, "metrics") {
        body.insert(
            "metrics".into(),
            json!({
                "eval_duration_micros": answer.eval_micros,
                "timer_rego_query_eval_ns": answer.eval_micros.saturating_mul(1000),
                "tenant_id": tenant,
            }),
        );
    }
    if flag(params, "provenance") {
        body.insert(
            "provenance".into(),
            json!({
                "version": env!("CARGO_PKG_VERSION"),
                "bundles": {tenant.as_str(): {"revision": answer.revision}},
            }),
        );
    }
    Ok((HttpResponse::Ok().json(Json::Object(body)), status))
}

/// `?metrics`, `?metrics=true` (OPA accepts both).
fn flag(params: &Params, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|v| v.is_empty() || v.eq_ignore_ascii_case("true"))
}

/// The request's `input` (absent when the body is empty or has no `input` key), and the body's
/// size.
async fn read_input(
    req: &HttpRequest,
    mut body: web::Payload,
    limit: usize,
) -> Result<(Option<Json>, usize), ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request_too_large",
            format!("request body exceeds {limit} bytes (http.max_body_bytes)"),
        )
    };
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut bytes = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("cannot read the body: {e}")))?;
        if bytes.len() + chunk.len() > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    let input = query_input(&bytes).map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((input, bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::tenant_document;

    #[test]
    fn tenant_documents_are_split_into_tenant_and_rule_path() {
        assert_eq!(tenant_document("/tenants/acme"), Some(("acme", "")));
        assert_eq!(tenant_document("/tenants/acme/"), Some(("acme", "")));
        assert_eq!(
            tenant_document("/tenants/acme/authz/allow"),
            Some(("acme", "authz/allow"))
        );
        for outside in [
            "",
            "/",
            "/tenants",
            "/tenants/",
            "/tenants//allow",
            "/system/main",
        ] {
            assert_eq!(tenant_document(outside), None, "{outside:?}");
        }
    }
}
