//! The forward-auth gateway: `/v1/gateway/{tenant}/{rule path}`, asked by a reverse proxy
//! (nginx `auth_request`, Traefik `ForwardAuth`) before it passes a request on. The proxy
//! authenticates with a `query` token for the tenant and describes the original request in
//! headers; the rule's answer becomes 200 (allow) or 403 (deny, undefined, or waiting for an
//! approval, whose id it carries), each decision logged with its receipt like any decision API
//! decision (docs/gateway.md).

use std::time::Instant;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use portcullis_engine::access::Permission;
use portcullis_engine::approval::Verdict;
use portcullis_engine::evidence::reasons_of;
use portcullis_engine::gateway::{ForwardedRequest, ProxyKind};
use portcullis_engine::policy::RulePath;
use portcullis_engine::TenantId;
use serde_json::json;

use super::approvals::approval_summary;
use super::auth::Authorized;
use super::decide::{counted, decide, Asker, Decided};
use super::error::ApiError;
use super::query::QueryParams;
use super::State;

/// The decision's id, on both answers: a proxy can log it (nginx:
/// `auth_request_set $decision $upstream_http_x_portcullis_decision_id`) and an analyst can
/// find the decision and its receipt by it.
const DECISION_HEADER: HeaderName = HeaderName::from_static("x-portcullis-decision-id");
/// The approval request a `require_approval` answer opened or found (on the 403), or the
/// approval that let the request through (on the 200).
const APPROVAL_HEADER: HeaderName = HeaderName::from_static("x-portcullis-approval-id");

pub(super) async fn authorize(
    state: web::Data<State>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    caller: Authorized,
) -> HttpResponse {
    let started = Instant::now();
    let (tenant, rule) = path.into_inner();
    let outcome = judge(&state, &caller, &tenant, &rule, &req).await;
    counted(&state, &tenant, started, outcome)
}

async fn judge(
    state: &State,
    caller: &Authorized,
    tenant: &str,
    rule: &str,
    req: &HttpRequest,
) -> Result<(HttpResponse, &'static str), ApiError> {
    let tenant = TenantId::parse(tenant).map_err(|e| ApiError::bad_request(e.to_string()))?;
    caller.require(Permission::Query, &tenant)?;
    let path = RulePath::from_url(rule).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let params = QueryParams::parse(req.query_string(), &["proxy"])?;
    let proxy = match params.one_of("proxy", &["nginx", "traefik"])? {
        Some(p) => ProxyKind::parse(&p).expect("checked by one_of"),
        None => ProxyKind::Nginx,
    };
    let forwarded = ForwardedRequest::from_headers(
        proxy,
        req.headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    )
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    // The decision log's size estimate: what the headers weigh.
    let size: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    let Decided {
        decision_id,
        answer,
        verdict,
        approval,
    } = decide(
        state,
        &tenant,
        path,
        Some(forwarded.to_input()),
        size,
        Asker::Gateway {
            resource: forwarded.resource(),
            host: forwarded.host.clone().unwrap_or_default(),
        },
    )
    .await?;
    let id = HeaderValue::from_str(&decision_id.to_string()).expect("a UUID is a header value");
    let approval_id = approval.as_ref().map(|o| {
        HeaderValue::from_str(&o.row().approval_id.to_string()).expect("a UUID is a header value")
    });
    let result = answer.result.unwrap_or_default();
    let (mut response, status) = match verdict {
        Verdict::Allow => (HttpResponse::Ok(), "allow"),
        Verdict::Deny | Verdict::RequireApproval => (HttpResponse::Forbidden(), verdict.as_str()),
    };
    response.insert_header((DECISION_HEADER, id));
    if let Some(approval_id) = approval_id {
        response.insert_header((APPROVAL_HEADER, approval_id));
    }
    if verdict == Verdict::Allow {
        return Ok((response.finish(), status));
    }
    let mut body = json!({
        "decision_id": decision_id,
        "outcome": verdict.as_str(),
        "reasons": reasons_of(&result),
    });
    if let Some(opened) = &approval {
        body["approval"] = approval_summary(opened);
    }
    Ok((response.json(body), status))
}
