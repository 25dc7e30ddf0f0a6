//! The engine's HTTP server: the OPA-shaped decision API, bundle status, the decision stream,
//! health and metrics.

mod anomalies;
mod approvals;
mod auth;
mod bundles;
mod compliance;
pub mod config;
mod console;
mod data;
mod decide;
mod enrollment;
mod error;
mod evidence;
mod gateway;
mod health;
mod protection;
mod query;
mod records;
mod segments;
mod server;
mod signals;
mod stream;
mod tokens;
mod training;

use server::State;
pub use server::{start, Services};

/// Anything not served: 404 in the API's error shape (below `/v1`, only once authenticated).
async fn not_found(req: actix_web::HttpRequest) -> actix_web::HttpResponse {
    error::ApiError::not_found(format!(
        "nothing is served at {} {}",
        req.method(),
        req.path()
    ))
    .response()
}
