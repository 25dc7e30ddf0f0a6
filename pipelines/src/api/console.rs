//! The web console's assets, embedded in the binary and served under `/console/`.
//!
//! The page itself holds no data: it signs in with a token and reads everything through the
//! read API, so it is served without one (a browser cannot send a bearer token when it
//! navigates). A strict content security policy keeps it to its own scripts and origin.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "console/"]
struct Assets;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// `GET /console/{file}`; the page for `/console/` and any path without an asset behind it.
pub(super) async fn asset(path: web::Path<String>) -> HttpResponse {
    let name = path.as_str();
    let (name, file) = match Assets::get(name) {
        Some(file) => (name, file),
        None => match Assets::get("index.html") {
            Some(file) => ("index.html", file),
            None => return HttpResponse::NotFound().finish(),
        },
    };
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type(name)))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        // Small files, and a new binary may bring new ones: revalidate every time.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((
            header::ETAG,
            format!("\"{}\"", hex::encode(file.metadata.sha256_hash())),
        ))
        .body(file.data.into_owned())
}

/// `GET /`: to the console.
pub(super) async fn root() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_embedded_with_a_known_type() {
        for name in ["index.html", "app.js", "style.css"] {
            assert!(Assets::get(name).is_some(), "{name} not embedded");
            assert_ne!(content_type(name), "application/octet-stream", "{name}");
        }
    }
}
