//! Every request below `/v1` passes here first: its token is checked and the caller it names is
//! handed to the endpoint, which checks the caller's scopes for what it asks (`Authorized`).

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest, HttpResponse};
use portcullis_engine::access::Permission;
use portcullis_engine::TenantId;

use super::error::ApiError;
use super::State;
use crate::access::{AuthError, Caller, Credentials};

/// The WebSocket subprotocol a browser offers (with `portcullis.token.<token>`) to sign in a
/// stream, since browsers cannot set headers on a WebSocket; the server accepts it by name.
pub(super) const WS_PROTOCOL: &str = "portcullis";
const WS_TOKEN_PREFIX: &str = "portcullis.token.";
/// The forward-auth gateway's endpoints, and the header a proxy may carry its token in there.
const GATEWAY_PREFIX: &str = "/v1/gateway/";
const GATEWAY_TOKEN_HEADER: &str = "x-portcullis-token";

/// The middleware: authenticates, or answers 401 without calling the endpoint.
pub(super) async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<State>>()
        .expect("State is registered")
        .clone();
    let checked = state.auth.authenticate(credentials(req.request())).await;
    match checked {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(e) => {
            let response = unauthorized(&e);
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// Where a request's token is: the `Authorization` header, or for a WebSocket upgrade the
/// `Sec-WebSocket-Protocol` header. A token in the query string is noticed only to be refused.
fn credentials(req: &HttpRequest) -> Credentials<'_> {
    // A proxy that cannot replace the client's own `Authorization` (Traefik's ForwardAuth
    // passes it through) names itself in this header instead; only on the gateway, where the
    // client's `Authorization` belongs to the application behind the proxy.
    if req.path().starts_with(GATEWAY_PREFIX) {
        if let Some(value) = req.headers().get(GATEWAY_TOKEN_HEADER) {
            return match value.to_str() {
                Ok(token) => Credentials::Bearer(token.trim()),
                Err(_) => Credentials::OtherScheme,
            };
        }
    }
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let Ok(value) = value.to_str() else {
            return Credentials::OtherScheme;
        };
        return match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Credentials::Bearer(token.trim())
            }
            _ => Credentials::OtherScheme,
        };
    }
    let offered = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| p.strip_prefix(WS_TOKEN_PREFIX));
    if let Some(token) = offered {
        return Credentials::Bearer(token);
    }
    let in_query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| {
            q.iter().any(|(k, _)| {
                matches!(
                    k.to_ascii_lowercase().as_str(),
                    "access_token" | "token" | "api_key" | "apikey" | "bearer"
                )
            })
        })
        .unwrap_or(false);
    if in_query {
        Credentials::InQuery
    } else {
        Credentials::None
    }
}

fn unauthorized(e: &AuthError) -> HttpResponse {
    if let AuthError::Unavailable = e {
        return ApiError::unavailable("authentication_unavailable", e.to_string()).response();
    }
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()).response();
    let challenge = match e {
        AuthError::Missing | AuthError::OtherScheme => "Bearer realm=\"portcullis\"",
        _ => "Bearer realm=\"portcullis\", error=\"invalid_token\"",
    };
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// The checked caller of a request, for endpoints to check scopes with.
pub(super) struct Authorized(pub Arc<Caller>);

impl FromRequest for Authorized {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Only a route outside the authenticated scope could miss it: refuse, never serve.
        let caller = req.extensions().get::<Arc<Caller>>().cloned();
        ready(caller.map(Authorized).ok_or_else(|| {
            actix_web::error::InternalError::from_response(
                "unauthenticated route",
                unauthorized(&AuthError::Missing),
            )
            .into()
        }))
    }
}

impl Authorized {
    /// 403 unless the caller may do `permission` for `tenant`.
    pub fn require(&self, permission: Permission, tenant: &TenantId) -> Result<(), ApiError> {
        if self.0.allows(permission, tenant) {
            return Ok(());
        }
        Err(forbidden(format!(
            "token {:?} may not {} tenant {tenant}; it holds: {}",
            self.0.name,
            permission.as_str(),
            self.0.grants.to_strings().join(", ")
        )))
    }

    /// 403 unless the caller holds the all-tenants `admin` scope.
    pub fn require_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.0.is_admin() {
            return Ok(());
        }
        Err(forbidden(format!(
            "{what} needs the admin scope; token {:?} holds: {}",
            self.0.name,
            self.0.grants.to_strings().join(", ")
        )))
    }
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn tokens_are_taken_from_the_header_or_the_websocket_protocol_only() {
        let r = TestRequest::default()
            .insert_header(("Authorization", "Bearer pcl_abc"))
            .to_http_request();
        assert_eq!(credentials(&r), Credentials::Bearer("pcl_abc"));
        let r = TestRequest::default()
            .insert_header(("Authorization", "bearer   pcl_abc "))
            .to_http_request();
        assert_eq!(credentials(&r), Credentials::Bearer("pcl_abc"));
        for other in ["Basic dXNlcjpwdw==", "Token pcl_abc", "pcl_abc", "Bearer"] {
            let r = TestRequest::default()
                .insert_header(("Authorization", other))
                .to_http_request();
            assert_eq!(credentials(&r), Credentials::OtherScheme, "{other}");
        }
        let r = TestRequest::default()
            .insert_header((
                "Sec-WebSocket-Protocol",
                "portcullis, portcullis.token.pcl_x",
            ))
            .to_http_request();
        assert_eq!(credentials(&r), Credentials::Bearer("pcl_x"));
        let r = TestRequest::with_uri("/v1/bundles?access_token=pcl_x").to_http_request();
        assert_eq!(credentials(&r), Credentials::InQuery);
        let r = TestRequest::with_uri("/v1/bundles?tenant_id=acme").to_http_request();
        assert_eq!(credentials(&r), Credentials::None);
    }
}
