//! Token administration for admins: `GET /v1/tokens`, `POST /v1/tokens`,
//! `DELETE /v1/tokens/{id or name}`; and `GET /v1/whoami` for any caller.

use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::Utc;
use portcullis_engine::access::Grants;
use serde::Deserialize;
use serde_json::json;

use super::auth::Authorized;
use super::error::ApiError;
use super::State;
use crate::access::{
    create_token, expiry_from, list_tokens, revoke_token, NewToken, TokenRecord, TokenStoreError,
    DEFAULT_TOKEN_LIFETIME,
};

fn record_json(r: &TokenRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["state"] = json!(r.state(Utc::now()));
    v
}

fn store_error(e: TokenStoreError) -> ApiError {
    match e {
        TokenStoreError::NotFound(_) => ApiError::not_found(e.to_string()),
        TokenStoreError::Db(_) | TokenStoreError::Random(_) => {
            ApiError::unavailable("token_store_unavailable", e.to_string())
        }
        _ => ApiError::bad_request(e.to_string()),
    }
}

/// `GET /v1/whoami`: the caller's token name, scopes and expiry.
pub(super) async fn whoami(caller: Authorized) -> HttpResponse {
    let c = &caller.0;
    HttpResponse::Ok().json(json!({"result": {
        "token_id": c.token_id,
        "name": c.name,
        "scopes": c.grants.to_strings(),
        "admin": c.is_admin(),
        "expires_at": c.expires_at,
    }}))
}

pub(super) async fn list(state: web::Data<State>, caller: Authorized) -> HttpResponse {
    if let Err(e) = caller.require_admin("listing tokens") {
        return e.response();
    }
    match list_tokens(&state.pool).await {
        Ok(all) => HttpResponse::Ok().json(json!({
            "result": all.iter().map(record_json).collect::<Vec<_>>()
        })),
        Err(e) => store_error(e.into()).response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateRequest {
    name: String,
    scopes: Vec<String>,
    /// `"90d"`, `"12h"`, ... or `"never"`; 90 days when absent.
    expires_in: Option<String>,
}

pub(super) async fn create(
    state: web::Data<State>,
    caller: Authorized,
    body: web::Bytes,
) -> HttpResponse {
    if let Err(e) = caller.require_admin("making tokens") {
        return e.response();
    }
    let request: CreateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::bad_request(format!(
                "expected {{\"name\": ..., \"scopes\": [...], \"expires_in\": \"90d\"}}: {e}"
            ))
            .response()
        }
    };
    let grants = match Grants::parse(&request.scopes) {
        Ok(g) => g,
        Err(e) => return ApiError::bad_request(e.to_string()).response(),
    };
    let expires_at = match expiry_from(
        request
            .expires_in
            .as_deref()
            .unwrap_or(DEFAULT_TOKEN_LIFETIME),
        Utc::now(),
    ) {
        Ok(at) => at,
        Err(e) => return ApiError::bad_request(e.to_string()).response(),
    };
    let new = NewToken {
        name: request.name,
        grants,
        expires_at,
        created_by: format!("token:{}", caller.0.name),
    };
    match create_token(&state.pool, new).await {
        Ok((record, secret)) => {
            let mut body = record_json(&record);
            body["token"] = json!(secret.expose());
            HttpResponse::build(StatusCode::CREATED).json(json!({ "result": body }))
        }
        Err(e) => store_error(e).response(),
    }
}

/// `DELETE /v1/tokens/{id or name}`: revokes (the row stays, for the record).
pub(super) async fn revoke(
    state: web::Data<State>,
    caller: Authorized,
    which: web::Path<String>,
) -> HttpResponse {
    if let Err(e) = caller.require_admin("revoking tokens") {
        return e.response();
    }
    if which.contains('\0') {
        return ApiError::bad_request("the token id or name contains U+0000 (NUL)").response();
    }
    match revoke_token(&state.pool, &which).await {
        Ok(record) => HttpResponse::Ok().json(json!({ "result": record_json(&record) })),
        Err(e) => store_error(e).response(),
    }
}
