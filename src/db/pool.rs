//! The deadpool pool of `diesel-async` connections.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use diesel::connection::InstrumentationEvent;
use diesel_async::{
    AsyncConnection, AsyncPgConnection,
    pooled_connection::{
        AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
        deadpool::Pool,
    },
};
use futures_util::FutureExt;

use crate::error::{AppError, AppResult};
use crate::models::database;

pub type DbPool = Pool<AsyncPgConnection>;
type Pooled = deadpool::managed::Object<AsyncDieselConnectionManager<AsyncPgConnection>>;

/// A connection taken from the pool; back to the pool when dropped. Taken for an
/// operation ([`get_witnessed`]), it tells the operation's [`LossWitness`] when it comes
/// back broken.
pub struct DbConn {
    conn: Pooled,
    witness: Option<LossWitness>,
}

impl std::ops::Deref for DbConn {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for DbConn {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        &mut self.conn
    }
}

impl DbConn {
    /// The result of statements run on this connection, with an internal error turned
    /// into `UNAVAILABLE` when the connection's session is gone: the database ended it
    /// under the statement (see [`LossWitness`]), which a `SELECT 1` on the same
    /// connection tells for certain (the closed connection may not be noticed yet). For
    /// endpoints that answer an [`AppError`] alone; GraphQL operations do the same through
    /// their witness.
    pub async fn settle<T>(&mut self, result: AppResult<T>) -> AppResult<T> {
        match result {
            Err(error) if error.code() == crate::error::Code::Internal => {
                if PoolableConnection::is_broken(&mut *self.conn) || !responds(&mut self.conn).await
                {
                    Err(AppError::Unavailable(format!("session ended under a statement: {error}")))
                } else {
                    Err(error)
                }
            }
            other => other,
        }
    }
}

/// How long a check that the database still answers may take before it counts as no.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether the database answers now: a connection from the pool runs `SELECT 1` within
/// [`PROBE_TIMEOUT`]. Asked only after an internal error (see [`LossWitness`]).
pub async fn answers(pool: &DbPool) -> bool {
    let probe = async {
        match pool.get().await {
            Ok(mut conn) => responds(&mut conn).await,
            Err(_) => false,
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe).await.unwrap_or(false)
}

/// Whether the connection's session still runs a `SELECT 1`, within [`PROBE_TIMEOUT`].
async fn responds(conn: &mut AsyncPgConnection) -> bool {
    matches!(tokio::time::timeout(PROBE_TIMEOUT, database::ping(conn)).await, Ok(Ok(())))
}

impl Drop for DbConn {
    fn drop(&mut self) {
        if let Some(witness) = &self.witness
            && PoolableConnection::is_broken(&mut *self.conn)
        {
            witness.note();
        }
    }
}

/// Whether a connection of one operation came back broken: its session ended under a
/// statement (PostgreSQL stopping says so with a `FATAL` error, which diesel reports
/// without its kind; the connection is closed after it) or it was left inside a
/// transaction. The operation's errors then say `UNAVAILABLE`, not `INTERNAL`. The
/// connection's task may notice the close only after the connection went back to the
/// pool: an operation that failed `INTERNAL` without its witness told asks whether the
/// database still [`answers`] before it answers.
#[derive(Clone, Default, Debug)]
pub struct LossWitness(Arc<AtomicBool>);

impl LossWitness {
    /// Whether a connection taken with this witness came back broken.
    pub fn saw_loss(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Tells the witness a connection came back broken.
    pub fn note(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How long one host of the URL gets to accept the TCP connection, unless the URL sets
/// `connect_timeout` itself (a host that drops packets must not hold a request up).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a whole connect (every host of a multi-host URL, the startup and the
/// `target_session_attrs` check) may take before it counts as failed.
pub const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens one connection to `url` (a libpq-style URL or key-value string; several hosts,
/// `host=a,b` or `postgresql://u@a:1,b:2/db`, and `target_session_attrs=read-write` are
/// understood, as tokio-postgres reads them), with [`CONNECT_TIMEOUT`] per host and
/// [`ESTABLISH_TIMEOUT`] in all. Every connection casefile opens goes through here.
pub async fn connect(url: &str) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|e| diesel::ConnectionError::InvalidConnectionUrl(format!("{e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let connecting = async {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        AsyncPgConnection::try_from_client_and_connection(client, connection).await
    };
    match tokio::time::timeout(ESTABLISH_TIMEOUT, connecting).await {
        Ok(result) => result,
        Err(_) => Err(diesel::ConnectionError::BadConnection(format!(
            "no connection within {} s",
            ESTABLISH_TIMEOUT.as_secs()
        ))),
    }
}

/// Opens a pool whose connections each run with `statement_timeout`, and whose callers
/// wait at most `wait` for a free connection.
pub fn build(
    url: &str,
    size: usize,
    wait: Duration,
    statement_timeout: Duration,
) -> anyhow::Result<DbPool> {
    build_counting(url, size, wait, statement_timeout, None)
}

/// Like [`build`]; with a counter, every SQL statement any connection of the pool runs
/// after its setup adds one to it (tests pin how many statements a request runs).
pub fn build_counting(
    url: &str,
    size: usize,
    wait: Duration,
    statement_timeout: Duration,
    statements: Option<Arc<AtomicU64>>,
) -> anyhow::Result<DbPool> {
    let mut config = ManagerConfig::default();
    // No test query on every checkout (it doubled the statements of a request); a dead
    // connection fails its first statement and is then dropped by the pool.
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let statements = statements.clone();
        async move {
            let mut conn = connect(url).await?;
            database::set_statement_timeout(&mut conn, statement_timeout)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            if let Some(counter) = statements {
                conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
                    if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
            Ok(conn)
        }
        .boxed()
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    let pool = Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool::Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(ESTABLISH_TIMEOUT + Duration::from_secs(1)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()?;
    Ok(pool)
}

/// Takes a connection from the pool; a wait past the limit is `PoolTimeout`.
pub async fn get(pool: &DbPool) -> AppResult<DbConn> {
    get_witnessed(pool, None).await
}

/// Like [`get`], for an operation: when the connection comes back broken, `witness`
/// is told.
pub async fn get_witnessed(pool: &DbPool, witness: Option<&LossWitness>) -> AppResult<DbConn> {
    let conn = pool.get().await.map_err(AppError::from)?;
    Ok(DbConn { conn, witness: witness.cloned() })
}
