//! GraphQL over WebSocket, `graphql-transport-ws`, at `/graphql/ws` and as an
//! upgrade of `GET /graphql`. Credentials travel in the `connection_init`
//! payload (`{"Authorization": "Bearer …"}`), never in the URL.
//!
//! The protocol is implemented here rather than by async-graphql-axum, whose
//! layer answers most violations with the wrong close code. Close codes, as
//! the protocol document gives them: 4400 invalid message, 4401 subscribe
//! before `connection_ack`, 4403 credentials refused, 4408 no
//! `connection_init` in time, 4409 duplicate subscription id, 4429 second
//! `connection_init`; and 1008 when the credential already has as many open
//! connections as allowed.
//!
//! Credentials are checked again, against the database, on every
//! `subscribe`: a key revoked by any process runs nothing once the
//! revocation committed. A revocation also closes the key's open
//! connections (4403) as soon as it is notified (at once on this process,
//! through `NOTIFY` on the others); every `--ws-auth-recheck-secs` the
//! credentials are checked again in any case, and an expiring credential
//! ends its connection when it expires. Every operation passes the same
//! document limits, introspection rights and rate limits as over HTTP; at
//! most `--ws-max-subscriptions` run at once per connection. Subscriptions
//! write into one bounded queue per connection; a client that leaves it
//! full (or a write pending) for `--ws-slow-consumer-secs` is disconnected
//! with 1013, so it costs a fixed amount of memory however far behind it
//! is, and resumes with `since`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use async_graphql::ServerError;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value as Json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

use super::admission::credential_key;
use super::documents::{Gate, Refused as DocumentRefused, Requested, Resolved};
use super::observed::{self, WsOperation};
use super::response::{cap_errors, to_json_within, too_large, Body, ResponseLimits};
use super::serve::ClientAddress;
use super::{graphql_request, AppState};
use crate::auth::{bearer_token, AuthError};
use crate::db::Scoped;
use crate::error::{code, ApiError};
use crate::events::{Counted, Revocation};
use crate::graphql::error::{default_code, fill_missing_codes, is_request_error};
use crate::graphql::{admit, introspection_refused, operation_type, RequestContext};
use crate::identity::{Credential, Principal, Role};
use crate::keyed::Keyed;
use crate::telemetry::metrics::Outcome;
use tracing::Instrument;

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
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .map(|address| address.0);
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
    let max_message = state.settings.ws.max_message_bytes;
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => upgrade
            .protocols([PROTOCOL])
            // Small buffers: a subscriber mostly waits, and tungstenite's
            // defaults (128 KiB to read, 128 KiB to write) made an idle
            // connection cost ~200 KiB. Larger messages are still read whole.
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(0)
            .max_write_buffer_size(max_message.saturating_mul(2))
            .max_message_size(max_message)
            .on_upgrade(move |socket| {
                let (outgoing, outgoing_rx) = mpsc::channel(OUTGOING_QUEUE);
                Connection::new(state, client, outgoing).run(socket, outgoing_rx)
            }),
        Err(rejection) => rejection.into_response(),
    }
}

/// Open connections per credential, on this process: a semaphore of
/// `--ws-max-sockets-per-credential` permits each, taken without waiting.
#[derive(Clone, Default)]
pub struct Sockets {
    open: Arc<Keyed<Semaphore>>,
}

impl Sockets {
    /// Counts one more connection of `credential`, unless it has `max` already.
    pub(super) fn open(&self, credential: &str, max: usize) -> Option<OwnedSemaphorePermit> {
        self.open
            .get_or_insert_with(credential, || Semaphore::new(max))
            .try_acquire_owned()
            .ok()
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
    client: Option<IpAddr>,
    /// The caller, once `connection_init` authenticated it; each operation
    /// gets a fresh request context (and loaders) from it.
    caller: Option<Caller>,
    init_received: bool,
    operations: HashMap<String, AbortHandle>,
    /// Where operations put their messages; `run` writes them out.
    outgoing: mpsc::Sender<String>,
    /// Raised by an operation whose messages the client does not take.
    slow_consumer: Arc<Notify>,
}

/// An authenticated connection's caller, and the token it is re-checked by.
struct Caller {
    principal: Principal,
    scoped: Scoped,
    token: String,
    /// Revocations, subscribed before the credentials were checked; moved
    /// to the connection's loop after `connection_ack`.
    revocations: Option<broadcast::Receiver<Revocation>>,
    _counted: Counted,
    _slot: OwnedSemaphorePermit,
}

/// One protocol message, serialized as the client reads it.
#[derive(Serialize)]
struct Envelope<'a, P: Serialize> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    payload: P,
}

/// A message without a payload (`complete`, `pong`, `connection_ack`).
fn bare(kind: &str, id: Option<&str>) -> String {
    match id {
        Some(id) => serde_json::json!({ "id": id, "type": kind }).to_string(),
        None => serde_json::json!({ "type": kind }).to_string(),
    }
}

/// An `error` message: the operation ends with these errors.
fn error_message(id: &str, mut errors: Vec<ServerError>, limits: &ResponseLimits) -> String {
    cap_errors(&mut errors, limits.max_errors);
    observed::count_errors(&observed::codes_of(&errors));
    serde_json::to_string(&Envelope {
        id,
        kind: "error",
        payload: &errors,
    })
    .expect("errors serialize")
}

/// A `next` message within the size ceiling (else one RESPONSE_TOO_LARGE error).
fn next_message(
    id: &str,
    response: &mut async_graphql::Response,
    limits: &ResponseLimits,
) -> String {
    cap_errors(&mut response.errors, limits.max_errors);
    observed::count_errors(&observed::codes_of(&response.errors));
    let body = Body {
        data: Some(&response.data),
        errors: &response.errors,
    };
    let envelope = Envelope {
        id,
        kind: "next",
        payload: body,
    };
    match to_json_within(&envelope, limits.max_bytes) {
        Some(bytes) => String::from_utf8(bytes).expect("JSON is UTF-8"),
        None => {
            let errors = [too_large(limits)];
            observed::count_errors(&[code::RESPONSE_TOO_LARGE]);
            serde_json::to_string(&Envelope {
                id,
                kind: "next",
                payload: Body {
                    data: Some(&async_graphql::Value::Null),
                    errors: &errors,
                },
            })
            .expect("an error serializes")
        }
    }
}

impl Connection {
    fn new(state: AppState, client: Option<IpAddr>, outgoing: mpsc::Sender<String>) -> Self {
        Self {
            state,
            client,
            caller: None,
            init_received: false,
            operations: HashMap::new(),
            outgoing,
            slow_consumer: Arc::new(Notify::new()),
        }
    }

    async fn run(mut self, socket: WebSocket, mut outgoing_rx: mpsc::Receiver<String>) {
        let (mut sink, mut stream) = socket.split();
        let settings = self.state.settings.ws;
        let write_timeout = settings.slow_consumer;
        let init_deadline = tokio::time::sleep(settings.init_timeout);
        tokio::pin!(init_deadline);
        // Credentials are checked again while connected, as a backstop to
        // revocation notifications (which may be lost with their connection).
        let mut recheck = tokio::time::interval(settings.auth_recheck);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        recheck.reset();
        let expiry = tokio::time::sleep(Duration::MAX / 4);
        tokio::pin!(expiry);
        let mut revocations: Option<broadcast::Receiver<Revocation>> = None;
        let slow_consumer = self.slow_consumer.clone();
        let shutdown = self.state.shutdown.clone();
        let stopping = shutdown.begun();
        tokio::pin!(stopping);
        let close = loop {
            tokio::select! {
                () = &mut stopping => {
                    break Some(Close::new(1001, "Going away: the server is shutting down"));
                }
                () = &mut init_deadline, if !self.init_received => {
                    break Some(Close::new(4408, "Connection initialisation timeout"));
                }
                () = &mut expiry, if self.caller.is_some() => {
                    break Some(Close::new(4403, "Forbidden: credentials have expired"));
                }
                revoked = next_revocation(&mut revocations), if revocations.is_some() => {
                    match revoked {
                        Ok(Some(key)) if self.holds_key(key) => {
                            break Some(Close::new(4403, "Forbidden: API key has been revoked"));
                        }
                        Ok(Some(_)) => {}
                        // Revocations may have been missed: check again.
                        Ok(None) | Err(RecvError::Lagged(_)) => {
                            if let Err(close) = Box::pin(self.recheck(true)).await {
                                break Some(close);
                            }
                        }
                        Err(RecvError::Closed) => revocations = None,
                    }
                }
                _ = recheck.tick(), if self.caller.is_some() => {
                    // Boxed: the authentication future is large and rarely
                    // runs; inline it would enlarge every idle connection.
                    if let Err(close) = Box::pin(self.recheck(false)).await {
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
                        // The closing handshake (RFC 6455 §5.5.1): the WebSocket
                        // library has queued the answer, with the client's code;
                        // it goes out with the next flush.
                        Some(Ok(Message::Close(_))) => {
                            let _ = tokio::time::timeout(write_timeout, sink.flush()).await;
                            break None;
                        }
                        Some(Err(_)) | None => break None,
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
                        if let Some(caller) = self.caller.as_mut() {
                            revocations = caller.revocations.take();
                            if let Some(expires_at) = caller.principal.expires_at() {
                                let left = (expires_at - chrono::Utc::now()).to_std().unwrap_or_default();
                                expiry.as_mut().reset(tokio::time::Instant::now() + left);
                            }
                        }
                    }
                }
            }
        };
        for (_, operation) in self.operations.drain() {
            operation.abort();
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

    /// Whether the connection authenticated with API key `key`.
    fn holds_key(&self, key: uuid::Uuid) -> bool {
        self.caller.as_ref().is_some_and(|caller| {
            matches!(caller.principal.credential(), Credential::ApiKey { key_id } if *key_id == key)
        })
    }

    /// Authenticates the connection's token again (`fresh`: from the
    /// database, not the credential cache).
    async fn recheck(&self, fresh: bool) -> Result<(), Close> {
        let Some(caller) = &self.caller else {
            return Ok(());
        };
        match recheck(&self.state, &caller.token, &caller.principal, fresh).await {
            Rechecked::Valid => Ok(()),
            Rechecked::Changed => Err(Close::new(4403, "Forbidden: credentials changed")),
            Rechecked::Refused(e) => Err(Close::new(4403, format!("Forbidden: {e}"))),
        }
    }

    /// Handles one client message; returns the reply to write at once, if any.
    async fn handle(&mut self, text: &str) -> Result<Option<String>, Close> {
        let message: Json = serde_json::from_str(text)
            .map_err(|_| Close::new(4400, "Message is not valid JSON"))?;
        let kind = message
            .get("type")
            .and_then(Json::as_str)
            .ok_or_else(|| Close::new(4400, "Message has no type"))?;
        match kind {
            "connection_init" => self.init(message.get("payload")).await,
            "ping" => Ok(Some(bare("pong", None))),
            "pong" => Ok(None),
            "subscribe" => self.subscribe(&message).await,
            "complete" => {
                let id = message_id(&message)?;
                if let Some(operation) = self.operations.remove(id) {
                    operation.abort();
                }
                Ok(None)
            }
            other => Err(Close::new(4400, format!("Unknown message type `{other}`"))),
        }
    }

    async fn init(&mut self, payload: Option<&Json>) -> Result<Option<String>, Close> {
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
        let auth = &self.state.auth;
        if !auth.is_known(token) {
            if let Err(refused) = self.state.admission.check_address(self.client) {
                return Err(Close::new(1008, refused.message()));
            }
        }
        // Subscribed before the check, so no revocation after it is missed.
        let revocations = self.state.events.revocations();
        let checked = bounded(
            self.state.settings.ws.init_timeout,
            auth.authenticate_token(token),
        )
        .await;
        let principal = match checked {
            Ok(principal) => principal,
            Err(e) if e.is_refusal() => {
                self.state.admission.credential_refused(self.client);
                return Err(Close::new(4403, format!("Forbidden: {e}")));
            }
            // Not the client's fault: 1013, try again later.
            Err(e) => {
                tracing::warn!(error = ?e, "cannot check websocket credentials");
                return Err(Close::new(
                    1013,
                    "Try again later: credentials cannot be checked now",
                ));
            }
        };
        let max = self.state.settings.ws.max_sockets_per_credential;
        let slot = self
            .state
            .sockets
            .open(&credential_key(&principal), max)
            .ok_or_else(|| {
                Close::new(
                    1008,
                    format!("Too many connections: this credential has {max} open"),
                )
            })?;
        let scoped = self.state.db.scoped(&principal);
        self.caller = Some(Caller {
            _counted: self.state.events.connection_opened(principal.tenant()),
            _slot: slot,
            revocations: Some(revocations),
            token: token.to_owned(),
            principal,
            scoped,
        });
        Ok(Some(bare("connection_ack", None)))
    }

    async fn subscribe(&mut self, message: &Json) -> Result<Option<String>, Close> {
        let id = message_id(message)?.to_owned();
        // Counted when dropped: refused until it runs.
        let mut observed = WsOperation::start();
        let Some(caller) = &self.caller else {
            return Err(Close::new(4401, "Unauthorized"));
        };
        if self.operations.get(&id).is_some_and(|s| !s.is_finished()) {
            return Err(Close::new(
                4409,
                format!("Subscriber for {id} already exists"),
            ));
        }
        let payload = message
            .get("payload")
            .and_then(Json::as_object)
            .ok_or_else(|| Close::new(4400, "subscribe needs a payload object"))?;
        let query = match payload.get("query") {
            None | Some(Json::Null) => None,
            Some(Json::String(query)) => Some(query.clone()),
            Some(_) => return Err(Close::new(4400, "query must be a string")),
        };
        let requested = Requested {
            query,
            document_id: payload
                .get("documentId")
                .and_then(Json::as_str)
                .map(str::to_owned),
            persisted: payload
                .get("extensions")
                .and_then(|extensions| extensions.get("persistedQuery"))
                .cloned(),
        };
        let variables = match payload.get("variables") {
            None | Some(Json::Null) => None,
            Some(Json::Object(variables)) => Some(async_graphql::Variables::from_json(
                Json::Object(variables.clone()),
            )),
            Some(_) => return Err(Close::new(4400, "variables must be an object")),
        };
        let operation_name = payload.get("operationName").and_then(Json::as_str);
        let settings = self.state.settings.clone();
        let limits = &settings.response;
        // The credentials again, from the database: a key revoked by any
        // process runs nothing after its revocation committed.
        let checked = bounded(
            settings.ws.init_timeout,
            self.state.auth.authenticate_fresh(&caller.token),
        )
        .await;
        match checked {
            Ok(principal) if same_caller(&principal, &caller.principal) => {}
            Ok(_) => return Err(Close::new(4403, "Forbidden: credentials changed")),
            Err(e) if e.is_refusal() => return Err(Close::new(4403, format!("Forbidden: {e}"))),
            Err(e) => {
                tracing::warn!(error = ?e, "cannot re-check websocket credentials");
                let unavailable = ApiError::Unavailable {
                    message: "credentials cannot be checked now; retry shortly".into(),
                    retry_after: 2,
                };
                return Ok(Some(error_message(
                    &id,
                    vec![unavailable.to_server_error()],
                    limits,
                )));
            }
        }
        self.operations
            .retain(|_, operation| !operation.is_finished());
        let max = settings.ws.max_operations;
        if self.operations.len() >= max {
            let mut error = ServerError::new(
                format!("this connection already runs {max} operations; complete one first"),
                None,
            );
            let mut extensions = async_graphql::ErrorExtensionValues::default();
            extensions.set("code", code::TOO_MANY_SUBSCRIPTIONS);
            extensions.set("limit", "subscriptionsPerConnection");
            extensions.set("max", max as u64);
            error.extensions = Some(extensions);
            return Ok(Some(error_message(&id, vec![error], limits)));
        }
        // The document, named or sent, refused unparsed when untrusted
        // under `require` (see documents.rs).
        let documents = &self.state.documents;
        let admin = caller.principal.role() == Role::Admin;
        let tenant = caller.principal.tenant();
        let resolved = documents
            .resolve(requested)
            .and_then(|resolved| match resolved {
                Resolved::Ready(document) => Ok(document),
                Resolved::Cached(hash) => documents.cached(tenant, hash),
            });
        let document = match resolved {
            Ok(document) => match documents.gate(&document) {
                Gate::Open => Ok(document),
                Gate::AdminOnly if admin => Ok(document),
                Gate::AdminOnly | Gate::Refused => Err(DocumentRefused::NotTrusted),
            },
            Err(refused) => Err(refused),
        };
        let document = match document {
            Ok(document) => document,
            Err(refused) => {
                let (code, message) = refused.code_and_message();
                let mut errors = vec![ServerError::new(message, None)];
                fill_missing_codes(&mut errors, code);
                return Ok(Some(error_message(&id, errors, limits)));
            }
        };
        let query = document.query.as_str();
        let admitted = match admit(query, operation_name, variables.as_ref(), &settings.limits) {
            Ok(admitted) => admitted,
            Err(error) => {
                let mut errors = vec![error];
                fill_missing_codes(&mut errors, code::GRAPHQL_PARSE_FAILED);
                return Ok(Some(error_message(&id, errors, limits)));
            }
        };
        // Remembered (APQ) once the operation's first answer is clean.
        let mut registration = document.registration();
        let introspection = settings.introspection.allows(caller.principal.role());
        if admitted.introspective && !introspection {
            return Ok(Some(error_message(
                &id,
                vec![introspection_refused()],
                limits,
            )));
        }
        if let Err(refused) = self.state.admission.check_rates(&caller.principal) {
            return Ok(Some(error_message(
                &id,
                vec![refused.to_server_error()],
                limits,
            )));
        }
        let kind = operation_type(&admitted.document, operation_name);
        observed.operation = observed::operation(kind);
        let name = observed::operation_name(&admitted.document, operation_name).map(str::to_owned);
        let single_result = !matches!(kind, Some(OperationType::Subscription));
        let request = graphql_request(
            query.to_owned(),
            admitted,
            operation_name.map(str::to_owned),
            variables,
            introspection,
        );
        // A query's reads share one transaction (PostgreSQL), ended with the task.
        let scoped = match kind {
            Some(OperationType::Query) => caller.scoped.for_query_operation(),
            _ => caller.scoped.clone(),
        };
        let end = scoped.operation_end();
        let (context, mut batches) =
            RequestContext::new(caller.principal.clone(), scoped, self.state.events.clone());
        let request = request.data(context);
        let schema = self.state.schema.clone();
        let registry = self.state.documents.clone();
        let registrant = caller.principal.tenant().to_owned();
        let admission = self.state.admission.clone();
        let principal = caller.principal.clone();
        let outgoing = Outgoing {
            queue: self.outgoing.clone(),
            slow_consumer: self.slow_consumer.clone(),
            timeout: settings.ws.slow_consumer,
        };
        let limits = *limits;
        let deadline = settings.http.request_timeout;
        let task_id = id.clone();
        // One span per operation, named by its type (see http.rs).
        let span = tracing::info_span!(
            "graphql",
            transport = "ws",
            tenant = caller.principal.tenant(),
            otel.name = observed.operation.as_str(),
            otel.kind = "server",
            graphql.operation.type = observed.operation.as_str(),
            graphql.operation.name = name.as_deref(),
        );
        let task = tokio::spawn(
            async move {
                let mut end = Some(end);
                // Queries and mutations hold one of the tenant's in-flight
                // slots and run under the request deadline; subscriptions wait.
                let _slot = if single_result {
                    match admission.enter(&principal).await {
                        Ok(slot) => Some(slot),
                        Err(refused) => {
                            outgoing
                                .send(error_message(
                                    &task_id,
                                    vec![refused.to_server_error()],
                                    &limits,
                                ))
                                .await;
                            return;
                        }
                    }
                } else {
                    None
                };
                observed.outcome = Outcome::Ok;
                let mut responses = schema.execute_stream(request);
                loop {
                    let next = batches.run(responses.next());
                    let next = if single_result {
                        match tokio::time::timeout(deadline, next).await {
                            Ok(next) => next,
                            Err(_) => {
                                let timeout = ApiError::Timeout(format!(
                                    "the operation did not finish within its deadline of {} ms",
                                    deadline.as_millis()
                                ));
                                observed.failed();
                                outgoing
                                    .send(error_message(
                                        &task_id,
                                        vec![timeout.to_server_error()],
                                        &limits,
                                    ))
                                    .await;
                                return;
                            }
                        }
                    } else {
                        next.await
                    };
                    let Some(mut response) = next else { break };
                    // A query's one answer exists: end its transaction now,
                    // not once a slow reader has taken the answer (up to the
                    // slow-consumer timeout with a connection held).
                    if single_result {
                        drop(end.take());
                    }
                    let request_error = is_request_error(&response);
                    if !request_error {
                        if let Some(registration) = registration.take() {
                            registry.register(&registrant, registration);
                        }
                    }
                    fill_missing_codes(&mut response.errors, default_code(request_error));
                    observed.answered(!request_error, &response.errors);
                    if request_error {
                        outgoing
                            .send(error_message(&task_id, response.errors, &limits))
                            .await;
                        return;
                    }
                    if !outgoing
                        .send(next_message(&task_id, &mut response, &limits))
                        .await
                    {
                        return;
                    }
                }
                outgoing.send(bare("complete", Some(&task_id))).await;
            }
            .instrument(span),
        );
        self.operations.insert(id, task.abort_handle());
        Ok(None)
    }
}

/// A credential check that may not take longer than `within` (a key lookup
/// on a dead network path would otherwise stall the connection); past it,
/// the credentials count as not checkable, not as refused.
async fn bounded(
    within: Duration,
    check: impl std::future::Future<Output = Result<Principal, AuthError>>,
) -> Result<Principal, AuthError> {
    tokio::time::timeout(within, check)
        .await
        .unwrap_or_else(|_| {
            Err(AuthError::Internal(anyhow::anyhow!(
                "credential check timed out"
            )))
        })
}

/// What a re-check of a long-lived caller's credentials found.
pub(super) enum Rechecked {
    /// Still the caller it was, or not checkable now (the key store being
    /// unreachable is not the client's fault).
    Valid,
    /// Authenticated as another tenant or role.
    Changed,
    Refused(AuthError),
}

/// Authenticates `token` again for a connection or event stream that
/// started as `principal` (`fresh`: from the database, not the credential
/// cache), within the init timeout.
pub(super) async fn recheck(
    state: &AppState,
    token: &str,
    principal: &Principal,
    fresh: bool,
) -> Rechecked {
    let check = async {
        if fresh {
            state.auth.authenticate_fresh(token).await
        } else {
            state.auth.authenticate_token(token).await
        }
    };
    match bounded(state.settings.ws.init_timeout, check).await {
        Ok(now) if same_caller(&now, principal) => Rechecked::Valid,
        Ok(_) => Rechecked::Changed,
        Err(e) if !e.is_refusal() => {
            tracing::warn!(error = ?e, "cannot re-check credentials");
            Rechecked::Valid
        }
        Err(e) => Rechecked::Refused(e),
    }
}

/// The next revocation, for the connection's loop (only polled when some).
async fn next_revocation(
    revocations: &mut Option<broadcast::Receiver<Revocation>>,
) -> Result<Revocation, RecvError> {
    match revocations {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

/// Whether a re-check found the caller the connection started with.
fn same_caller(now: &Principal, then: &Principal) -> bool {
    now.tenant() == then.tenant() && now.role() == then.role()
}

/// An operation's way out: the connection's bounded queue. A client that
/// leaves it full for longer than the timeout is disconnected rather than
/// buffered for: it resumes with `since` after reconnecting.
struct Outgoing {
    queue: mpsc::Sender<String>,
    slow_consumer: Arc<Notify>,
    timeout: Duration,
}

impl Outgoing {
    /// Queues `message`; false when the connection is gone or too slow.
    async fn send(&self, message: String) -> bool {
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
    message: String,
    timeout: Duration,
) -> Result<(), Option<Close>> {
    match tokio::time::timeout(timeout, sink.send(Message::Text(message.into()))).await {
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
/// case) holding `Bearer <token>`, at the top or under `headers` as Hasura
/// and Apollo's examples send it, or a bare `token`.
fn init_token(payload: &Json) -> Option<&str> {
    fn authorization(object: &serde_json::Map<String, Json>) -> Option<&Json> {
        object
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case("authorization"))
            .map(|(_, value)| value)
    }
    let object = payload.as_object()?;
    let nested = object
        .get("headers")
        .and_then(Json::as_object)
        .and_then(authorization);
    match authorization(object).or(nested) {
        Some(value) => bearer_token(value.as_str()?),
        None => object.get("token")?.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::{init_token, Sockets};
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
        assert_eq!(
            init_token(&json!({"headers": {"Authorization": "Bearer abc"}})),
            Some("abc")
        );
        assert_eq!(
            init_token(&json!({"headers": {"authorization": "Basic abc"}})),
            None
        );
        assert_eq!(init_token(&json!(null)), None);
    }

    #[test]
    fn sockets_are_counted_per_credential() {
        let sockets = Sockets::default();
        let a1 = sockets.open("a", 2).unwrap();
        let _a2 = sockets.open("a", 2).unwrap();
        assert!(sockets.open("a", 2).is_none());
        assert!(sockets.open("b", 2).is_some());
        drop(a1);
        assert!(sockets.open("a", 2).is_some());
    }
}
