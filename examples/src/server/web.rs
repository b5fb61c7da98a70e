//! The web page at `/`: login, the session sidebar, streaming chat, memories, settings and
//! admin, built on the native API alone.
//!
//! The page is hand-written HTML, CSS and JavaScript with no build step, plus three vendored
//! libraries (marked, DOMPurify, highlight.js core) in `examples/web/vendor`. Every file is
//! embedded in the binary with `rust-embed` (debug builds too, through its `debug-embed`
//! feature, so the tests serve exactly what ships), and the server works offline as one
//! file. Responses are compressed (gzip or brotli, as the browser asks) by
//! tower-http's compression layer: the assets are a few hundred kilobytes, so compressing per
//! request costs milliseconds and needs no build-time step. Each asset carries a strong
//! `ETag` (its SHA-256), so a reload revalidates instead of downloading again.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::compression::CompressionLayer;

use super::{ApiError, AppState};

/// The files of the page, embedded at compile time, with the vendored libraries' licenses.
#[derive(rust_embed::Embed)]
#[folder = "web/"]
struct Assets;

/// What the page may load and run: only its own files, so even markup that slipped past
/// the sanitizer could not run an inline handler or reach another origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/assets/{*path}", get(asset)).layer(CompressionLayer::new())
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path.ends_with(".html") {
        return ApiError::not_found(format!("no asset `{path}`")).into_response();
    }
    serve(&path, &headers)
}

/// The embedded file at `path` with its type, validator and security headers; 304 when the
/// browser already has it.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return ApiError::not_found(format!("no asset `{path}`")).into_response();
    };
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let cached = headers.get(header::IF_NONE_MATCH).is_some_and(|v| v.as_bytes() == etag.as_bytes());
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        file.data.into_owned().into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
