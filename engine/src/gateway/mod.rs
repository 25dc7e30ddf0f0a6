//! The forward-auth gateway's pure half: a request a reverse proxy (nginx `auth_request`,
//! Traefik `ForwardAuth`) asks about, read from the headers the proxy forwards, and the
//! policy input it becomes (docs/gateway.md).

mod forwarded;
mod path;

pub use forwarded::{ForwardedRequest, GatewayError, ProxyKind, MAX_FORWARDED_HEADERS};
pub use path::normalize_path;
