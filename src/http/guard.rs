//! The guard against abuse: who the client is ([`client`]), the rate limits, the caps
//! of WebSockets, and CORS ([`cors`]). Every authenticated route, and the WebSocket at
//! its `connection_init` and at each operation, authenticates through
//! [`Guard::authenticate`]: the one place where requests and failures are counted.
//!
//! - per token: `CASEFILE_RATE_LIMIT_PER_MINUTE` requests a minute;
//! - per client address: `CASEFILE_AUTH_FAILURES_PER_MINUTE` failed authentications a
//!   minute; an address over it is refused, good token or not, until its next failure
//!   would be allowed again, so a token cannot be guessed faster than that;
//! - per WebSocket: `CASEFILE_WS_OPERATIONS_PER_SECOND` operations a second; per token
//!   `CASEFILE_WS_MAX_CONNECTIONS_PER_TOKEN` open sockets.
//!
//! Over a limit the error is `RATE_LIMITED` with `retryAfter` (HTTP 429 + `Retry-After`).
//! The counts live in this server's memory: N servers behind a balancer allow up to N
//! times the limits. The maps are swept of keys back to fresh every few seconds
//! ([`limiter`]), so they hold only the tokens and addresses seen lately.

pub mod client;
pub mod cors;
mod limiter;
mod sockets;

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::auth::{self, Viewer};
use crate::config::{AbuseLimits, CorsOrigins, TrustedProxies};
use crate::db::DbPool;
use crate::error::{AppError, AppResult};

pub use limiter::whole_seconds;
pub use sockets::Slot;

/// The limits of one server, shared by its requests.
pub struct Guard {
    requests: Option<limiter::Limiter<Uuid>>,
    rate_limit_per_minute: u32,
    failures: Option<limiter::Failures>,
    sockets: Arc<sockets::Sockets>,
    ws_max_message_bytes: usize,
    ws_operations_per_second: u32,
    trusted_proxies: TrustedProxies,
    cors_origins: CorsOrigins,
}

impl Guard {
    /// The guard of `settings`; WebSocket messages default to `max_body_bytes`.
    pub fn new(settings: &AbuseLimits, max_body_bytes: usize) -> Self {
        let ws_max_message_bytes = settings
            .ws_max_message_bytes
            .map_or(max_body_bytes, |bytes| usize::try_from(bytes).unwrap_or(usize::MAX));
        Guard {
            requests: limiter::Limiter::per_minute(settings.rate_limit_per_minute),
            rate_limit_per_minute: settings.rate_limit_per_minute,
            failures: limiter::Failures::per_minute(settings.auth_failures_per_minute),
            sockets: Arc::new(sockets::Sockets::new(settings.ws_max_connections_per_token)),
            ws_max_message_bytes: ws_max_message_bytes.max(1),
            ws_operations_per_second: settings.ws_operations_per_second,
            trusted_proxies: settings.trusted_proxies.clone(),
            cors_origins: settings.cors_origins.clone(),
        }
    }

    /// Resolves the bearer token of a request from `client` to its viewer (with the
    /// client's address), counting the request against the token's limit, or the failure
    /// against the address's. A locked-out address is refused before its token is read.
    pub async fn authenticate(
        &self,
        db: &DbPool,
        client: Option<IpAddr>,
        authorization: Option<&str>,
    ) -> AppResult<Viewer> {
        let failures = self.failures.as_ref().zip(client);
        if let Some(wait) = failures.and_then(|(failures, address)| failures.lockout(address)) {
            return Err(address_locked(wait));
        }
        match auth::authenticate(db, authorization).await {
            Ok(viewer) => {
                if let Some(requests) = &self.requests {
                    requests.check(&viewer.token_id.0).map_err(|wait| {
                        rate_limited(
                            format!(
                                "too many requests with this token: at most {} a minute",
                                self.rate_limit_per_minute
                            ),
                            wait,
                        )
                    })?;
                }
                Ok(viewer.with_client_address(client))
            }
            Err(AppError::Unauthenticated) => {
                match failures.and_then(|(failures, address)| failures.fail(address)) {
                    Some(wait) => Err(address_locked(wait)),
                    None => Err(AppError::Unauthenticated),
                }
            }
            Err(other) => Err(other),
        }
    }

    /// The client address of a request from the TCP `peer` ([`client`]).
    pub fn client_address(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        client::client_address(&self.trusted_proxies, peer, headers)
    }

    /// A slot for one more open WebSocket of `token`, or `RATE_LIMITED` over the cap.
    pub fn open_socket(&self, token: Uuid) -> AppResult<Slot> {
        self.sockets.take(token).ok_or_else(|| {
            rate_limited(
                format!("too many open WebSockets with this token: at most {}", self.sockets.max()),
                std::time::Duration::from_secs(1),
            )
        })
    }

    /// Largest WebSocket message and frame a client may send, in bytes.
    pub fn ws_max_message_bytes(&self) -> usize {
        self.ws_max_message_bytes
    }

    /// The limit of operations started on one new WebSocket.
    pub fn ws_operations(&self) -> Operations {
        let quota = NonZeroU32::new(self.ws_operations_per_second).map(Quota::per_second);
        Operations {
            limiter: quota.map(RateLimiter::direct),
            per_second: self.ws_operations_per_second,
        }
    }

    pub fn cors_origins(&self) -> &CorsOrigins {
        &self.cors_origins
    }
}

/// The operations one WebSocket may start a second.
pub struct Operations {
    limiter: Option<RateLimiter<NotKeyed, InMemoryState, DefaultClock>>,
    per_second: u32,
}

impl Operations {
    /// Counts one operation; `RATE_LIMITED` over the limit.
    pub fn check(&self) -> AppResult<()> {
        let Some(limiter) = &self.limiter else { return Ok(()) };
        limiter.check().map_err(|not_until| {
            rate_limited(
                format!(
                    "too many operations started on this connection: at most {} a second",
                    self.per_second
                ),
                not_until.wait_time_from(limiter.clock().now()),
            )
        })
    }
}

fn address_locked(wait: std::time::Duration) -> AppError {
    rate_limited("too many failed authentications from this address".to_owned(), wait)
}

fn rate_limited(message: String, wait: std::time::Duration) -> AppError {
    let retry_after = whole_seconds(wait);
    AppError::RateLimited {
        message: format!("{message}; try again in {retry_after} s"),
        retry_after,
    }
}
