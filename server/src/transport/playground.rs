//! The analysts' playground (`playground/`): the app `server/build.rs` built
//! and embedded, served by mlgate itself — `index.html` at `/`, its assets
//! under `/playground/` — or, when it was not built (no npm at build time),
//! the dependency-free fallback page.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

mod built {
    include!(concat!(env!("OUT_DIR"), "/playground_files.rs"));
}

const FALLBACK: &str = include_str!("../../../playground/fallback.html");

/// The page and everything it loads come from this server; WebSockets too
/// (`'self'` covers `ws:` to the same host). Monaco sets inline styles and
/// its fonts are `data:` URLs.
const APP_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The fallback page is one file with its script inline.
const FALLBACK_POLICY: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; \
     script-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'";

/// Whether the full playground was built into this binary.
pub fn is_built() -> bool {
    file("index.html").is_some()
}

fn file(path: &str) -> Option<&'static [u8]> {
    built::FILES
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, bytes)| *bytes)
}

pub async fn page() -> Response {
    let (body, policy) = match file("index.html") {
        Some(index) => (String::from_utf8_lossy(index).into_owned(), APP_POLICY),
        None => (FALLBACK.to_owned(), FALLBACK_POLICY),
    };
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (header::CONTENT_SECURITY_POLICY, policy),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Html(body),
    )
        .into_response()
}

/// The app's assets. Their names carry a content hash, so they are cached for good.
pub async fn asset(Path(path): Path<String>) -> Response {
    let Some(bytes) = file(&path).filter(|_| path != "index.html") else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let content_type = match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ttf") => "font/ttf",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        _ => "application/octet-stream",
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        bytes,
    )
        .into_response()
}
