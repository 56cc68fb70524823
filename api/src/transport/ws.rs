//! GraphQL over WebSocket, `graphql-transport-ws`, at `/graphql/ws` and as an
//! upgrade of `GET /graphql`. Credentials travel in the `connection_init`
//! payload (`{"Authorization": "Bearer …"}`), never in the URL.
//!
//! The protocol is implemented here rather than by async-graphql-axum, whose
//! layer answers most violations with the wrong close code. Close codes, as
//! the protocol document gives them: 4400 invalid message, 4401 subscribe
//! before `connection_ack`, 4403 credentials refused, 4408 no
//! `connection_init` in time, 4409 duplicate subscription id, 4429 second
//! `connection_init`.
//!
//! While connected, the credentials are authenticated again every
//! `--ws-auth-recheck-secs` and end the connection (4403) once revoked, and
//! at once when they expire. Subscriptions write into one bounded queue per
//! connection; a client that leaves it full (or a write pending) for
//! `--ws-slow-consumer-secs` is disconnected with 1013, so it costs a fixed
//! amount of memory however far behind it is, and resumes with `since`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Variables;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use tokio::sync::{mpsc, Notify};
use tokio::task::AbortHandle;

use super::AppState;
use crate::auth::{bearer_token, AuthError, Principal};
use crate::config::ServeArgs;
use crate::db::Scoped;
use crate::error::{default_code, fill_missing_codes, is_request_error};
use crate::events::Counted;
use crate::graphql::RequestContext;

const PROTOCOL: &str = "graphql-transport-ws";
/// The initial read buffer of a connection.
const READ_BUFFER: usize = 1024;
/// Messages waiting to be written to one connection; a full queue slows the
/// producers (the subscriptions) rather than growing memory.
const OUTGOING_QUEUE: usize = 64;

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
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade
            .protocols([PROTOCOL])
            // Small buffers: a subscriber mostly waits, and tungstenite's
            // defaults (128 KiB to read, 128 KiB to write) made an idle
            // connection cost ~200 KiB. Larger messages are still read whole.
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_write_buffer_size(state.settings.max_body_bytes.saturating_mul(2))
            .max_message_size(state.settings.max_body_bytes)
            .on_upgrade(move |socket| {
                let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE);
                Connection::new(state, outgoing).run(socket, outgoing_rx)
            }),
        Err(rejection) => rejection.into_response(),
    }
}

/// Why the server ends a connection.
struct Close(u16, String);

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Self(code, reason.into())
    }
}

struct Connection {
    state: AppState,
    /// The caller, once `connection_init` authenticated it; each operation
    /// gets a fresh request context (and loaders) from it.
    caller: Option<Caller>,
    init_received: bool,
    subscriptions: HashMap<String, AbortHandle>,
    /// Where subscriptions put their messages; `run` writes them out.
    outgoing: mpsc::Sender<Json>,
    /// Raised by a subscription whose messages the client does not take.
    slow_consumer: Arc<Notify>,
}

/// An authenticated connection's caller, and the token it is re-checked by.
struct Caller {
    principal: Principal,
    scoped: Scoped,
    token: String,
    _counted: Counted,
}

/// How long a write to the client, or a subscription's wait for room in the
/// outgoing queue, may take before the client counts as too slow.
fn slow_consumer_timeout(settings: &ServeArgs) -> Duration {
    Duration::from_secs(settings.ws_slow_consumer_secs.max(1))
}

impl Connection {
    fn new(state: AppState, outgoing: mpsc::Sender<Json>) -> Self {
        Self {
            state,
            caller: None,
            init_received: false,
            subscriptions: HashMap::new(),
            outgoing,
            slow_consumer: Arc::new(Notify::new()),
        }
    }

    async fn run(mut self, socket: WebSocket, mut outgoing_rx: mpsc::Receiver<Json>) {
        let (mut sink, mut stream) = socket.split();
        let settings = self.state.settings.clone();
        let init_timeout = Duration::from_secs(settings.ws_init_timeout_secs.max(1));
        let write_timeout = slow_consumer_timeout(&settings);
        let init_deadline = tokio::time::sleep(init_timeout);
        tokio::pin!(init_deadline);
        // Credentials are checked again while connected: a revoked key or a
        // disabled tenant ends the connection within one interval.
        let mut recheck =
            tokio::time::interval(Duration::from_secs(settings.ws_auth_recheck_secs.max(1)));
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.reset();
        let expiry = tokio::time::sleep(Duration::MAX / 4);
        tokio::pin!(expiry);
        let slow_consumer = self.slow_consumer.clone();
        let close = loop {
            tokio::select! {
                () = &mut init_deadline, if !self.init_received => {
                    break Some(Close::new(4408, "Connection initialisation timeout"));
                }
                () = &mut expiry, if self.caller.is_some() => {
                    break Some(Close::new(4403, "Forbidden: credentials have expired"));
                }
                _ = recheck.tick(), if self.caller.is_some() => {
                    // Boxed: the authentication future is large and rarely
                    // runs; inline it would enlarge every idle connection.
                    if let Err(close) = Box::pin(self.recheck()).await {
                        break Some(close);
                    }
                }
                () = slow_consumer.notified() => {
                    break Some(slow_consumer_close());
                }
                Some(message) = outgoing_rx.recv() => {
                    match write(&mut sink, message, write_timeout).await {
                        Ok(()) => {}
                        Err(Some(close)) => break Some(close),
                        Err(None) => break None,
                    }
                }
                incoming = stream.next() => {
                    let text = match incoming {
                        Some(Ok(Message::Text(text))) => text,
                        Some(Ok(Message::Binary(_))) => break Some(Close::new(4400, "Binary messages are not part of the protocol")),
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
                        Some(Ok(_)) => continue, // WebSocket-level ping/pong
                    };
                    let was_authenticated = self.caller.is_some();
                    match Box::pin(self.handle(text.as_str())).await {
                        // Replies are written here, not queued: this loop is the queue's
                        // only reader, so queueing them could wait on itself.
                        Ok(Some(reply)) => {
                            match write(&mut sink, reply, write_timeout).await {
                                Ok(()) => {}
                                Err(Some(close)) => break Some(close),
                                Err(None) => break None,
                            }
                        }
                        Ok(None) => {}
                        Err(close) => break Some(close),
                    }
                    if !was_authenticated {
                        if let Some(expires_at) = self.caller.as_ref().and_then(|c| c.principal.expires_at()) {
                            let left = (expires_at - chrono::Utc::now()).to_std().unwrap_or_default();
                            expiry.as_mut().reset(tokio::time::Instant::now() + left);
                        }
                    }
                }
            }
        };
        for (_, subscription) in self.subscriptions.drain() {
            subscription.abort();
        }
        if let Some(Close(code, reason)) = close {
            tracing::info!(code, reason = %reason, "closing websocket connection");
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            // A client too slow to take messages may not take this one either.
            let _ =
                tokio::time::timeout(write_timeout, sink.send(Message::Close(Some(frame)))).await;
        }
    }

    /// Authenticates the connection's token again.
    async fn recheck(&self) -> Result<(), Close> {
        let Some(caller) = &self.caller else {
            return Ok(());
        };
        match self.state.auth.authenticate_token(&caller.token).await {
            Ok(principal)
                if principal.tenant() == caller.principal.tenant()
                    && principal.role() == caller.principal.role() =>
            {
                Ok(())
            }
            Ok(_) => Err(Close::new(4403, "Forbidden: credentials changed")),
            // The database being unreachable is not the client's fault.
            Err(AuthError::Internal(e)) => {
                tracing::warn!(error = ?e, "cannot re-check websocket credentials");
                Ok(())
            }
            Err(e) => Err(Close::new(4403, format!("Forbidden: {e}"))),
        }
    }

    /// Handles one client message; returns the reply to write at once, if any.
    async fn handle(&mut self, text: &str) -> Result<Option<Json>, Close> {
        let message: Json = serde_json::from_str(text)
            .map_err(|_| Close::new(4400, "Message is not valid JSON"))?;
        let kind = message
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| Close::new(4400, "Message has no type"))?;
        match kind {
            "connection_init" => self.init(message.get("payload")).await,
            "ping" => Ok(Some(json!({ "type": "pong" }))),
            "pong" => Ok(None),
            "subscribe" => self.subscribe(&message).map(|()| None),
            "complete" => {
                let id = message_id(&message)?;
                if let Some(subscription) = self.subscriptions.remove(id) {
                    subscription.abort();
                }
                Ok(None)
            }
            other => Err(Close::new(4400, format!("Unknown message type `{other}`"))),
        }
    }

    async fn init(&mut self, payload: Option<&Json>) -> Result<Option<Json>, Close> {
        if self.init_received {
            return Err(Close::new(4429, "Too many initialisation requests"));
        }
        self.init_received = true;
        let token = payload.and_then(init_token).ok_or_else(|| {
            Close::new(
                4403,
                "Forbidden: connection_init must carry Authorization: Bearer <token>",
            )
        })?;
        let principal = self
            .state
            .auth
            .authenticate_token(token)
            .await
            .map_err(|e| Close::new(4403, format!("Forbidden: {e}")))?;
        let scoped = self.state.db.scoped(&principal);
        self.caller = Some(Caller {
            _counted: self.state.events.connection_opened(principal.tenant()),
            token: token.to_owned(),
            principal,
            scoped,
        });
        Ok(Some(json!({ "type": "connection_ack" })))
    }

    fn subscribe(&mut self, message: &Json) -> Result<(), Close> {
        let id = message_id(message)?.to_owned();
        let Some((context, mut batches)) = self.caller.as_ref().map(|caller| {
            RequestContext::new(
                caller.principal.clone(),
                caller.scoped.clone(),
                self.state.events.clone(),
            )
        }) else {
            return Err(Close::new(4401, "Unauthorized"));
        };
        if self
            .subscriptions
            .get(&id)
            .is_some_and(|s| !s.is_finished())
        {
            return Err(Close::new(
                4409,
                format!("Subscriber for {id} already exists"),
            ));
        }
        let payload = message
            .get("payload")
            .and_then(Json::as_object)
            .ok_or_else(|| Close::new(4400, "subscribe needs a payload object"))?;
        let query = payload
            .get("query")
            .and_then(Json::as_str)
            .ok_or_else(|| Close::new(4400, "subscribe payload needs a query string"))?;
        let mut request = async_graphql::Request::new(query);
        if let Some(name) = payload.get("operationName").and_then(Json::as_str) {
            request = request.operation_name(name);
        }
        match payload.get("variables") {
            None | Some(Json::Null) => {}
            Some(variables @ Json::Object(_)) => {
                request = request.variables(Variables::from_json(variables.clone()));
            }
            Some(_) => return Err(Close::new(4400, "variables must be an object")),
        }
        let request = request.data(context);
        let schema = self.state.schema.clone();
        let outgoing = Outgoing {
            queue: self.outgoing.clone(),
            slow_consumer: self.slow_consumer.clone(),
            timeout: slow_consumer_timeout(&self.state.settings),
        };
        let task_id = id.clone();
        let task = tokio::spawn(async move {
            let mut responses = schema.execute_stream(request);
            while let Some(mut response) = batches.run(responses.next()).await {
                let request_error = is_request_error(&response);
                fill_missing_codes(&mut response.errors, default_code(request_error));
                if request_error {
                    let errors = serde_json::to_value(&response.errors).unwrap_or_default();
                    outgoing
                        .send(json!({ "id": task_id, "type": "error", "payload": errors }))
                        .await;
                    return;
                }
                let payload = serde_json::to_value(&response).unwrap_or(Json::Null);
                if !outgoing
                    .send(json!({ "id": task_id, "type": "next", "payload": payload }))
                    .await
                {
                    return;
                }
            }
            outgoing
                .send(json!({ "id": task_id, "type": "complete" }))
                .await;
        });
        self.subscriptions.insert(id, task.abort_handle());
        Ok(())
    }
}

/// A subscription's way out: the connection's bounded queue. A client that
/// leaves it full for longer than the timeout is disconnected rather than
/// buffered for: it resumes with `since` after reconnecting.
struct Outgoing {
    queue: mpsc::Sender<Json>,
    slow_consumer: Arc<Notify>,
    timeout: Duration,
}

impl Outgoing {
    /// Queues `message`; false when the connection is gone or too slow.
    async fn send(&self, message: Json) -> bool {
        match tokio::time::timeout(self.timeout, self.queue.send(message)).await {
            Ok(sent) => sent.is_ok(),
            Err(_) => {
                self.slow_consumer.notify_one();
                false
            }
        }
    }
}

/// 1013 "try again later": clients reconnect (and resume with `since`).
fn slow_consumer_close() -> Close {
    Close::new(
        1013,
        format!(
            "Slow consumer: {OUTGOING_QUEUE} messages waited too long; reconnect and resume with `since`"
        ),
    )
}

/// Writes one message to the client: `Err(None)` if the connection is gone,
/// `Err(Some(close))` if the client is not taking messages.
async fn write(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    message: Json,
    timeout: Duration,
) -> Result<(), Option<Close>> {
    match tokio::time::timeout(
        timeout,
        sink.send(Message::Text(message.to_string().into())),
    )
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(None),
        Err(_) => Err(Some(slow_consumer_close())),
    }
}

fn message_id(message: &Json) -> Result<&str, Close> {
    message
        .get("id")
        .and_then(Json::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Close::new(4400, "Message needs a non-empty id"))
}

/// The bearer token of a `connection_init` payload: `Authorization` (any
/// case) holding `Bearer <token>`, or a bare `token`.
fn init_token(payload: &Json) -> Option<&str> {
    let object = payload.as_object()?;
    match object
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
    {
        Some((_, value)) => bearer_token(value.as_str()?),
        None => object.get("token")?.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::init_token;
    use serde_json::json;

    #[test]
    fn reads_credentials_from_the_init_payload() {
        assert_eq!(
            init_token(&json!({"Authorization": "Bearer abc"})),
            Some("abc")
        );
        assert_eq!(
            init_token(&json!({"authorization": "bearer abc"})),
            Some("abc")
        );
        assert_eq!(init_token(&json!({"token": "abc"})), Some("abc"));
        assert_eq!(init_token(&json!({"Authorization": "Basic abc"})), None);
        assert_eq!(init_token(&json!(null)), None);
    }
}
