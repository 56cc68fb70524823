//! What browsers need beyond the GraphQL rules: cross-origin access (CORS)
//! for dashboards served from another origin, and compressed answers.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which other origins may call `/graphql` from a browser. No origin is
/// allowed by default: then no CORS header is ever sent and a preflight
/// gets the same 405 as any other `OPTIONS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsSettings {
    /// Exact origins (`https://dash.example.com`), or `*` alone for any.
    pub origins: Vec<String>,
    /// Methods a cross-origin request may use.
    pub methods: Vec<String>,
    /// Request headers a cross-origin request may send.
    pub headers: Vec<String>,
    /// Whether cross-origin requests may carry cookies or HTTP auth (never with `*`).
    pub allow_credentials: bool,
    /// How long a browser may keep a preflight's answer.
    pub max_age: Duration,
}

impl Default for CorsSettings {
    fn default() -> Self {
        Self {
            origins: Vec::new(),
            methods: vec!["GET".into(), "POST".into()],
            headers: vec![
                "authorization".into(),
                "content-type".into(),
                "x-request-id".into(),
            ],
            allow_credentials: false,
            max_age: Duration::from_secs(600),
        }
    }
}

/// Response headers a cross-origin script may read besides the
/// CORS-safelisted ones: what tells it to retry, and what to quote.
const EXPOSED: [HeaderName; 3] = [
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
    HeaderName::from_static("x-request-id"),
];

impl CorsSettings {
    /// The layer answering preflights and marking allowed answers, or `None`
    /// when no origin is allowed. Refuses what browsers would reject anyway
    /// or what would open the API wider than meant: `*` together with
    /// credentials or with other origins, origins with a path, unknown
    /// methods or header names.
    pub fn layer(&self) -> Result<Option<CorsLayer>, String> {
        if self.origins.is_empty() {
            return Ok(None);
        }
        let any = self.origins.iter().any(|o| o == "*");
        if any && self.origins.len() > 1 {
            return Err("CORS origins: `*` allows every origin; give it alone".into());
        }
        if any && self.allow_credentials {
            return Err(
                "CORS: `*` cannot be combined with credentials; list the allowed origins".into(),
            );
        }
        let origin = if any {
            AllowOrigin::any()
        } else {
            let origins = self
                .origins
                .iter()
                .map(|o| parse_origin(o))
                .collect::<Result<Vec<_>, _>>()?;
            AllowOrigin::list(origins)
        };
        if self
            .methods
            .iter()
            .chain(&self.headers)
            .any(|v| v.trim() == "*")
        {
            return Err("CORS methods and headers: list them; `*` is not accepted there".into());
        }
        let methods = self
            .methods
            .iter()
            .map(|m| {
                Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("CORS methods: `{m}` is not an HTTP method"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let headers = self
            .headers
            .iter()
            .map(|h| {
                HeaderName::from_bytes(h.trim().to_ascii_lowercase().as_bytes())
                    .map_err(|_| format!("CORS headers: `{h}` is not a header name"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods(methods)
                .allow_headers(headers)
                .allow_credentials(self.allow_credentials)
                .expose_headers(EXPOSED)
                .max_age(self.max_age),
        ))
    }
}

/// An origin as browsers send it: `scheme://host[:port]`, nothing after.
fn parse_origin(origin: &str) -> Result<HeaderValue, String> {
    let refused = || {
        format!("CORS origins: `{origin}` is not an origin like https://dash.example.com (scheme, host, optional port, no path)")
    };
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(refused)?;
    if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
        return Err(refused());
    }
    HeaderValue::from_str(origin).map_err(|_| refused())
}

/// gzip, Brotli or zstd, as the client accepts, for answers above a few
/// dozen bytes (the default predicate: not images, not event streams).
/// Never for `101 Switching Protocols`: a WebSocket handshake on `/graphql`
/// has no body to compress, and a `Content-Encoding` on it would confuse
/// clients.
pub fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new().compress_when(
        DefaultPredicate::new().and(|status: StatusCode, _: _, _: &_, _: &_| {
            status != StatusCode::SWITCHING_PROTOCOLS
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origins(origins: &[&str], credentials: bool) -> CorsSettings {
        CorsSettings {
            origins: origins.iter().map(|o| o.to_string()).collect(),
            allow_credentials: credentials,
            ..CorsSettings::default()
        }
    }

    /// Our own predicate, alone: tower-http's size check skips today's
    /// bodiless handshakes anyway, so the end-to-end test cannot tell.
    #[tokio::test]
    async fn a_switching_protocols_answer_is_never_compressed() {
        use tower::{Layer, ServiceExt};
        let answer = |status: StatusCode| {
            let service =
                tower::service_fn(move |_: axum::http::Request<axum::body::Body>| async move {
                    Ok::<_, std::convert::Infallible>(
                        axum::http::Response::builder()
                            .status(status)
                            .header(header::CONTENT_TYPE, "text/plain")
                            .header(header::CONTENT_LENGTH, "4096")
                            .body(axum::body::Body::from(vec![b'x'; 4096]))
                            .unwrap(),
                    )
                });
            let request = axum::http::Request::builder()
                .header(header::ACCEPT_ENCODING, "gzip")
                .body(axum::body::Body::empty())
                .unwrap();
            compression().layer(service).oneshot(request)
        };
        let switching = answer(StatusCode::SWITCHING_PROTOCOLS).await.unwrap();
        assert_eq!(switching.headers().get(header::CONTENT_ENCODING), None);
        let ok = answer(StatusCode::OK).await.unwrap();
        assert_eq!(
            ok.headers()[header::CONTENT_ENCODING],
            "gzip",
            "the same answer as 200 is compressed"
        );
    }

    #[test]
    fn no_origin_means_no_layer() {
        assert!(CorsSettings::default().layer().unwrap().is_none());
    }

    #[test]
    fn refuses_what_would_open_too_wide() {
        assert!(with_origins(&["*"], true).layer().is_err());
        assert!(with_origins(&["*", "https://a.example"], false)
            .layer()
            .is_err());
        assert!(with_origins(&["https://a.example/path"], false)
            .layer()
            .is_err());
        assert!(with_origins(&["a.example"], false).layer().is_err());
        let mut wildcard = with_origins(&["https://a.example"], true);
        wildcard.headers = vec!["*".into()];
        assert!(wildcard.layer().is_err(), "would panic in tower-http");
        assert!(with_origins(&["*"], false).layer().unwrap().is_some());
        assert!(
            with_origins(&["https://a.example", "http://b.example:8080"], true)
                .layer()
                .unwrap()
                .is_some()
        );
    }
}
