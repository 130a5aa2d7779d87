//! The live side of the change record: one dedicated `LISTEN` connection per server, and
//! the fan-out of each tenant's new events to every local subscriber.
//!
//! Every append to the log ends with a `NOTIFY` on [`events::CHANNEL`] carrying the
//! tenant and its last sequence, delivered by PostgreSQL when the transaction commits.
//! The [`EventHub`] keeps, for each tenant that has local subscribers, the last sequence
//! it handed out. On a notification past it, one reader task reads the tenant's new events
//! once (one statement per wake-up and tenant, however many subscribers) and broadcasts
//! them. Because a tenant's events commit in sequence order, "after the last sequence"
//! never skips one that commits late.
//!
//! A subscriber ([`EventHub::subscribe`]) first joins the broadcast, then replays from the
//! log what lies after its cursor, then follows the broadcast, skipping what the replay
//! already gave: no gap and no duplicate. A subscriber that falls behind the broadcast's
//! buffer reads the missed part from the log again.
//!
//! The `LISTEN` connection is not from the request pool. When it drops it reconnects with
//! backoff and then wakes every tenant with subscribers, which reads whatever was missed.
//! It also checks itself and wakes every tenant every [`HEARTBEAT`], so a connection that
//! died silently costs at most that much latency, never an event.

pub mod cursor;

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use tokio::sync::{broadcast, mpsc, watch};

use crate::db::{DbPool, pool};
use crate::error::{AppError, AppResult};
use crate::models::events::{self, Event};
use crate::models::ids::TenantId;
use crate::models::live;

/// How many events one read takes from the log.
const READ_BATCH: i64 = 500;
/// How many events a tenant's broadcast keeps for subscribers that are behind.
const BROADCAST_BUFFER: usize = 4096;
/// How often the `LISTEN` connection is checked and every tenant read again.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// The longest wait between two attempts to connect the `LISTEN` connection.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The fan-out of the change record to this server's subscribers. Cheap to clone.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

struct Inner {
    db: DbPool,
    feeds: Mutex<HashMap<TenantId, Feed>>,
    wake: mpsc::UnboundedSender<Wake>,
    reads: AtomicU64,
    follows: AtomicU64,
    listening: AtomicBool,
    connects: AtomicU64,
    /// Counts notifications of any tenant (and reconnects, heartbeats): the delivery
    /// worker's cheap wake-up signal.
    signal: watch::Sender<u64>,
}

/// One tenant's broadcast and the last sequence it handed out.
struct Feed {
    tx: broadcast::Sender<Arc<Event>>,
    last: i64,
}

enum Wake {
    Tenant(TenantId, i64),
    All,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EventHub {
    /// A hub reading the log through `db`; it hears of new events once [`EventHub::listen`]
    /// has started its `LISTEN` connection.
    pub fn new(db: DbPool) -> Self {
        let (wake, woken) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            db,
            feeds: Mutex::new(HashMap::new()),
            wake,
            reads: AtomicU64::new(0),
            follows: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            signal: watch::Sender::new(0),
        });
        tokio::spawn(read_loop(Arc::downgrade(&inner), woken));
        Self { inner }
    }

    /// Starts the dedicated `LISTEN` connection to `database_url` (reconnecting with backoff
    /// for as long as the hub lives).
    pub fn listen(&self, database_url: String) {
        tokio::spawn(listen_loop(Arc::downgrade(&self.inner), database_url));
    }

    /// How many reads of the log the hub has made for its broadcasts (not the replays).
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(Ordering::Relaxed)
    }

    /// How many subscriptions have fixed their start in the log: each one gets every event
    /// that commits after this count moves past it (tests wait on it instead of sleeping).
    pub fn follows(&self) -> u64 {
        self.inner.follows.load(Ordering::Relaxed)
    }

    /// Whether the `LISTEN` connection is up.
    pub fn is_listening(&self) -> bool {
        self.inner.listening.load(Ordering::Relaxed)
    }

    /// How many times the `LISTEN` connection has been (re)established.
    pub fn connects(&self) -> u64 {
        self.inner.connects.load(Ordering::Relaxed)
    }

    /// A receiver that sees a change whenever any tenant's log may have grown: on every
    /// notification, after each (re)connect and at each heartbeat. It carries no data;
    /// the delivery worker ([`crate::delivery`]) waits on it instead of polling.
    pub fn wakeups(&self) -> watch::Receiver<u64> {
        self.inner.signal.subscribe()
    }

    /// The tenant's last sequence now (0 before its first event).
    pub async fn head(&self, tenant: TenantId) -> AppResult<i64> {
        let mut conn = pool::get(&self.inner.db).await?;
        Ok(events::head(&mut conn, tenant).await?.last_sequence)
    }

    /// The tenant's events after `after` (or, with `None`, after the head as it is now),
    /// from the log first, then live, in sequence order without gaps or repeats.
    pub async fn subscribe(
        &self,
        tenant: TenantId,
        after: Option<i64>,
    ) -> AppResult<impl Stream<Item = Arc<Event>> + Send + 'static + use<>> {
        let rx = self.join(tenant).await?;
        // After joining: whatever commits from here on reaches the broadcast or the replay.
        let start = match after {
            Some(sequence) => sequence,
            None => self.head(tenant).await?,
        };
        self.inner.follows.fetch_add(1, Ordering::Relaxed);
        let state = Follow {
            db: self.inner.db.clone(),
            tenant,
            rx,
            last: start,
            buffer: VecDeque::new(),
            replay: after.is_some(),
        };
        Ok(futures_util::stream::unfold(state, Follow::next))
    }

    /// A receiver of the tenant's broadcast, creating the feed when it has none.
    async fn join(&self, tenant: TenantId) -> AppResult<broadcast::Receiver<Arc<Event>>> {
        if let Some(feed) = lock(&self.inner.feeds).get(&tenant) {
            return Ok(feed.tx.subscribe());
        }
        let head = self.head(tenant).await?;
        let rx = {
            let mut feeds = lock(&self.inner.feeds);
            let feed = feeds
                .entry(tenant)
                .or_insert_with(|| Feed { tx: broadcast::channel(BROADCAST_BUFFER).0, last: head });
            feed.tx.subscribe()
        };
        // Events that committed between the head read and now had no feed to wake.
        let _ = self.inner.wake.send(Wake::Tenant(tenant, i64::MAX));
        Ok(rx)
    }
}

/// A subscriber's position: replaying from the log, or following the broadcast.
struct Follow {
    db: DbPool,
    tenant: TenantId,
    rx: broadcast::Receiver<Arc<Event>>,
    last: i64,
    buffer: VecDeque<Arc<Event>>,
    replay: bool,
}

impl Follow {
    async fn next(mut self) -> Option<(Arc<Event>, Self)> {
        loop {
            if let Some(event) = self.buffer.pop_front() {
                return Some((event, self));
            }
            if self.replay {
                let rows = match self.read().await {
                    Ok(rows) => rows,
                    Err(error) => {
                        tracing::warn!(%error, "reading the change record for a subscriber");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                };
                self.replay = rows.len() as i64 == READ_BATCH;
                if let Some(last) = rows.last() {
                    self.last = last.sequence;
                }
                self.buffer.extend(rows.into_iter().map(Arc::new));
                continue;
            }
            match self.rx.recv().await {
                Ok(event) if event.sequence <= self.last => continue,
                Ok(event) if event.sequence == self.last + 1 => {
                    self.last = event.sequence;
                    return Some((event, self));
                }
                // A hole (cannot happen while the hub reads in order) or a subscriber too
                // slow for the buffer: the log has what is missing.
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => self.replay = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    async fn read(&self) -> AppResult<Vec<Event>> {
        let mut conn = pool::get(&self.db).await?;
        Ok(events::after(&mut conn, self.tenant, self.last, READ_BATCH).await?)
    }
}

/// Reads each woken tenant's new events once and broadcasts them.
async fn read_loop(hub: std::sync::Weak<Inner>, mut woken: mpsc::UnboundedReceiver<Wake>) {
    while let Some(first) = woken.recv().await {
        let Some(inner) = hub.upgrade() else { return };
        let mut all = false;
        let mut tenants: HashMap<TenantId, i64> = HashMap::new();
        let mut note = |wake: Wake| match wake {
            Wake::All => all = true,
            Wake::Tenant(tenant, sequence) => {
                let seen = tenants.entry(tenant).or_insert(sequence);
                *seen = (*seen).max(sequence);
            }
        };
        note(first);
        while let Ok(wake) = woken.try_recv() {
            note(wake);
        }
        let targets: Vec<TenantId> = {
            let mut feeds = lock(&inner.feeds);
            // Tenants whose subscribers have all gone need no more reads.
            feeds.retain(|_, feed| feed.tx.receiver_count() > 0);
            if all {
                feeds.keys().copied().collect()
            } else {
                // Only past what this server handed out already.
                tenants
                    .into_iter()
                    .filter(|(t, sequence)| feeds.get(t).is_some_and(|f| *sequence > f.last))
                    .map(|(t, _)| t)
                    .collect()
            }
        };
        for tenant in targets {
            if let Err(error) = read_tenant(&inner, tenant).await {
                tracing::warn!(%error, tenant = %tenant, "reading new events for subscribers");
                // Try again soon: the events are in the log.
                let wake = inner.wake.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let _ = wake.send(Wake::Tenant(tenant, i64::MAX));
                });
            }
        }
    }
}

async fn read_tenant(inner: &Inner, tenant: TenantId) -> AppResult<()> {
    let mut conn = pool::get(&inner.db).await?;
    loop {
        let Some(last) = lock(&inner.feeds).get(&tenant).map(|f| f.last) else { return Ok(()) };
        inner.reads.fetch_add(1, Ordering::Relaxed);
        let rows = events::after(&mut conn, tenant, last, READ_BATCH).await?;
        let full = rows.len() as i64 == READ_BATCH;
        {
            let mut feeds = lock(&inner.feeds);
            let Some(feed) = feeds.get_mut(&tenant) else { return Ok(()) };
            for event in rows {
                feed.last = event.sequence;
                // No receiver left is fine: the feed goes at the next wake-up.
                let _ = feed.tx.send(Arc::new(event));
            }
        }
        if !full {
            return Ok(());
        }
    }
}

/// Keeps one `LISTEN` connection up and turns its notifications into wake-ups.
async fn listen_loop(hub: std::sync::Weak<Inner>, url: String) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some(inner) = hub.upgrade() else { return };
        match listen_once(&inner, &url).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(error) => tracing::warn!(%error, "the LISTEN connection failed"),
        }
        inner.listening.store(false, Ordering::Relaxed);
        drop(inner);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Connects, listens and forwards notifications until the connection drops.
async fn listen_once(inner: &Inner, url: &str) -> Result<(), AppError> {
    let mut conn = pool::connect(url)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("LISTEN connection: {e}")))?;
    live::listen(&mut conn).await?;
    inner.listening.store(true, Ordering::Relaxed);
    inner.connects.fetch_add(1, Ordering::Relaxed);
    tracing::info!("listening for new events");
    // Whatever committed while no connection listened is in the log.
    let _ = inner.wake.send(Wake::All);
    inner.signal.send_modify(|n| *n = n.wrapping_add(1));
    loop {
        let next = {
            let mut stream = pin!(conn.notifications_stream());
            tokio::time::timeout(HEARTBEAT, stream.next()).await
        };
        match next {
            Ok(Some(Ok(notification))) => {
                inner.signal.send_modify(|n| *n = n.wrapping_add(1));
                if let Some((tenant, sequence)) = parse_payload(&notification.payload) {
                    let _ = inner.wake.send(Wake::Tenant(tenant, sequence));
                }
            }
            Ok(Some(Err(error))) => return Err(error.into()),
            Ok(None) => {
                return Err(AppError::Internal(anyhow::anyhow!("the LISTEN connection closed")));
            }
            Err(_) => {
                // Quiet for a while: check the connection, and read again to be sure.
                tokio::time::timeout(HEARTBEAT, live::ping(&mut conn)).await.map_err(|_| {
                    AppError::Internal(anyhow::anyhow!("LISTEN connection stalled"))
                })??;
                let _ = inner.wake.send(Wake::All);
                inner.signal.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }
}

/// `<tenant uuid>:<last sequence>`.
fn parse_payload(payload: &str) -> Option<(TenantId, i64)> {
    let (tenant, sequence) = payload.split_once(':')?;
    Some((TenantId(tenant.parse().ok()?), sequence.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_a_tenant_and_a_sequence() {
        let tenant = uuid::Uuid::now_v7();
        assert_eq!(parse_payload(&format!("{tenant}:42")), Some((TenantId(tenant), 42)));
        assert_eq!(parse_payload("nonsense"), None);
        assert_eq!(parse_payload(&format!("{tenant}:x")), None);
    }
}
