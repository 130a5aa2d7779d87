//! Embedded PostgreSQL: a private cluster that casefile creates and runs itself.
//!
//! When no `DATABASE_URL` is configured, casefile keeps its own PostgreSQL cluster next to
//! its data: [`EmbeddedPostgres::start`] finds the machine's PostgreSQL binaries, creates
//! the cluster with `initdb` the first time, and runs the postmaster as a child process
//! that listens on a Unix socket inside the cluster folder only (no TCP port at all).
//! A second casefile process on the same data dir (the CLI while `serve` runs, say)
//! attaches to the running postmaster instead of starting another one.
//!
//! # Where the cluster lives
//! - Normally in `<data dir>/pg` (the socket, `.s.PGSQL.5432`, and the server log,
//!   `postgres.log`, are in that folder too).
//! - When casefile runs as root, PostgreSQL must run as an unprivileged OS user (`initdb`
//!   and `postgres` refuse root): the cluster belongs to the `postgres` OS user. When that
//!   user cannot reach the data dir (a checkout under `/root`, say), the cluster is kept in
//!   `/var/lib/casefile/clusters/<16 hex chars of sha256(canonical data dir)>` (or
//!   `/var/tmp/casefile-<same hash>` when `/var/lib` is not writable), so every later start
//!   and the CLI find it again.
//! - An existing cluster is always used where it is, and run as the OS user that owns it.
//!
//! # Lifetime of the server
//! The postmaster is spawned from a dedicated thread that lives exactly as long as the
//! child. On Linux the child asks the kernel (`PR_SET_PDEATHSIG`) for a `SIGINT`, which is
//! PostgreSQL's fast shutdown, when that thread dies, so a casefile process that dies,
//! even by `SIGKILL`, leaves no PostgreSQL behind. The postmaster runs in its own process
//! group, so Ctrl-C in a terminal reaches casefile only, which then calls
//! [`EmbeddedPostgres::stop`].
//!
//! A postmaster that exits without being asked to (killed, crashed) is started again on
//! the same cluster and socket, with backoff, by a supervising task (see `supervisor`):
//! the URL stays the same, so the pool and the `LISTEN` connection reconnect by themselves.

mod binaries;
mod error;
mod initdb;
mod placement;
mod postmaster;
mod psql;
mod quote;
mod readiness;
mod supervisor;

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

pub use error::EmbeddedError;

use binaries::Binaries;
use error::io_err;
use placement::{Placement, check_socket_path, read_pg_version};
use psql::validate_database_name;
use quote::{percent_encode, sql_literal};
use readiness::{lock_exclusive, wait_for_running};
use supervisor::{Respawn, Supervised};

/// Superuser role that `initdb` creates; every connection uses it.
const ROLE: &str = "casefile";
/// Port number: with `listen_addresses = ''` it only names the socket file.
const PORT: u16 = 5432;
/// Socket file name for [`PORT`].
const SOCKET_FILE: &str = ".s.PGSQL.5432";
/// Lock file inside the data dir that serializes starts of the same cluster.
const LOCK_FILE: &str = "pg.lock";
/// Server log inside the cluster folder.
const LOG_FILE: &str = "postgres.log";

/// A running embedded PostgreSQL cluster: started by this process, or attached to when
/// another casefile process already runs it.
///
/// Call [`stop`](Self::stop) before exiting. When the value is dropped without `stop`, a
/// server this process owns is sent a fast-shutdown request without waiting for it.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    cluster_dir: PathBuf,
    socket_dir: PathBuf,
    log: PathBuf,
    binaries: Binaries,
    server: Option<Supervised>,
}

impl EmbeddedPostgres {
    /// Use the cluster for `data_dir` (casefile's data dir, e.g. `./.casefile`): attach to
    /// it when a postmaster already serves it (another casefile process), otherwise run
    /// `initdb` (the first time) and start it, then wait until it accepts connections.
    ///
    /// `data_dir` is created when missing. Concurrent starts on the same data dir are
    /// serialized by a lock file (`<data_dir>/pg.lock`), so exactly one of them starts
    /// the server and the others attach.
    pub async fn start(data_dir: &Path) -> Result<Self, EmbeddedError> {
        let began = Instant::now();
        fs::create_dir_all(data_dir).map_err(io_err("create data directory", data_dir))?;
        let data_dir =
            fs::canonicalize(data_dir).map_err(io_err("resolve data directory", data_dir))?;
        // Deterministic for a data dir, so deciding before taking the lock is race-free.
        let placement = Placement::decide(&data_dir).await?;
        let _lock = lock_exclusive(&data_dir.join(LOCK_FILE)).await?;
        let cluster_dir = placement.cluster_dir.clone();
        let socket_dir = cluster_dir.clone();
        check_socket_path(&socket_dir)?;
        let mut binaries = Binaries::find().await?;
        let log = cluster_dir.join(LOG_FILE);

        let attach = |pid: Pid, binaries: Binaries| {
            tracing::info!(
                cluster_dir = %cluster_dir.display(),
                socket_dir = %socket_dir.display(),
                pid = pid.as_raw(),
                elapsed_ms = elapsed_ms(began),
                "attached to running embedded PostgreSQL"
            );
            Self {
                cluster_dir: cluster_dir.clone(),
                socket_dir: socket_dir.clone(),
                log: log.clone(),
                binaries,
                server: None,
            }
        };

        match read_pg_version(&cluster_dir) {
            None => placement.initdb(&binaries).await?,
            Some(cluster_major) => {
                if let Some(pid) = wait_for_running(&cluster_dir, &socket_dir, &log).await? {
                    return Ok(attach(pid, binaries));
                }
                binaries = binaries.for_cluster(&cluster_dir, &cluster_major).await?;
            }
        }

        let respawn = Respawn {
            placement: placement.clone(),
            binaries: binaries.clone(),
            socket_dir: socket_dir.clone(),
            log: log.clone(),
            lock: data_dir.join(LOCK_FILE),
        };
        let server = respawn.start_once_locked().await?;
        let pid = server.pid.as_raw();
        let this = Self {
            cluster_dir: cluster_dir.clone(),
            socket_dir: socket_dir.clone(),
            log: log.clone(),
            binaries,
            server: Some(Supervised::new(server, respawn)),
        };
        tracing::info!(
            cluster_dir = %this.cluster_dir.display(),
            socket_dir = %this.socket_dir.display(),
            pid,
            run_as = placement.run_as.as_ref().map_or("self", |u| u.name.as_str()),
            elapsed_ms = elapsed_ms(began),
            "started embedded PostgreSQL"
        );
        Ok(this)
    }

    /// libpq-style URL of `database` for tokio-postgres (and libpq), e.g.
    /// `postgresql:///casefile?host=/abs/socket/dir&port=5432&user=casefile`.
    ///
    /// The URL names no TCP host: the only host is the absolute socket directory, given
    /// as the `host` parameter (percent-encoded where needed).
    pub fn database_url(&self, database: &str) -> String {
        format!(
            "postgresql:///{}?host={}&port={PORT}&user={ROLE}",
            percent_encode(database.as_bytes(), false),
            percent_encode(self.socket_dir.as_os_str().as_bytes(), true),
        )
    }

    /// Directory holding the server's Unix socket (`.s.PGSQL.5432`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The cluster folder (the PostgreSQL data directory, `PGDATA`).
    pub fn cluster_dir(&self) -> &Path {
        &self.cluster_dir
    }

    /// The server log (`postgres.log` in the cluster folder; casefile appends to it).
    pub fn log_file(&self) -> &Path {
        &self.log
    }

    /// `true` when this process started the postmaster (and therefore stops it).
    pub fn owns_server(&self) -> bool {
        self.server.is_some()
    }

    /// Create database `name` if it does not exist yet (safe to call concurrently).
    pub async fn ensure_database(&self, name: &str) -> Result<(), EmbeddedError> {
        validate_database_name(name)?;
        let literal = sql_literal(name);
        let exists = format!("SELECT 1 FROM pg_database WHERE datname = {literal}");
        let create = format!(
            "SELECT format('CREATE DATABASE %I', {literal}) WHERE NOT EXISTS ({exists})\n\\gexec\n"
        );
        match self.psql("postgres", &create).await {
            Ok(_) => Ok(()),
            // Another process may have created it between the check and the CREATE.
            Err(err) => match self.psql("postgres", &exists).await {
                Ok(out) if out.trim() == "1" => Ok(()),
                _ => Err(err),
            },
        }
    }

    /// Run `sql` (one or more statements, psql meta-commands allowed) with `psql` on
    /// `database` as the `casefile` superuser, stopping at the first error.
    ///
    /// Returns what psql printed: rows unaligned (`|` between columns), without headers
    /// and footers, and without the trailing newline.
    pub async fn psql(&self, database: &str, sql: &str) -> Result<String, EmbeddedError> {
        psql::run(&self.binaries.client("psql")?, &self.socket_dir, database, sql).await
    }

    /// Fast shutdown (`SIGINT` to the postmaster) and wait until it has exited, when
    /// [`owns_server`](Self::owns_server); a no-op otherwise (the owner keeps serving).
    ///
    /// Falls back to an immediate shutdown (`SIGQUIT`) after 60 s and to `SIGKILL` after
    /// 10 more seconds.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        let Some(server) = self.server.take() else {
            tracing::debug!(
                cluster_dir = %self.cluster_dir.display(),
                "detached from embedded PostgreSQL"
            );
            return Ok(());
        };
        let began = Instant::now();
        let server = server.stop().await?;
        tracing::info!(
            cluster_dir = %self.cluster_dir.display(),
            pid = server.pid.as_raw(),
            elapsed_ms = elapsed_ms(began),
            "stopped embedded PostgreSQL"
        );
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Some(server) = self.server.take().and_then(|server| server.abandon()) {
            tracing::info!(
                cluster_dir = %self.cluster_dir.display(),
                pid = server.pid.as_raw(),
                "embedded PostgreSQL dropped without stop(): requesting fast shutdown"
            );
            let _ = signal::kill(server.pid, Signal::SIGINT);
        }
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_can_be_shared_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmbeddedPostgres>();
        assert_send_sync::<EmbeddedError>();
    }
}
