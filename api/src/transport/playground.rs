//! The analysts' playground page (our own code, under `playground/`).

use axum::http::header;
use axum::response::{Html, IntoResponse};

const PAGE: &str = include_str!("../../../playground/index.html");

pub async fn page() -> impl IntoResponse {
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            // The page only talks to this server.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        Html(PAGE),
    )
}
