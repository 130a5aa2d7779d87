//! A GraphQL WebSocket client for tests: both subprotocols, raw frames and whole operations.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::TestApp;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/graphql/ws` with `protocol`; checks the server chose it.
pub async fn connect(app: &TestApp, protocol: &str) -> Socket {
    connect_url(&app.ws_url(), protocol).await
}

/// Opens the WebSocket at `url` with `protocol`; checks the server chose it.
pub async fn connect_url(url: &str, protocol: &str) -> Socket {
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert("sec-websocket-protocol", protocol.parse().expect("header"));
    let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("connect");
    assert_eq!(
        response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()),
        Some(protocol)
    );
    socket
}

pub async fn send(socket: &mut Socket, value: Value) {
    socket.send(Message::Text(value.to_string().into())).await.expect("send");
}

/// The next message as sent: its text, or the close frame's code.
pub async fn next_text(socket: &mut Socket) -> Result<String, u16> {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a message within 10 s")
            .expect("the socket is open")
            .expect("a frame");
        match message {
            Message::Text(text) => return Ok(text.to_string()),
            Message::Close(frame) => return Err(frame.map(|f| u16::from(f.code)).unwrap_or(1005)),
            _ => continue,
        }
    }
}

/// The next message: a JSON text, or the close frame's code.
pub async fn next(socket: &mut Socket) -> Result<Value, u16> {
    next_text(socket).await.map(|text| serde_json::from_str(&text).expect("json"))
}

/// A `graphql-transport-ws` socket past `connection_init` with `token`.
pub async fn open(app: &TestApp, token: &str) -> Socket {
    open_url(&app.ws_url(), token).await
}

/// A `graphql-transport-ws` socket at `url` past `connection_init` with `token`.
pub async fn open_url(url: &str, token: &str) -> Socket {
    let mut socket = connect_url(url, "graphql-transport-ws").await;
    let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
    send(&mut socket, init).await;
    assert_eq!(next(&mut socket).await, Ok(json!({ "type": "connection_ack" })));
    socket
}

/// Waits until the subscriptions a server has started reach `count` (see
/// `EventHub::follows`): from then on each of them gets every event that commits.
pub async fn following(server: &casefile::events::EventHub, count: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while server.follows() < count {
        assert!(std::time::Instant::now() < deadline, "subscriptions did not start in 30 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs one operation on an open `graphql-transport-ws` socket; returns the text of its
/// `next` message (the payload is the response) after its `complete`.
pub async fn operation_text(
    socket: &mut Socket,
    id: &str,
    query: &str,
    variables: Value,
) -> String {
    let subscribe = json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } });
    send(socket, subscribe).await;
    let text = next_text(socket).await.expect("a result");
    let message: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(message["type"], "next", "{text}");
    assert_eq!(next(socket).await, Ok(json!({ "type": "complete", "id": id })));
    text
}

/// Runs one operation on an open socket; returns its response.
pub async fn operation(socket: &mut Socket, id: &str, query: &str, variables: Value) -> Value {
    let text = operation_text(socket, id, query, variables).await;
    let message: Value = serde_json::from_str(&text).expect("json");
    message["payload"].clone()
}

impl TestApp {
    /// Runs one operation over a fresh WebSocket with `token`; returns its response.
    pub async fn ws_graphql(&self, token: &str, query: &str, variables: Value) -> Value {
        let mut socket = open(self, token).await;
        operation(&mut socket, "1", query, variables).await
    }

    /// Like [`TestApp::graphql_counting`] over the WebSocket: the response of one operation
    /// and the SQL statements the server ran for it (from its start to its end).
    pub async fn ws_graphql_counting(
        &self,
        token: &str,
        query: &str,
        variables: Value,
    ) -> (Value, u64) {
        let mut socket = open(self, token).await;
        let before = self.statements.load(Ordering::SeqCst);
        let response = operation(&mut socket, "1", query, variables).await;
        (response, self.statements.load(Ordering::SeqCst) - before)
    }
}

/// Starts a subscription on an open `graphql-transport-ws` socket.
pub async fn subscribe(socket: &mut Socket, id: &str, query: &str, variables: Value) {
    let subscribe = json!({ "id": id, "type": "subscribe", "payload": { "query": query, "variables": variables } });
    send(socket, subscribe).await;
}

/// What arrived on a socket: a result (`next` or legacy `data`), or the close code.
#[derive(Debug)]
pub enum Arrived {
    /// The payload of a `next` (or legacy `data`) message.
    Next(Value),
    /// Another message (`complete`, `error`, …) as sent.
    Other(Value),
    /// The socket closed with this code.
    Closed(u16),
    /// Nothing within the wait.
    Nothing,
}

/// The next message that is not a keep-alive, within `wait`.
pub async fn arrive(socket: &mut Socket, wait: Duration) -> Arrived {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return Arrived::Nothing,
            Ok(None) | Ok(Some(Err(_))) => return Arrived::Closed(1006),
            Ok(Some(Ok(frame))) => frame,
        };
        match frame {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(&text).expect("json");
                match value["type"].as_str() {
                    Some("ping") => {
                        send(socket, json!({ "type": "pong" })).await;
                    }
                    Some("ka") | Some("pong") => {}
                    Some("next") | Some("data") => return Arrived::Next(value["payload"].clone()),
                    _ => return Arrived::Other(value),
                }
            }
            Message::Close(frame) => {
                return Arrived::Closed(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
            }
            _ => {}
        }
    }
}

/// The payload of the next result within `wait` (the `complete` of an operation that
/// ended is passed over); fails the test on anything else.
pub async fn next_result(socket: &mut Socket, wait: Duration) -> Value {
    loop {
        match arrive(socket, wait).await {
            Arrived::Next(payload) => return payload,
            Arrived::Other(message) if message["type"] == "complete" => continue,
            other => panic!("expected a result within {wait:?}, got {other:?}"),
        }
    }
}
