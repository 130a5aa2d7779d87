//! The webhook channel (`webhook:<uuid>`): each case event of the change record that the
//! endpoint asked for is POSTed as JSON, signed, through the delivery worker (at least
//! once, in order per endpoint, and so in order per case).
//!
//! Body: `{"id", "kind", "cursor", "at", "caseId", "caseNumber", "actor", "changedFields"}`
//! (no free text). Headers: `X-Casefile-Event: <kind>`, `X-Casefile-Delivery: <id>` (the
//! same on every repeat of the delivery) and `X-Casefile-Signature: t=<unix seconds>,
//! v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>`. A 2xx answer is success;
//! anything else (or no answer within the timeouts; redirects are never followed) is a
//! failure, retried with backoff (doubling from `CASEFILE_WEBHOOK_RETRY_BASE_MS`, at most
//! 10 minutes); after `CASEFILE_WEBHOOK_MAX_ATTEMPTS` failures in a row the endpoint is
//! disabled (`disabledReason`, a `webhook.disabled` event) and its channel paused until
//! `updateWebhook(enabled: true)`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use url::{Host, Url};

use crate::config::WebhookConfig;
use crate::db::{DbPool, pool};
use crate::delivery::{Attempt, Handler, Outcome, address, backoff};
use crate::error::AppResult;
use crate::events::cursor::EventCursor;
use crate::graphql::ids::{self, Kind};
use crate::models::events::{Event, format_at};
use crate::models::users;
use crate::models::webhooks::{self, Webhook};

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// Most clients kept (one per host and checked address).
const CLIENTS: usize = 256;

/// Delivers the `webhook` channels.
pub struct WebhookHandler {
    db: DbPool,
    config: WebhookConfig,
    clients: Mutex<HashMap<(String, SocketAddr), reqwest::Client>>,
}

impl WebhookHandler {
    pub fn new(db: DbPool, config: WebhookConfig) -> Arc<Self> {
        Arc::new(WebhookHandler { db, config, clients: Mutex::new(HashMap::new()) })
    }

    /// A client that connects to `addr` for the URL's host (no redirects, no proxy).
    fn client(&self, url: &Url, addr: SocketAddr) -> Result<reqwest::Client, String> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = clients.get(&(host.clone(), addr)) {
            return Ok(client.clone());
        }
        let timeout = Duration::from_secs(self.config.webhook_timeout_secs.max(1));
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(timeout)
            .timeout(timeout * 2)
            .user_agent(concat!("casefile-webhooks/", env!("CARGO_PKG_VERSION")));
        if let Some(Host::Domain(name)) = url.host() {
            // Connect to the address that was checked, never to a second lookup's answer.
            builder = builder.resolve(name, addr);
        }
        let client = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        if clients.len() >= CLIENTS {
            clients.clear();
        }
        clients.insert((host, addr), client.clone());
        Ok(client)
    }

    async fn deliver(&self, attempt: Attempt<'_>, event: &Event) -> AppResult<Outcome> {
        let Some(id) = webhooks::of_channel(attempt.channel) else {
            return Ok(Outcome::Pause { reason: "not a webhook channel".to_owned() });
        };
        // Only case events are delivered: the others need no statement at all.
        let Some(kind) = event.case_event_kind() else { return Ok(Outcome::Skipped) };
        let mut conn = pool::get(&self.db).await?;
        let Some(hook) = webhooks::find(&mut conn, attempt.tenant, id).await? else {
            return Ok(Outcome::Pause { reason: "the webhook is gone".to_owned() });
        };
        if !hook.enabled {
            return Ok(Outcome::Pause { reason: "the webhook is disabled".to_owned() });
        }
        if hook.kinds().next().is_some() && !hook.kinds().any(|k| k == kind.as_str()) {
            return Ok(Outcome::Skipped);
        }
        let delivery =
            webhooks::begin_attempt(&mut conn, attempt.tenant, id, event.sequence, kind.as_str())
                .await?;
        let actor = match event.actor_id {
            Some(user) => users::find(&mut conn, attempt.tenant, user)
                .await?
                .map(|u| json!({ "id": ids::encode(Kind::User, u.id.0).0, "email": u.email })),
            None => None,
        };
        drop(conn);
        let body = payload(&delivery.id, event, kind.as_str(), actor);
        let result = self.post(&hook, &delivery.id.to_string(), kind.as_str(), body).await;
        let mut conn = pool::get(&self.db).await?;
        match result {
            Ok(code) => {
                webhooks::end_attempt(&mut conn, delivery.id, "DELIVERED", Some(code), None)
                    .await?;
                Ok(Outcome::Done)
            }
            Err((code, error)) => {
                let give_up = attempt.number >= self.config.webhook_max_attempts;
                let status = if give_up { "FAILED" } else { "PENDING" };
                webhooks::end_attempt(&mut conn, delivery.id, status, code, Some(&error)).await?;
                if give_up {
                    let reason = format!(
                        "disabled after {} failed attempts in a row; the last: {error}",
                        attempt.number
                    );
                    crate::domain::webhooks::disable(&mut conn, attempt.tenant, id, &reason)
                        .await?;
                    return Ok(Outcome::Pause { reason });
                }
                Ok(Outcome::Retry { error, after: None })
            }
        }
    }

    /// POSTs the body; the status code, or the status code (if any) and what went wrong.
    async fn post(
        &self,
        hook: &Webhook,
        delivery: &str,
        kind: &str,
        body: String,
    ) -> Result<i32, (Option<i32>, String)> {
        let url = address::parse(&hook.url).map_err(|e| (None, format!("URL: {e}")))?;
        let addr = address::resolve(&url, self.config.webhook_allow_private)
            .await
            .map_err(|e| (None, e))?;
        let client = self.client(&url, addr).map_err(|e| (None, e))?;
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(&hook.secret, timestamp, &body);
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-casefile-event", kind)
            .header("x-casefile-delivery", delivery)
            .header("x-casefile-signature", format!("t={timestamp},v1={signature}"))
            .body(body)
            .send()
            .await
            .map_err(|e| (None, describe(&e)))?;
        let code = i32::from(response.status().as_u16());
        if response.status().is_success() {
            Ok(code)
        } else {
            Err((Some(code), format!("answered HTTP {code}")))
        }
    }
}

impl Handler for WebhookHandler {
    fn kind(&self) -> &'static str {
        "webhook"
    }

    fn handle<'a>(&'a self, attempt: Attempt<'a>, event: &'a Event) -> BoxFuture<'a, Outcome> {
        async move {
            match self.deliver(attempt, event).await {
                Ok(outcome) => outcome,
                Err(error) => Outcome::Retry { error: format!("casefile: {error}"), after: None },
            }
        }
        .boxed()
    }

    fn backoff(&self, failures: u32) -> Duration {
        backoff(Duration::from_millis(self.config.webhook_retry_base_ms), MAX_BACKOFF, failures)
    }
}

/// The JSON body of one delivery (keys as documented; no free text).
pub fn payload(delivery: &uuid::Uuid, event: &Event, kind: &str, actor: Option<Value>) -> String {
    let changed: Vec<&String> =
        event.changes.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    json!({
        "id": delivery.to_string(),
        "kind": kind,
        "cursor": EventCursor::of(event).encode(),
        "at": format_at(event.at),
        "caseId": event.case_id.map(|c| ids::encode(Kind::Case, c.0).0),
        "caseNumber": event.case_number,
        "actor": actor,
        "changedFields": changed,
    })
    .to_string()
}

/// Lowercase hex HMAC-SHA256 of `"<timestamp>.<body>"` keyed with `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new(); // HMAC takes keys of any length: never reached.
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("{:x}", mac.finalize().into_bytes())
}

/// A transport error in a few words (reqwest's chain, without the URL's query).
fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = what.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_documented_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            format!("{:x}", mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(sign("Jefe", 1, "x"), {
            let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
            mac.update(b"1.x");
            format!("{:x}", mac.finalize().into_bytes())
        });
    }
}
