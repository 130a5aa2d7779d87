//! Delivery of the change record to the outside world (webhooks, mail), one *channel* at
//! a time, with a durable cursor per (tenant, channel) in `delivery_cursors`.
//!
//! A channel is named `<kind>` or `<kind>:<key>` (`mail`, `webhook:<uuid>`); a
//! [`Handler`] serves one kind. [`models::delivery::open`] creates a channel's cursor at
//! the tenant's head as it is then: no history is replayed. The worker ([`spawn`]) wakes
//! on every notification of the change record ([`crate::events::EventHub::wakeups`]), and
//! at least every [`Config::poll`] and whenever a retry falls due; it claims a due channel
//! with events after its cursor (a lease, taken with `FOR UPDATE SKIP LOCKED`, renewed at
//! each step), reads the events after the cursor in sequence order, in batches, hands
//! them one by one to the channel's handler and moves the cursor past each event the
//! handler has handled. The work runs beside the mutations: it never locks what a
//! mutation writes, so a slow or failing receiver never delays one.
//!
//! # Guarantees
//!
//! - **Only committed changes.** The change record holds only events of committed
//!   transactions, and a tenant's events commit in sequence order, so "after the cursor"
//!   never skips one that commits late and never sees one that rolled back.
//! - **At least once, in order per channel.** The cursor moves only after the handler
//!   answered [`Outcome::Done`] (or [`Outcome::Skipped`], [`Outcome::GiveUp`]); a failure
//!   ([`Outcome::Retry`]) leaves the cursor on the event, which is retried after an
//!   exponential backoff ([`Handler::backoff`]) before any later event of the channel.
//! - **At most one repeat after a crash**: the cursor is written after each event that
//!   had an effect, so a server that dies (or loses its lease) mid-way repeats at most the
//!   one event that was in flight. A restart, or another server on the same database,
//!   resumes from the stored cursor: nothing is skipped.
//! - **One server per channel at a time**: the lease ([`Config::lease`]) is renewed at
//!   every step; a server that stops answering loses it when it runs out, and another
//!   server takes the channel over. A worker that finds its lease lost stops at once.
//! - **Pausing**: [`Outcome::Pause`] keeps the cursor on the event and parks the channel
//!   until [`models::delivery::resume`] (e.g. a webhook disabled after too many failures
//!   and enabled again resumes exactly where it stopped).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::future::BoxFuture;
use tokio::sync::watch;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::db::{DbPool, pool};
use crate::error::AppResult;
use crate::models::delivery::{self as cursors, Cursor};
use crate::models::events::Event;
use crate::models::ids::TenantId;

/// What a handler did with one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled (sent): the cursor moves past it, and is written at once.
    Done,
    /// Nothing to do for this channel (another kind of event): the cursor moves past it
    /// (written with the next write, so skipping costs no statement of its own).
    Skipped,
    /// Not handled: tried again after `after` (`None`: [`Handler::backoff`]), before any
    /// later event of the channel.
    Retry { error: String, after: Option<Duration> },
    /// Can never be handled: logged, and the cursor moves past it.
    GiveUp { error: String },
    /// Stop the channel on this event until it is resumed ([`models::delivery::resume`]).
    Pause { reason: String },
}

/// The event's place in its channel, as a handler sees it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub tenant: TenantId,
    pub channel: &'a str,
    /// 1 at the first attempt of this event, 2 at the first retry, …
    pub number: u32,
}

/// Delivers the events of one kind of channel (`mail`, `webhook`).
pub trait Handler: Send + Sync + 'static {
    /// The kind of channel it serves: channels named `<kind>` or `<kind>:<key>`.
    fn kind(&self) -> &'static str;

    /// Handles one event of the channel (called in sequence order, one at a time per
    /// channel). Must not panic; a slow call holds only its own channel.
    fn handle<'a>(&'a self, attempt: Attempt<'a>, event: &'a Event) -> BoxFuture<'a, Outcome>;

    /// The wait before attempt `failures + 1`, after `failures` failures in a row:
    /// by default 1 s doubling per failure, at most 10 minutes.
    fn backoff(&self, failures: u32) -> Duration {
        backoff(Duration::from_secs(1), Duration::from_secs(600), failures)
    }
}

/// `base · 2^(failures − 1)`, at most `cap`.
pub fn backoff(base: Duration, cap: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(20);
    base.saturating_mul(factor).min(cap)
}

/// How the worker runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The longest sleep without a wake-up (a fallback: notifications wake it sooner).
    pub poll: Duration,
    /// How long a claim holds a channel without a step (renewed at each step).
    pub lease: Duration,
    /// Events read from the log at once.
    pub batch: i64,
    /// Channels worked at the same time by this server.
    pub concurrency: usize,
    /// How long a stopping worker waits for the events in flight before cutting them.
    pub shutdown_grace: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            poll: Duration::from_secs(5),
            lease: Duration::from_secs(120),
            batch: 200,
            concurrency: 8,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

struct Worker {
    db: DbPool,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    kinds: Vec<&'static str>,
    config: Config,
    id: Uuid,
    stop: watch::Receiver<bool>,
}

/// Starts the delivery worker for these handlers until `stop` turns true (`None`
/// without handlers). `wakeups` is [`crate::events::EventHub::wakeups`].
pub fn spawn(
    db: DbPool,
    wakeups: watch::Receiver<u64>,
    handlers: Vec<Arc<dyn Handler>>,
    config: Config,
    stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if handlers.is_empty() {
        return None;
    }
    let kinds = handlers.iter().map(|h| h.kind()).collect();
    let handlers = handlers.into_iter().map(|h| (h.kind(), h)).collect();
    let worker = Arc::new(Worker { db, handlers, kinds, config, id: Uuid::now_v7(), stop });
    Some(tokio::spawn(run(worker, wakeups)))
}

async fn run(worker: Arc<Worker>, mut wakeups: watch::Receiver<u64>) {
    tracing::info!(worker = %worker.id, kinds = ?worker.kinds, "delivery worker started");
    let mut running: JoinSet<()> = JoinSet::new();
    let mut stop = worker.stop.clone();
    let mut hub_alive = true;
    while !*stop.borrow() {
        let mut wait = worker.config.poll;
        while running.len() < worker.config.concurrency {
            match worker.claim().await {
                Ok(Some(cursor)) => {
                    running.spawn(worker.clone().work(cursor));
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "delivery: claiming a channel failed");
                    wait = Duration::from_secs(1);
                    break;
                }
            }
        }
        if running.len() < worker.config.concurrency
            && let Ok(Some(at)) = worker.next_due().await
        {
            let until = (at - Utc::now()).to_std().unwrap_or_default();
            wait = wait.min(until.max(Duration::from_millis(20)));
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            changed = wakeups.changed(), if hub_alive => hub_alive = changed.is_ok(),
            () = tokio::time::sleep(wait) => {}
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    // Let the events in flight finish (each task stops after its event), then cut.
    let drained = tokio::time::timeout(worker.config.shutdown_grace, async {
        while running.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        running.shutdown().await;
    }
    if let Ok(mut conn) = pool::get(&worker.db).await {
        let _ = cursors::release(&mut conn, worker.id, None).await;
    }
    tracing::info!(worker = %worker.id, "delivery worker stopped");
}

impl Worker {
    async fn claim(&self) -> AppResult<Option<Cursor>> {
        let mut conn = pool::get(&self.db).await?;
        Ok(cursors::claim(&mut conn, &self.kinds, self.id, self.config.lease).await?)
    }

    async fn next_due(&self) -> AppResult<Option<chrono::DateTime<Utc>>> {
        let mut conn = pool::get(&self.db).await?;
        Ok(cursors::next_due(&mut conn, &self.kinds).await?)
    }

    /// Works one claimed channel until it has nothing left, fails, pauses or the worker stops.
    async fn work(self: Arc<Self>, cursor: Cursor) {
        if let Err(error) = self.work_inner(&cursor).await {
            tracing::warn!(%error, channel = %cursor.channel, tenant = %cursor.tenant_id,
                "delivery: a channel's run failed; it is taken again later");
            if let Ok(mut conn) = pool::get(&self.db).await {
                let _ = cursors::release(
                    &mut conn,
                    self.id,
                    Some((&cursor.tenant_id, &cursor.channel)),
                )
                .await;
            }
        }
    }

    async fn work_inner(&self, cursor: &Cursor) -> AppResult<()> {
        let Some(handler) = self.handlers.get(cursors::channel_kind(&cursor.channel)) else {
            return Ok(());
        };
        let lease = self.config.lease;
        let mut position = cursor.sequence;
        let mut written = cursor.sequence;
        let mut failures = u32::try_from(cursor.attempts).unwrap_or(0);
        loop {
            let events = {
                let mut conn = pool::get(&self.db).await?;
                let at = Cursor { sequence: position, ..cursor.clone() };
                cursors::pending(&mut conn, &at, self.config.batch).await?
            };
            if events.is_empty() || *self.stop.borrow() {
                let mut conn = pool::get(&self.db).await?;
                if position > written {
                    cursors::advance(&mut conn, cursor, self.id, position, lease).await?;
                }
                cursors::release(&mut conn, self.id, Some((&cursor.tenant_id, &cursor.channel)))
                    .await?;
                return Ok(());
            }
            for event in &events {
                let attempt = Attempt {
                    tenant: cursor.tenant_id,
                    channel: &cursor.channel,
                    number: failures + 1,
                };
                let outcome = handler.handle(attempt, event).await;
                if outcome == Outcome::Skipped {
                    position = event.sequence;
                    continue;
                }
                let mut conn = pool::get(&self.db).await?;
                let channel = Some((&cursor.tenant_id, cursor.channel.as_str()));
                match outcome {
                    Outcome::Skipped => {}
                    Outcome::Done | Outcome::GiveUp { .. } => {
                        if let Outcome::GiveUp { error } = &outcome {
                            tracing::warn!(%error, channel = %cursor.channel,
                                sequence = event.sequence, "delivery: an event was given up");
                        }
                        position = event.sequence;
                        failures = 0;
                        if !cursors::advance(&mut conn, cursor, self.id, position, lease).await? {
                            return Ok(()); // The lease was lost, or the channel is gone.
                        }
                        written = position;
                    }
                    Outcome::Retry { error, after } => {
                        let wait = after.unwrap_or_else(|| handler.backoff(failures + 1));
                        cursors::fail(&mut conn, cursor, self.id, position, wait, &error).await?;
                        return Ok(());
                    }
                    Outcome::Pause { reason } => {
                        if position > written {
                            cursors::advance(&mut conn, cursor, self.id, position, lease).await?;
                        }
                        cursors::pause(&mut conn, cursor.tenant_id, &cursor.channel, &reason)
                            .await?;
                        cursors::release(&mut conn, self.id, channel).await?;
                        return Ok(());
                    }
                }
                if *self.stop.borrow() {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(600));
        assert_eq!(backoff(base, cap, 1), Duration::from_secs(1));
        assert_eq!(backoff(base, cap, 2), Duration::from_secs(2));
        assert_eq!(backoff(base, cap, 5), Duration::from_secs(16));
        assert_eq!(backoff(base, cap, 11), Duration::from_secs(600));
        assert_eq!(backoff(base, cap, u32::MAX), Duration::from_secs(600));
    }
}
