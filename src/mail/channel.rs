//! The mail channel on the delivery worker (`crate::delivery`): one cursor `mail` per
//! tenant, a [`Handler`] that composes and sends each event's mails, and a keeper that
//! opens the cursor of every tenant.
//!
//! Mail on or off is the server's configuration (`CASEFILE_SMTP_URL`):
//! - **on**: every tenant gets its `mail` cursor at its head when the server starts (and
//!   a tenant created later from the start of its log, checked every [`KEEP_EVERY`]);
//!   from there every mail is sent at least once, in order per tenant, retried with
//!   backoff while the SMTP server is unreachable; a restart skips none and repeats at
//!   most the event in flight (its `Message-ID` shows the repeat).
//! - **off**: a server started without it removes the `mail` cursors, so turning mail on
//!   later starts from that moment: nothing is sent for what happened while it was off.
//!   (Every replica should have the same setting.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::{DbPool, pool};
use crate::delivery::{self, Attempt, Handler, Outcome};
use crate::error::AppResult;
use crate::mail::{Mailer, compose};
use crate::models::events::Event;
use crate::models::mail::{self, CHANNEL};

/// How often the keeper opens the cursors of tenants created since.
pub const KEEP_EVERY: Duration = Duration::from_secs(10);

/// The waits between attempts of a mail that could not be sent.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// The first wait; it doubles with each failure in a row…
    pub base: Duration,
    /// …up to this.
    pub cap: Duration,
}

impl Default for Retry {
    /// 1 s, doubling, at most 5 minutes.
    fn default() -> Self {
        Retry { base: Duration::from_secs(1), cap: Duration::from_secs(300) }
    }
}

/// Sends the mails of each event of a tenant's `mail` channel.
pub struct MailHandler {
    db: DbPool,
    mailer: Mailer,
    retry: Retry,
    /// The mails of an event being retried that went out already (an event may make
    /// several): not sent again by this server.
    sent: Mutex<HashMap<Uuid, Vec<&'static str>>>,
}

impl MailHandler {
    pub fn new(db: DbPool, mailer: Mailer, retry: Retry) -> Self {
        Self { db, mailer, retry, sent: Mutex::new(HashMap::new()) }
    }

    fn sent(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<&'static str>>> {
        self.sent.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn deliver(&self, attempt: Attempt<'_>, event: &Event) -> Outcome {
        if !compose::concerns(event) {
            return Outcome::Skipped;
        }
        let mails = match self.compose(event).await {
            Ok(mails) => mails,
            Err(error) => {
                return Outcome::Retry {
                    error: format!("reading the mail's facts: {error}"),
                    after: None,
                };
            }
        };
        if mails.is_empty() {
            return Outcome::Skipped;
        }
        for mail in &mails {
            if self.sent().get(&event.id).is_some_and(|parts| parts.contains(&mail.part)) {
                continue;
            }
            if let Err(error) = self.mailer.send(mail).await {
                tracing::warn!(%error, tenant = %attempt.tenant, event = %event.id, part = mail.part,
                    attempt = attempt.number, server = self.mailer.server(),
                    "mail not sent: retried with backoff");
                return Outcome::Retry { error: error.to_string(), after: None };
            }
            tracing::info!(tenant = %attempt.tenant, event = %event.id, part = mail.part,
                recipients = mail.to.len(), "mail sent");
            self.sent().entry(event.id).or_default().push(mail.part);
        }
        self.sent().remove(&event.id);
        Outcome::Done
    }

    async fn compose(&self, event: &Event) -> AppResult<Vec<compose::Mail>> {
        let mut conn = pool::get(&self.db).await?;
        Ok(compose::compose(&mut conn, event).await?)
    }
}

impl Handler for MailHandler {
    fn kind(&self) -> &'static str {
        CHANNEL
    }

    fn handle<'a>(&'a self, attempt: Attempt<'a>, event: &'a Event) -> BoxFuture<'a, Outcome> {
        self.deliver(attempt, event).boxed()
    }

    fn backoff(&self, failures: u32) -> Duration {
        delivery::backoff(self.retry.base, self.retry.cap, failures)
    }
}

/// Sets the mail channel up for this server: with a mailer, opens every tenant's cursor,
/// keeps opening those of new tenants until `stop`, and returns the handler for the
/// delivery worker; without one, removes the cursors (see the module documentation).
pub async fn start(
    db: &DbPool,
    mailer: Option<Mailer>,
    retry: Retry,
    stop: watch::Receiver<bool>,
) -> AppResult<Option<Arc<MailHandler>>> {
    let mut conn = pool::get(db).await?;
    let Some(mailer) = mailer else {
        let closed = mail::close_cursors(&mut conn).await?;
        tracing::info!(closed, "mail is off (CASEFILE_SMTP_URL is not set)");
        return Ok(None);
    };
    let since = mail::now(&mut conn).await?;
    let opened = mail::open_cursors(&mut conn, since).await?;
    tracing::info!(server = mailer.server(), opened, "mail is on");
    drop(conn);
    tokio::spawn(keep(db.clone(), since, stop));
    Ok(Some(Arc::new(MailHandler::new(db.clone(), mailer, retry))))
}

/// Opens the cursors of tenants created since `since`, every [`KEEP_EVERY`] until `stop`.
async fn keep(db: DbPool, since: chrono::DateTime<chrono::Utc>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            () = tokio::time::sleep(KEEP_EVERY) => {}
        }
        let opened = match pool::get(&db).await {
            Ok(mut conn) => mail::open_cursors(&mut conn, since).await.map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        match opened {
            Ok(0) => {}
            Ok(opened) => tracing::info!(opened, "mail: cursors of new tenants opened"),
            Err(error) => tracing::warn!(%error, "mail: opening the cursors of new tenants failed"),
        }
    }
}
