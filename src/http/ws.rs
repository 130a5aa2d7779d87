//! The GraphQL WebSocket on `/graphql/ws`: `graphql-transport-ws` and the legacy
//! `graphql-ws` subprotocol. The token travels in the `connection_init` payload
//! (`{"authorization": "Bearer …"}`); the connection is refused before anything runs
//! unless it names a valid token.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::Executor;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use futures_util::stream::BoxStream;
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::Value;

use crate::app::AppState;
use crate::auth::{self, Viewer};
use crate::error::{AppError, RequestId};
use crate::graphql::{CasefileSchema, errors, request_data};
use crate::http::ClientAddress;

/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn handler(
    State(state): State<AppState>,
    client: ClientAddress,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let legacy = is_legacy(&headers);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve(state, protocol, legacy, client, socket))
}

/// Whether the client chose the legacy `graphql-ws` subprotocol (subscriptions-transport-ws):
/// the first protocol it offers that casefile speaks decides, as in the upgrade.
fn is_legacy(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| ALL_WEBSOCKET_PROTOCOLS.contains(p))
        .is_some_and(|p| p == WebSocketProtocols::SubscriptionsTransportWS.sec_websocket_protocol())
}

async fn serve(
    state: AppState,
    protocol: GraphQLProtocol,
    legacy: bool,
    client: ClientAddress,
    socket: WebSocket,
) {
    let _open = state.metrics.websocket_opened();
    let (mut sink, mut stream) = socket.split();

    // The first text message must be connection_init with a valid token.
    let first = tokio::time::timeout(INIT_TIMEOUT, async {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = &message {
                return Some((text.to_string(), message));
            }
        }
        None
    })
    .await;
    let (text, init_message) = match first {
        Ok(Some(pair)) => pair,
        Ok(None) => return,
        Err(_) => {
            let _ = sink.send(close(4408, "Connection initialisation timeout")).await;
            return;
        }
    };
    let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if parsed.get("type").and_then(Value::as_str) != Some("connection_init") {
        let _ = sink.send(close(4401, "Unauthorized")).await;
        return;
    }
    let authorization =
        parsed.pointer("/payload/authorization").and_then(Value::as_str).map(str::to_owned);
    let viewer = match auth::authenticate(&state.db, authorization.as_deref()).await {
        Ok(viewer) => viewer.with_client_address(client.0),
        Err(error) => {
            let _ = refuse(&mut sink, &error, legacy).await;
            return;
        }
    };
    tracing::info!(user = %viewer.user_id, "websocket authenticated");
    let operations =
        Operations { schema: state.schema.clone(), viewer: Arc::new(Mutex::new(Ok(viewer))) };

    // Everything async-graphql sends goes through a channel, so that casefile can also close
    // the socket itself: when an operation starts after the token was revoked or expired.
    let (out_tx, mut out_rx) = futures_channel::mpsc::channel::<Message>(16);
    let control = out_tx.clone();
    // Each operation runs with the viewer as it is when it starts: the token is checked
    // again (a revoked or expired one closes the socket) and the role read afresh.
    let db = state.db.clone();
    let current = operations.viewer.clone();
    let checked = stream::once(async move { Ok(init_message) })
        .chain(stream)
        .then(move |message| {
            let db = db.clone();
            let authorization = authorization.clone();
            let mut control = control.clone();
            let current = current.clone();
            async move {
                let starts_operation =
                    matches!(&message, Ok(Message::Text(text)) if starts_operation(text));
                if starts_operation {
                    let viewer = auth::authenticate(&db, authorization.as_deref()).await;
                    if let Err(error @ AppError::Unauthenticated) = &viewer {
                        let _ = refuse(&mut control, error, legacy).await;
                        return None;
                    }
                    // async-graphql starts the operation as soon as it reads this message.
                    *lock(&current) =
                        viewer.map(|v| v.with_client_address(client.0)).map_err(Arc::new);
                }
                Some(message)
            }
        })
        .take_while(|message| std::future::ready(message.is_some()))
        .filter_map(std::future::ready);
    let forward = async move {
        while let Some(message) = out_rx.next().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    let graphql = GraphQLWebSocket::new_with_pair(out_tx, checked, operations, protocol)
        .on_connection_init(|_| async { Ok(async_graphql::Data::default()) })
        .keepalive_timeout(None)
        .serve();
    tokio::join!(graphql, forward);
}

/// Runs a socket's operations, each with the viewer read when it started and a request id
/// of its own.
#[derive(Clone)]
struct Operations {
    schema: CasefileSchema,
    /// The viewer for the operation that starts next, or why there is none.
    viewer: Arc<Mutex<Result<Viewer, Arc<AppError>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Executor for Operations {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        self.schema.execute(request).await
    }

    fn execute_stream(
        &self,
        mut request: async_graphql::Request,
        session_data: Option<Arc<async_graphql::Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        let request_id = RequestId::new();
        let viewer = lock(&self.viewer).clone();
        tracing::info!(request_id = %request_id.0, viewer = ?viewer.as_ref().map(|v| v.user_id), "websocket operation");
        match viewer {
            Ok(viewer) => {
                request.data = request_data(viewer, request_id);
                self.schema
                    .execute_stream_with_session_data(request, session_data.unwrap_or_default())
            }
            Err(error) => {
                stream::once(std::future::ready(errors::response(&error, &request_id))).boxed()
            }
        }
    }
}

/// Whether a client message starts an operation (`subscribe`, or `start` in the legacy protocol).
fn starts_operation(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| {
            v.get("type").and_then(Value::as_str).map(|t| t == "subscribe" || t == "start")
        })
        .unwrap_or(false)
}

/// Closes the socket because the token is not (or no longer) valid: 4403, after a
/// `connection_error` message on the legacy protocol. Other failures close with 4500.
async fn refuse<S>(sink: &mut S, error: &AppError, legacy: bool) -> Result<(), S::Error>
where
    S: futures_util::Sink<Message> + Unpin,
{
    let (code, reason) = match error.code() {
        crate::error::Code::Unauthenticated => (4403, "Forbidden: a valid token is required"),
        _ => (4500, "Internal error"),
    };
    if legacy {
        let payload =
            serde_json::json!({"type": "connection_error", "payload": {"message": reason}});
        sink.send(Message::Text(payload.to_string().into())).await?;
    }
    sink.send(close(code, reason)).await
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}
