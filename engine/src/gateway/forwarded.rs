//! The original request, as the proxy describes it in headers.
//!
//! Each proxy has its own family of headers, and only that family is read: a client can add
//! any header to its own request, and nginx passes the client's headers on to the subrequest,
//! so a header the proxy does not set must not be believed.
//!
//! - **nginx** (`?proxy=nginx`, the default): `X-Original-Method`, `X-Original-URI`,
//!   `X-Forwarded-Host`, `X-Forwarded-Proto`, `X-Forwarded-For`, `X-Forwarded-User`,
//!   `X-Forwarded-Groups`, every one set (or cleared) by `portcullis gateway nginx`'s snippet.
//! - **Traefik** (`?proxy=traefik`): `X-Forwarded-Method`, `-Uri`, `-Host`, `-Proto`, `-For`,
//!   which Traefik itself sets, and `X-Forwarded-User`, `X-Forwarded-Groups` from the
//!   authenticating middleware before it.
//!
//! The user's identity is trusted because only a proxy holding a `query` token for the tenant
//! can ask at all.

use serde_json::{json, Map, Value as Json};
use thiserror::Error;

use super::path::normalize_path;

/// Headers copied into `input.headers` at most; a request with more is refused, not cut.
pub const MAX_FORWARDED_HEADERS: usize = 64;

/// Which proxy asks, so which headers describe the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyKind {
    Nginx,
    Traefik,
}

impl ProxyKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "nginx" => Some(Self::Nginx),
            "traefik" => Some(Self::Traefik),
            _ => None,
        }
    }

    fn method(self) -> &'static str {
        match self {
            Self::Nginx => "x-original-method",
            Self::Traefik => "x-forwarded-method",
        }
    }

    fn uri(self) -> &'static str {
        match self {
            Self::Nginx => "x-original-uri",
            Self::Traefik => "x-forwarded-uri",
        }
    }
}

/// `x-original-uri` as people write it: `X-Original-Uri`.
fn display_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Headers that carry secrets (the proxy's own token, the user's credentials, cookies and
/// session or access tokens an authenticating proxy adds): never given to policy, so never
/// written to the decision log.
fn withheld(name: &str) -> bool {
    matches!(name, "authorization" | "proxy-authorization" | "cookie")
        || [
            "token",
            "secret",
            "password",
            "api-key",
            "apikey",
            "session",
            "credential",
        ]
        .iter()
        .any(|w| name.contains(w))
}

#[derive(Debug, Error, PartialEq)]
pub enum GatewayError {
    #[error("no original method: the proxy must set {0} (portcullis gateway nginx|traefik prints the configuration)")]
    NoMethod(String),
    #[error("no original URI: the proxy must set {0} (portcullis gateway nginx|traefik prints the configuration)")]
    NoUri(String),
    #[error("the original method {0:?} is not an HTTP method")]
    BadMethod(String),
    #[error("the original URI {0:?} is not an absolute path")]
    BadUri(String),
    #[error("header {0:?} holds control characters or is not UTF-8")]
    NotText(String),
    #[error("more than {MAX_FORWARDED_HEADERS} headers were forwarded")]
    TooManyHeaders,
    #[error("the path {0:?} holds a backslash or a NUL, which servers read differently: refused")]
    AmbiguousPath(String),
}

/// One request, as forwarded for a decision.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardedRequest {
    pub method: String,
    /// The path as policy should match it: unreserved characters percent-decoded, `.` and `..`
    /// segments resolved, repeated slashes merged (what the application will see).
    pub path: String,
    /// The path exactly as sent, without the query.
    pub raw_path: String,
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
    /// Reads the request `proxy` describes in its headers (names in any case).
    pub fn from_headers<'a>(
        proxy: ProxyKind,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, GatewayError> {
        let mut all: Map<String, Json> = Map::new();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            if withheld(&name) {
                continue;
            }
            let value = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.chars().any(|c| c.is_control() && c != '\t'))
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
        let get = |name: &str| {
            all.get(name)
                .and_then(Json::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let method = get(proxy.method())
            .ok_or_else(|| GatewayError::NoMethod(display_name(proxy.method())))?;
        if !method.bytes().all(|b| b.is_ascii_alphabetic()) || method.len() > 32 {
            return Err(GatewayError::BadMethod(method));
        }
        let uri = get(proxy.uri()).ok_or_else(|| GatewayError::NoUri(display_name(proxy.uri())))?;
        if !uri.starts_with('/') {
            return Err(GatewayError::BadUri(uri));
        }
        let (raw_path, query) = uri.split_once('?').unwrap_or((&uri, ""));
        let client_ip = get("x-forwarded-for").map(|v| {
            // X-Forwarded-For lists the client first, then each proxy.
            v.split(',').next().unwrap_or("").trim().to_owned()
        });
        let groups = get("x-forwarded-groups")
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            method: method.to_ascii_uppercase(),
            path: normalize_path(raw_path)?,
            raw_path: raw_path.to_owned(),
            query: query.to_owned(),
            host: get("x-forwarded-host"),
            scheme: get("x-forwarded-proto"),
            client_ip,
            principal: get("x-forwarded-user"),
            groups,
            headers: all,
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
                "raw_path": self.raw_path,
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

    fn read(proxy: ProxyKind, pairs: &[(&str, &str)]) -> Result<ForwardedRequest, GatewayError> {
        ForwardedRequest::from_headers(proxy, pairs.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn nginx_headers_become_the_policy_input() {
        let r = read(
            ProxyKind::Nginx,
            &[
                ("Host", "127.0.0.1:8181"),
                ("X-Original-Method", "post"),
                ("X-Original-URI", "/reports/%71%33?format=pdf&x=1"),
                ("X-Forwarded-Host", "app.example.com"),
                ("X-Forwarded-Proto", "https"),
                ("X-Forwarded-For", "203.0.113.9, 10.0.0.2"),
                ("X-Forwarded-User", "Jörg"),
                ("X-Forwarded-Groups", "finance, ops,,"),
                ("Authorization", "Bearer pct_secret"),
                ("X-Portcullis-Token", "pct_secret"),
                ("X-Auth-Request-Access-Token", "eyJ"),
                ("Cookie", "session=ünïcode"),
                ("Accept", "text/html"),
                ("Accept", "application/json"),
            ],
        )
        .unwrap();
        let input = r.to_input();
        assert_eq!(input["principal"], "Jörg");
        assert_eq!(input["action"], "POST");
        assert_eq!(input["groups"], json!(["finance", "ops"]));
        let req = &input["request"];
        assert_eq!(req["method"], "POST");
        assert_eq!(req["path"], "/reports/q3", "unreserved escapes decoded");
        assert_eq!(req["raw_path"], "/reports/%71%33");
        assert_eq!(req["query"], "format=pdf&x=1");
        assert_eq!(req["host"], "app.example.com");
        assert_eq!(req["scheme"], "https");
        assert_eq!(req["client_ip"], "203.0.113.9");
        assert_eq!(req["headers"]["accept"], "text/html, application/json");
        for secret in [
            "authorization",
            "cookie",
            "x-portcullis-token",
            "x-auth-request-access-token",
        ] {
            assert!(req["headers"].get(secret).is_none(), "{secret} withheld");
        }
        assert_eq!(r.resource(), "POST app.example.com/reports/q3");
    }

    #[test]
    fn only_the_proxys_own_headers_describe_the_request() {
        // Behind Traefik a client may add nginx's names: they are not believed.
        let r = read(
            ProxyKind::Traefik,
            &[
                ("X-Forwarded-Method", "GET"),
                ("X-Forwarded-Uri", "/"),
                ("X-Original-Method", "DELETE"),
                ("X-Original-URI", "/admin"),
                ("Remote-User", "root"),
                ("X-Auth-Request-User", "root"),
            ],
        )
        .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/"));
        assert_eq!(r.principal, None, "only X-Forwarded-User names the user");
        assert!(r.groups.is_empty());
        assert_eq!(r.to_input()["principal"], Json::Null);
        // And behind nginx, Traefik's names are not believed.
        let e = read(
            ProxyKind::Nginx,
            &[("X-Forwarded-Method", "GET"), ("X-Forwarded-Uri", "/")],
        );
        assert_eq!(e, Err(GatewayError::NoMethod("X-Original-Method".into())));
    }

    #[test]
    fn what_cannot_be_a_request_is_refused_by_name() {
        let nginx = |pairs: &[(&str, &str)]| read(ProxyKind::Nginx, pairs);
        assert!(matches!(
            nginx(&[("X-Original-URI", "/")]),
            Err(GatewayError::NoMethod(_))
        ));
        assert!(matches!(
            nginx(&[("X-Original-Method", "GET")]),
            Err(GatewayError::NoUri(_))
        ));
        assert_eq!(
            nginx(&[("X-Original-Method", "GE T"), ("X-Original-URI", "/")]),
            Err(GatewayError::BadMethod("GE T".into()))
        );
        assert_eq!(
            nginx(&[
                ("X-Original-Method", "GET"),
                ("X-Original-URI", "http://x/")
            ]),
            Err(GatewayError::BadUri("http://x/".into()))
        );
        let bytes = ForwardedRequest::from_headers(
            ProxyKind::Nginx,
            [
                ("x-original-method", &b"GET"[..]),
                ("x-original-uri", &b"/\xff"[..]),
            ],
        );
        assert_eq!(bytes, Err(GatewayError::NotText("x-original-uri".into())));
        let many: Vec<(String, String)> = (0..=MAX_FORWARDED_HEADERS)
            .map(|i| (format!("x-h{i}"), "v".to_owned()))
            .collect();
        assert_eq!(
            ForwardedRequest::from_headers(
                ProxyKind::Nginx,
                many.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))
            ),
            Err(GatewayError::TooManyHeaders)
        );
    }
}
