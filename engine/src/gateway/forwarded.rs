//! The original request, as the proxy describes it in headers.
//!
//! nginx forwards nothing by itself: its configuration sets `X-Original-Method` and
//! `X-Original-URI` (the names its documentation uses). Traefik sets `X-Forwarded-Method` and
//! `X-Forwarded-Uri`. Both are read, the first found wins. The end user's identity is whatever
//! the proxy (or an authenticating proxy before it, such as oauth2-proxy) put in
//! `X-Forwarded-User` / `X-Auth-Request-User` / `Remote-User`: the gateway trusts it because
//! only a proxy holding a `query` token for the tenant can ask at all.

use serde_json::{json, Map, Value as Json};
use thiserror::Error;

/// Headers copied into `input.headers` at most; a request with more is refused, not cut.
pub const MAX_FORWARDED_HEADERS: usize = 64;

/// Headers that carry secrets (the proxy's own token, the user's credentials and cookies):
/// never given to policy, so never written to the decision log.
const WITHHELD: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-portcullis-token",
];

const METHOD: [&str; 2] = ["x-original-method", "x-forwarded-method"];
const URI: [&str; 2] = ["x-original-uri", "x-forwarded-uri"];
// Not `Host`: in the subrequest it names Portcullis, not the application.
const HOST: [&str; 2] = ["x-original-host", "x-forwarded-host"];
const PROTO: [&str; 1] = ["x-forwarded-proto"];
const USER: [&str; 3] = ["x-forwarded-user", "x-auth-request-user", "remote-user"];
const GROUPS: [&str; 3] = [
    "x-forwarded-groups",
    "x-auth-request-groups",
    "remote-groups",
];
const CLIENT: [&str; 2] = ["x-real-ip", "x-forwarded-for"];

#[derive(Debug, Error, PartialEq)]
pub enum GatewayError {
    #[error("no original method: the proxy must set X-Original-Method (nginx: proxy_set_header X-Original-Method $request_method) or X-Forwarded-Method (Traefik)")]
    NoMethod,
    #[error("no original URI: the proxy must set X-Original-URI (nginx: proxy_set_header X-Original-URI $request_uri) or X-Forwarded-Uri (Traefik)")]
    NoUri,
    #[error("the original method {0:?} is not an HTTP method")]
    BadMethod(String),
    #[error("the original URI {0:?} is not an absolute path")]
    BadUri(String),
    #[error("header {0:?} is not visible ASCII text")]
    NotText(String),
    #[error("more than {MAX_FORWARDED_HEADERS} headers were forwarded")]
    TooManyHeaders,
}

/// One request, as forwarded for a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardedRequest {
    pub method: String,
    /// The path, percent-encoded as sent, without the query.
    pub path: String,
    /// The query string without `?`; empty when there is none.
    pub query: String,
    pub host: Option<String>,
    pub scheme: Option<String>,
    pub client_ip: Option<String>,
    pub principal: Option<String>,
    pub groups: Vec<String>,
    /// Every forwarded header but the withheld ones, names lower-cased; repeated headers joined
    /// with `, ` as HTTP allows.
    pub headers: Map<String, Json>,
}

impl ForwardedRequest {
    /// Reads the request from the proxy's headers (names in any case).
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, GatewayError> {
        let mut all: Map<String, Json> = Map::new();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            let value = std::str::from_utf8(value)
                .ok()
                .filter(|v| v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b)))
                .ok_or_else(|| GatewayError::NotText(name.clone()))?;
            match all.get_mut(&name) {
                Some(Json::String(joined)) => {
                    joined.push_str(", ");
                    joined.push_str(value);
                }
                _ => {
                    if all.len() == MAX_FORWARDED_HEADERS {
                        return Err(GatewayError::TooManyHeaders);
                    }
                    all.insert(name, Json::String(value.to_owned()));
                }
            }
        }
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| all.get(*n).and_then(Json::as_str))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let method = first(&METHOD).ok_or(GatewayError::NoMethod)?;
        if !method.bytes().all(|b| b.is_ascii_alphabetic()) || method.len() > 32 {
            return Err(GatewayError::BadMethod(method));
        }
        let uri = first(&URI).ok_or(GatewayError::NoUri)?;
        if !uri.starts_with('/') {
            return Err(GatewayError::BadUri(uri));
        }
        let (path, query) = uri.split_once('?').unwrap_or((&uri, ""));
        let client_ip = first(&CLIENT).map(|v| {
            // X-Forwarded-For lists the client first, then each proxy.
            v.split(',').next().unwrap_or("").trim().to_owned()
        });
        let groups = first(&GROUPS)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let request = Self {
            method: method.to_ascii_uppercase(),
            path: path.to_owned(),
            query: query.to_owned(),
            host: first(&HOST),
            scheme: first(&PROTO),
            client_ip,
            principal: first(&USER),
            groups,
            headers: Map::new(),
        };
        all.retain(|name, _| !WITHHELD.contains(&name.as_str()));
        Ok(Self {
            headers: all,
            ..request
        })
    }

    /// The request as an approver reads it: `GET wiki.acme.example/reports/q3` (the query left
    /// out: one approval covers a page whatever its parameters).
    pub fn resource(&self) -> String {
        format!(
            "{} {}{}",
            self.method,
            self.host.as_deref().unwrap_or(""),
            self.path
        )
    }

    /// The policy input (docs/gateway.md): `principal` and `action` as every receipt reads
    /// them, the request's parts, and its headers.
    pub fn to_input(&self) -> Json {
        json!({
            "principal": self.principal,
            "groups": self.groups,
            "action": self.method,
            "request": {
                "method": self.method,
                "path": self.path,
                "query": self.query,
                "host": self.host,
                "scheme": self.scheme,
                "client_ip": self.client_ip,
                "headers": self.headers,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<ForwardedRequest, GatewayError> {
        ForwardedRequest::from_headers(pairs.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn nginx_headers_become_the_policy_input() {
        let r = read(&[
            ("Host", "127.0.0.1:8181"),
            ("X-Original-Method", "post"),
            ("X-Original-URI", "/reports/q3?format=pdf&x=1"),
            ("X-Forwarded-Host", "app.example.com"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-For", "203.0.113.9, 10.0.0.2"),
            ("X-Forwarded-User", "alice"),
            ("X-Forwarded-Groups", "finance, ops,,"),
            ("Authorization", "Bearer pct_secret"),
            ("X-Portcullis-Token", "pct_secret"),
            ("Cookie", "session=1"),
            ("Accept", "text/html"),
            ("Accept", "application/json"),
        ])
        .unwrap();
        let input = r.to_input();
        assert_eq!(input["principal"], "alice");
        assert_eq!(input["action"], "POST");
        assert_eq!(input["groups"], json!(["finance", "ops"]));
        let req = &input["request"];
        assert_eq!(req["method"], "POST");
        assert_eq!(req["path"], "/reports/q3");
        assert_eq!(req["query"], "format=pdf&x=1");
        assert_eq!(req["host"], "app.example.com", "the forwarded host wins");
        assert_eq!(req["scheme"], "https");
        assert_eq!(req["client_ip"], "203.0.113.9");
        assert_eq!(req["headers"]["accept"], "text/html, application/json");
        assert_eq!(r.resource(), "POST app.example.com/reports/q3");
        for secret in ["authorization", "cookie", "x-portcullis-token"] {
            assert!(req["headers"].get(secret).is_none(), "{secret} withheld");
        }
    }

    #[test]
    fn traefik_headers_are_read_too_and_identity_is_optional() {
        let r = read(&[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Uri", "/"),
            ("X-Forwarded-Host", "svc.local"),
        ])
        .unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!((r.path.as_str(), r.query.as_str()), ("/", ""));
        assert_eq!(r.principal, None);
        assert!(r.groups.is_empty());
        assert_eq!(r.to_input()["principal"], Json::Null);
    }

    #[test]
    fn what_cannot_be_a_request_is_refused_by_name() {
        assert_eq!(
            read(&[("X-Original-URI", "/")]),
            Err(GatewayError::NoMethod)
        );
        assert_eq!(
            read(&[("X-Original-Method", "GET")]),
            Err(GatewayError::NoUri)
        );
        assert_eq!(
            read(&[("X-Original-Method", "GE T"), ("X-Original-URI", "/")]),
            Err(GatewayError::BadMethod("GE T".into()))
        );
        assert_eq!(
            read(&[
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "http://x/")
            ]),
            Err(GatewayError::BadUri("http://x/".into()))
        );
        let bytes = ForwardedRequest::from_headers([
            ("x-original-method", &b"GET"[..]),
            ("x-original-uri", &b"/\xff"[..]),
        ]);
        assert_eq!(bytes, Err(GatewayError::NotText("x-original-uri".into())));
        let many: Vec<(String, String)> = (0..=MAX_FORWARDED_HEADERS)
            .map(|i| (format!("x-h{i}"), "v".to_owned()))
            .collect();
        assert_eq!(
            ForwardedRequest::from_headers(many.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))),
            Err(GatewayError::TooManyHeaders)
        );
    }
}
