//! Keeping the postmaster this process owns running: when it exits without being asked
//! to (killed, crashed, out of memory), it is started again on the same cluster and the
//! same socket, so the database URL, the pool and the `LISTEN` connection stay valid and
//! recover by themselves.
//!
//! A restart waits a little first, then backs off (250 ms doubling up to
//! [`MAX_BACKOFF`]) while attempts fail: after a `kill -9` of the postmaster its orphaned
//! backends hold the shared memory for a moment, and PostgreSQL refuses to start until
//! they have gone. Each exit and each restart is logged.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::binaries::Binaries;
use super::placement::Placement;
use super::postmaster::{OwnedServer, log_tail, shutdown};
use super::readiness::{lock_exclusive, wait_until_ready};
use super::{EmbeddedError, elapsed_ms};

/// The first wait before a restart.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest wait between two attempts to restart.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What it takes to start the postmaster again.
#[derive(Debug, Clone)]
pub(super) struct Respawn {
    pub(super) placement: Placement,
    pub(super) binaries: Binaries,
    pub(super) socket_dir: PathBuf,
    pub(super) log: PathBuf,
    /// The start lock of the data dir (`pg.lock`), held while a restart spawns.
    pub(super) lock: PathBuf,
}

impl Respawn {
    /// [`start_once_locked`](Self::start_once_locked) under the data dir's start lock.
    async fn start_once(&self) -> Result<OwnedServer, EmbeddedError> {
        let _lock = lock_exclusive(&self.lock).await?;
        self.start_once_locked().await
    }

    /// Spawns a postmaster and waits until it accepts connections (stopping it again
    /// when it does not). The caller holds the start lock.
    pub(super) async fn start_once_locked(&self) -> Result<OwnedServer, EmbeddedError> {
        let cluster_dir = &self.placement.cluster_dir;
        let server =
            self.placement.spawn_postmaster(&self.binaries, &self.socket_dir, &self.log).await?;
        if let Err(error) =
            wait_until_ready(&server, cluster_dir, &self.socket_dir, &self.log).await
        {
            // Best effort: the startup error is what the caller needs to see.
            let _ = shutdown(&server, cluster_dir).await;
            return Err(error);
        }
        Ok(server)
    }
}

/// The postmaster this process owns, and the task that restarts it when it exits.
#[derive(Debug)]
pub(super) struct Supervised {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
struct Shared {
    cluster_dir: PathBuf,
    current: Mutex<OwnedServer>,
    stopping: watch::Sender<bool>,
}

impl Shared {
    fn current(&self) -> OwnedServer {
        self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

impl Supervised {
    /// Watches `server` (running and ready) from a task of the current runtime.
    pub(super) fn new(server: OwnedServer, respawn: Respawn) -> Self {
        let shared = Arc::new(Shared {
            cluster_dir: respawn.placement.cluster_dir.clone(),
            current: Mutex::new(server),
            stopping: watch::Sender::new(false),
        });
        let task = tokio::spawn(supervise(shared.clone(), respawn));
        Self { shared, task }
    }

    /// No more restarts: waits for a restart under way to finish, then stops the
    /// postmaster (see [`shutdown`]).
    pub(super) async fn stop(self) -> Result<OwnedServer, EmbeddedError> {
        self.shared.stopping.send_replace(true);
        // A task of a runtime that has gone is cancelled: nothing to wait for then.
        let _ = self.task.await;
        let server = self.shared.current();
        shutdown(&server, &self.shared.cluster_dir).await?;
        Ok(server)
    }

    /// No more restarts; the postmaster running now, if one does.
    pub(super) fn abandon(&self) -> Option<OwnedServer> {
        self.shared.stopping.send_replace(true);
        self.task.abort();
        let server = self.shared.current();
        let running = server.exited.borrow().is_none();
        running.then_some(server)
    }
}

/// Waits for the postmaster to exit; unless told to stop, starts it again.
async fn supervise(shared: Arc<Shared>, respawn: Respawn) {
    let cluster_dir = respawn.placement.cluster_dir.clone();
    let mut stopping = shared.stopping.subscribe();
    loop {
        let mut exited = shared.current().exited;
        tokio::select! {
            _ = exited.wait_for(Option::is_some) => {}
            _ = stopping.wait_for(|stop| *stop) => return,
        }
        if *stopping.borrow() {
            return;
        }
        let status = exited.borrow().clone().unwrap_or_default();
        let down = Instant::now();
        tracing::error!(
            cluster_dir = %cluster_dir.display(),
            %status,
            log_tail = %log_tail(&respawn.log),
            "embedded PostgreSQL exited unexpectedly: restarting it"
        );
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0u32;
        loop {
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stopping.wait_for(|stop| *stop) => return,
            }
            attempts += 1;
            match respawn.start_once().await {
                Ok(server) => {
                    tracing::warn!(
                        cluster_dir = %cluster_dir.display(),
                        pid = server.pid.as_raw(),
                        attempts,
                        down_ms = elapsed_ms(down),
                        "restarted embedded PostgreSQL"
                    );
                    *shared.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) =
                        server;
                    break;
                }
                Err(error) => {
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    tracing::warn!(
                        cluster_dir = %cluster_dir.display(),
                        %error,
                        attempts,
                        next_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                        "restarting embedded PostgreSQL failed; trying again"
                    );
                }
            }
        }
    }
}
