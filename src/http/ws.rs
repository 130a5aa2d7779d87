//! The GraphQL WebSocket on `/graphql/ws`: `graphql-transport-ws` and the legacy
//! `graphql-ws` subprotocol. The token travels in the `connection_init` payload
//! (`{"authorization": "Bearer …"}`); the connection is refused before anything runs
//! unless it names a valid token.
//!
//! Limits ([`crate::http::guard`]): a message or frame over `CASEFILE_WS_MAX_MESSAGE_BYTES`
//! closes the socket with 1009; a token over `CASEFILE_WS_MAX_CONNECTIONS_PER_TOKEN` open
//! sockets, or over its rate limit at `connection_init`, is closed with 4429 (which
//! graphql-ws clients report as an error and do not retry); an operation over
//! `CASEFILE_WS_OPERATIONS_PER_SECOND`, or over the token's rate limit, answers
//! `RATE_LIMITED` and the socket stays open.

use std::sync::atomic::{AtomicUsize, Ordering};
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
use crate::error::{AppError, Code, RequestId};
use crate::graphql::batching::Gate;
use crate::graphql::{CasefileSchema, Loaders, errors, ids, request_data};
use crate::http::ClientAddress;
use crate::models::events::Event;

/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the server pings an open connection (`ping` on graphql-transport-ws, `ka`
/// on the legacy protocol), so that proxies keep it open and clients see it is alive.
pub const KEEPALIVE: Duration = Duration::from_secs(12);
/// The close code of a socket whose token no longer holds (revoked, expired, user
/// deactivated, role changed).
const CLOSE_FORBIDDEN: u16 = 4403;
/// The close code of a socket over a rate limit or the cap of sockets per token.
const CLOSE_TOO_MANY: u16 = 4429;
/// The close code of a socket whose client sent a message over the size limit (RFC 6455).
const CLOSE_TOO_BIG: u16 = 1009;

pub async fn handler(
    State(state): State<AppState>,
    client: ClientAddress,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let legacy = is_legacy(&headers);
    let max_message = state.guard.ws_max_message_bytes();
    upgrade
        .max_message_size(max_message)
        .max_frame_size(max_message)
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
        while let Some(message) = stream.next().await {
            match message {
                Ok(Message::Text(text)) => return Ok((text.to_string(), Message::Text(text))),
                Ok(_) => {}
                Err(error) => return Err(error),
            }
        }
        Err(axum::Error::new("the connection closed"))
    })
    .await;
    let (text, init_message) = match first {
        Ok(Ok(pair)) => pair,
        Ok(Err(error)) => {
            if too_big(&error) {
                let _ = sink.send(close(CLOSE_TOO_BIG, "Message too big")).await;
            }
            return;
        }
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
    let viewer = match state.guard.authenticate(&state.db, client.0, authorization.as_deref()).await
    {
        Ok(viewer) => viewer,
        Err(error) => {
            let _ = refuse(&mut sink, &error, legacy).await;
            return;
        }
    };
    // Held while the socket is open.
    let _slot = match state.guard.open_socket(viewer.token_id.0) {
        Ok(slot) => slot,
        Err(error) => {
            tracing::info!(user = %viewer.user_id, "refusing a websocket: its token has its most open");
            let _ = refuse(&mut sink, &error, legacy).await;
            return;
        }
    };
    tracing::info!(user = %viewer.user_id, "websocket authenticated");
    // Changes to this viewer reach every server through the change record: join it now,
    // so that none that commits from here on is missed.
    let watch = match state.events.subscribe(viewer.tenant_id, None).await {
        Ok(events) => events,
        Err(error) => {
            let _ = refuse(&mut sink, &error, legacy).await;
            return;
        }
    };
    let operations = Operations {
        schema: state.schema.clone(),
        documents: state.documents.clone(),
        viewer: Arc::new(Mutex::new(Ok(viewer))),
        db: state.db.clone(),
        active: Arc::new(AtomicUsize::new(0)),
        max_subscriptions: state.limits.ws_max_subscriptions,
    };

    // Everything async-graphql sends goes through a channel, so that casefile can also close
    // the socket itself: when an operation starts after the token was revoked or expired.
    let (out_tx, mut out_rx) = futures_channel::mpsc::channel::<Message>(16);
    let control = out_tx.clone();
    // Each operation runs with the viewer as it is when it starts: the token is checked
    // again (a revoked or expired one closes the socket) and the role read afresh.
    let db = state.db.clone();
    let guard = state.guard.clone();
    let rate = Arc::new(state.guard.ws_operations());
    let current = operations.viewer.clone();
    let token_text = authorization.clone();
    let checked = stream::once(async move { Ok(init_message) })
        .chain(stream)
        .then(move |message| {
            let (db, guard, rate) = (db.clone(), guard.clone(), rate.clone());
            let authorization = authorization.clone();
            let mut control = control.clone();
            let current = current.clone();
            async move {
                if let Err(error) = &message
                    && too_big(error)
                {
                    let _ = control.send(close(CLOSE_TOO_BIG, "Message too big")).await;
                    return None;
                }
                let starts_operation =
                    matches!(&message, Ok(Message::Text(text)) if starts_operation(text));
                if starts_operation {
                    // Over the socket's rate the operation answers `RATE_LIMITED`, before
                    // its token is looked up or counted.
                    let viewer = match rate.check() {
                        Ok(()) => guard.authenticate(&db, client.0, authorization.as_deref()).await,
                        Err(error) => Err(error),
                    };
                    if let Err(error @ AppError::Unauthenticated) = &viewer {
                        let _ = refuse(&mut control, error, legacy).await;
                        return None;
                    }
                    // async-graphql starts the operation as soon as it reads this message.
                    *lock(&current) = viewer.map_err(Arc::new);
                }
                Some(message)
            }
        })
        .take_while(|message| std::future::ready(message.is_some()))
        .filter_map(std::future::ready);
    // The socket closes (4403) when the viewer's token is revoked, its user deactivated or
    // its role changed, on whichever server that happened.
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    let guard = tokio::spawn(close_when_revoked(
        state.db.clone(),
        watch,
        viewer,
        token_text,
        out_tx.clone(),
        legacy,
        closed_tx,
    ));
    let pings = tokio::spawn(keep_alive(out_tx.clone(), legacy));
    let checked = checked.take_until(closed_rx);
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
    let graphql = async move {
        graphql.await;
        guard.abort();
        pings.abort();
    };
    tokio::join!(graphql, forward);
}

/// Sends a keep-alive message every [`KEEPALIVE`] until the connection is gone.
async fn keep_alive(mut out: futures_channel::mpsc::Sender<Message>, legacy: bool) {
    let text = if legacy { r#"{"type":"ka"}"# } else { r#"{"type":"ping"}"# };
    let mut tick = tokio::time::interval(KEEPALIVE);
    tick.tick().await;
    loop {
        tick.tick().await;
        if out.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
}

/// Follows the tenant's events; when one may concern this viewer (`token.revoked` of its
/// token, `user.updated` of its user), checks the token again and closes the socket with
/// 4403 when it no longer holds or the role changed.
async fn close_when_revoked(
    db: crate::db::DbPool,
    events: impl futures_util::Stream<Item = Arc<Event>>,
    viewer: Viewer,
    authorization: Option<String>,
    mut out: futures_channel::mpsc::Sender<Message>,
    legacy: bool,
    closed: tokio::sync::oneshot::Sender<()>,
) {
    let token = ids::encode(ids::Kind::ApiToken, viewer.token_id.0).0;
    let user = ids::encode(ids::Kind::User, viewer.user_id.0).0;
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        let concerns = match event.action.as_str() {
            "token.revoked" => event.target_id.as_ref().is_none_or(|t| *t == token),
            "user.updated" => event.target_id.as_ref().is_none_or(|t| *t == user),
            _ => false,
        };
        if !concerns {
            continue;
        }
        // The event says the token may no longer hold: ask the database, not the cache.
        auth::cache::shared().forget_token(viewer.token_id);
        auth::cache::shared().forget_user(viewer.user_id);
        let now = auth::authenticate(&db, authorization.as_deref()).await;
        let holds = match &now {
            Ok(current) => current.role == viewer.role,
            Err(AppError::Unauthenticated) => false,
            // The database is briefly unreachable: the next operation checks again.
            Err(_) => true,
        };
        if !holds {
            tracing::info!(user = %viewer.user_id, action = %event.action, "closing a websocket: its token no longer holds");
            let _ = refuse(&mut out, &AppError::Unauthenticated, legacy).await;
            let _ = closed.send(());
            return;
        }
    }
}

/// Runs a socket's operations, each with the viewer read when it started and a request id
/// of its own.
#[derive(Clone)]
struct Operations {
    schema: CasefileSchema,
    documents: Arc<crate::graphql::documents::Documents>,
    /// The viewer for the operation that starts next, or why there is none.
    viewer: Arc<Mutex<Result<Viewer, Arc<AppError>>>>,
    db: crate::db::DbPool,
    /// Subscriptions running on this connection.
    active: Arc<AtomicUsize>,
    max_subscriptions: usize,
}

/// Counts a running subscription until it ends.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether the request runs a subscription.
fn is_subscription(request: &async_graphql::Request) -> bool {
    use async_graphql::parser::types::OperationType;
    // Too deep to parse safely: not a subscription (the schema refuses it).
    if crate::graphql::limits::nesting::check(&request.query).is_err() {
        return false;
    }
    let Ok(document) = async_graphql::parser::parse_query(&request.query) else { return false };
    crate::graphql::selected_operation(&document, request.operation_name.as_deref())
        .is_some_and(|operation| operation.node.ty == OperationType::Subscription)
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
            Ok(viewer) if is_subscription(&request) => {
                let running = self.active.fetch_add(1, Ordering::SeqCst);
                let counted = Running(self.active.clone());
                if running >= self.max_subscriptions {
                    let error = AppError::Rule(
                        Code::LimitExceeded,
                        format!(
                            "at most {} subscriptions at once on one connection",
                            self.max_subscriptions
                        ),
                    );
                    return stream::once(std::future::ready(errors::response(&error, &request_id)))
                        .boxed();
                }
                request.data = request_data(viewer, request_id);
                // A subscription lives long: its loaders (no cache) serve every event, and
                // fetch at once (no operation around them to gate).
                let gate = Gate::new();
                request.data.insert(Loaders::new(self.db.clone(), viewer.tenant_id, &gate, None));
                self.schema
                    .execute_stream_with_session_data(request, session_data.unwrap_or_default())
                    .map(move |response| {
                        let _ = &counted;
                        response
                    })
                    .boxed()
            }
            Ok(viewer) => {
                self.documents.attach(&mut request);
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

/// Closes the socket because the token is not (or no longer) valid: 4403, or over a rate
/// limit or the cap of sockets: 4429; after a `connection_error` message on the legacy
/// protocol. Other failures close with 4500.
async fn refuse<S>(sink: &mut S, error: &AppError, legacy: bool) -> Result<(), S::Error>
where
    S: futures_util::Sink<Message> + Unpin,
{
    let (code, reason) = match error.code() {
        Code::Unauthenticated => (CLOSE_FORBIDDEN, "Forbidden: a valid token is required"),
        Code::RateLimited => (CLOSE_TOO_MANY, "Too many requests or connections"),
        _ => (4500, "Internal error"),
    };
    if legacy {
        let payload =
            serde_json::json!({"type": "connection_error", "payload": {"message": reason}});
        sink.send(Message::Text(payload.to_string().into())).await?;
    }
    sink.send(close(code, reason)).await
}

/// Whether a read failed on a message or frame over the size limit.
fn too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    matches!(
        error.source().and_then(|cause| cause.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code, reason: reason.into() }))
}
