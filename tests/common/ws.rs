//! A `graphql-transport-ws` client for tests (tokio-tungstenite).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::TestServer;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub const PROTOCOL: &str = "graphql-transport-ws";

/// Opens a WebSocket to `base` (`http://host:port`) + `path`, offering `protocol`.
pub async fn connect_to(
    base: &str,
    path: &str,
    protocol: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    let url = format!("{base}{path}").replacen("http://", "ws://", 1);
    let mut request = url.into_client_request().unwrap();
    if let Some(protocol) = protocol {
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

pub async fn connect(
    server: &TestServer,
    path: &str,
    protocol: Option<&str>,
) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
    connect_to(&server.base, path, protocol).await
}

pub async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

/// The next protocol message within `wait`: `Ok(None)` if none came,
/// `Err(code)` if the server closed (with that code, if it gave one).
pub async fn next_within(
    socket: &mut Socket,
    wait: Duration,
) -> Result<Option<Value>, Option<u16>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let Ok(message) = tokio::time::timeout_at(deadline, socket.next()).await else {
            return Ok(None);
        };
        match message {
            Some(Ok(Message::Text(text))) => return Ok(Some(serde_json::from_str(&text).unwrap())),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// The next text message as sent, byte for byte (within 5 s).
pub async fn next_text(socket: &mut Socket) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("server answers within 5 s");
        match message {
            Some(Ok(Message::Text(text))) => return text.to_string(),
            Some(Ok(Message::Close(frame))) => panic!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => panic!("{e}"),
            None => panic!("the socket ended"),
        }
    }
}

/// The next protocol message, or the close code if the server closed.
pub async fn next(socket: &mut Socket) -> Result<Value, Option<u16>> {
    next_within(socket, Duration::from_secs(5))
        .await
        .map(|message| message.expect("server answers within 5 s"))
}

/// A connection to `base` authenticated with `key` (acknowledged).
pub async fn open_to(base: &str, key: &str) -> Socket {
    let mut socket = connect_to(base, "/graphql/ws", Some(PROTOCOL))
        .await
        .unwrap();
    send(
        &mut socket,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {key}")}}),
    )
    .await;
    let ack = next(&mut socket).await.unwrap();
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    socket
}

pub async fn open(server: &TestServer, key: &str) -> Socket {
    open_to(&server.base, key).await
}

pub async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    send(
        socket,
        json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": variables}}),
    )
    .await;
}
