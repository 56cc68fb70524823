//! GraphQL over WebSocket (`graphql-transport-ws`), at `/graphql/ws` and as an
//! upgrade of `GET /graphql`. Credentials travel in the `connection_init`
//! payload (`{"Authorization": "Bearer …"}`), never in the URL.
//!
//! The protocol layer is async-graphql's for now; the drift-alerts work
//! replaces it where its close codes stray from the protocol document.

use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;

use super::AppState;
use crate::graphql::RequestContext;

const PROTOCOL: &str = "graphql-transport-ws";

pub async fn upgrade(State(state): State<AppState>, request: Request) -> Response {
    serve(state, request).await
}

/// Upgrades `request` to a `graphql-transport-ws` connection. Clients that do
/// not offer that subprotocol are refused with 400.
pub async fn serve(state: AppState, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    let offered = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == PROTOCOL));
    if !offered {
        return (
            StatusCode::BAD_REQUEST,
            format!("WebSocket clients must offer the {PROTOCOL} subprotocol"),
        )
            .into_response();
    }
    // Offer async-graphql only our protocol, so it cannot pick the legacy one.
    parts.headers.insert(
        header::SEC_WEBSOCKET_PROTOCOL,
        HeaderValue::from_static(PROTOCOL),
    );
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &state).await {
        Ok(protocol) => protocol,
        Err(status) => return status.into_response(),
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    upgrade
        .protocols([PROTOCOL])
        .on_upgrade(move |socket| async move {
            let auth = state.auth.clone();
            let db = state.db.clone();
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let token = bearer_token(&payload).ok_or_else(|| {
                        async_graphql::Error::new(
                            "connection_init must carry Authorization: Bearer <token>",
                        )
                    })?;
                    let principal = auth
                        .authenticate_token(&token)
                        .await
                        .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                    tracing::info!(
                        tenant = principal.tenant(),
                        "websocket connection authenticated"
                    );
                    let scoped = db.scoped(&principal);
                    let mut data = Data::default();
                    data.insert(RequestContext::new(principal, scoped));
                    Ok(data)
                })
                .serve()
                .await
        })
}

/// The bearer token of a `connection_init` payload: `Authorization` (any
/// case) holding `Bearer <token>`, or a bare `token`.
fn bearer_token(payload: &Json) -> Option<String> {
    let object = payload.as_object()?;
    for (key, value) in object {
        if key.eq_ignore_ascii_case("authorization") {
            let value = value.as_str()?.trim();
            let (scheme, token) = value.split_once(' ')?;
            return scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned());
        }
    }
    object.get("token")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::bearer_token;
    use serde_json::json;

    #[test]
    fn reads_credentials_from_the_init_payload() {
        assert_eq!(
            bearer_token(&json!({"Authorization": "Bearer abc"})).as_deref(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&json!({"authorization": "bearer abc"})).as_deref(),
            Some("abc")
        );
        assert_eq!(
            bearer_token(&json!({"token": "abc"})).as_deref(),
            Some("abc")
        );
        assert_eq!(bearer_token(&json!({"Authorization": "Basic abc"})), None);
        assert_eq!(bearer_token(&json!(null)), None);
    }
}
