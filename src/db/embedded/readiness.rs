//! Coordinating with other casefile processes on the same cluster (the start lock,
//! attaching to a running postmaster) and waiting until a postmaster accepts connections.

use std::fs::{self, File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal;
use nix::unistd::Pid;

use super::error::io_err;
use super::postmaster::{OwnedServer, log_tail};
use super::{EmbeddedError, SOCKET_FILE};

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const LOCK_TIMEOUT: Duration = Duration::from_secs(90);
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Take the start lock, polling so that a stuck holder cannot block us forever.
pub(super) async fn lock_exclusive(path: &Path) -> Result<Flock<File>, EmbeddedError> {
    let began = Instant::now();
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("open", path))?;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EWOULDBLOCK)) => file = f,
            Err((_, errno)) => {
                return Err(EmbeddedError::Io {
                    action: "lock",
                    path: path.to_path_buf(),
                    source: errno.into(),
                });
            }
        }
        if began.elapsed() > LOCK_TIMEOUT {
            return Err(EmbeddedError::LockTimeout {
                path: path.to_path_buf(),
                waited: LOCK_TIMEOUT,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until `server` (a postmaster this process spawned) accepts connections on its socket.
pub(super) async fn wait_until_ready(
    server: &OwnedServer,
    cluster_dir: &Path,
    socket_dir: &Path,
    log: &Path,
) -> Result<(), EmbeddedError> {
    let began = Instant::now();
    loop {
        if let Some(status) = server.exited.borrow().clone() {
            return Err(EmbeddedError::ServerExited {
                cluster_dir: cluster_dir.to_path_buf(),
                status,
                log: log.to_path_buf(),
                log_tail: log_tail(log),
            });
        }
        if let Some(pid_file) = PidFile::read(cluster_dir)
            && pid_file.pid == server.pid
            && pid_file.is_ready()
            && socket_answers(socket_dir).await
        {
            return Ok(());
        }
        if began.elapsed() > READY_TIMEOUT {
            return Err(EmbeddedError::NotReady {
                cluster_dir: cluster_dir.to_path_buf(),
                waited: READY_TIMEOUT,
                log: log.to_path_buf(),
                log_tail: log_tail(log),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Wait while a postmaster of another process is starting or stopping on `cluster_dir`.
/// Returns its pid once it is ready to be attached to, or `None` when none runs.
pub(super) async fn wait_for_running(
    cluster_dir: &Path,
    socket_dir: &Path,
    log: &Path,
) -> Result<Option<Pid>, EmbeddedError> {
    let began = Instant::now();
    loop {
        let Some(pid_file) = PidFile::read(cluster_dir) else { return Ok(None) };
        match process_state(pid_file.pid, cluster_dir) {
            ProcessState::Gone => return Ok(None), // stale: PostgreSQL replaces the file itself
            ProcessState::NotPostgres => {
                // The pid was reused after a crash (typical in containers); PostgreSQL would
                // refuse to start while that process lives, so remove the stale lock files.
                tracing::info!(
                    cluster_dir = %cluster_dir.display(),
                    pid = pid_file.pid.as_raw(),
                    "removing stale postmaster.pid whose process is not PostgreSQL"
                );
                let _ = fs::remove_file(cluster_dir.join("postmaster.pid"));
                let _ = fs::remove_file(socket_dir.join(format!("{SOCKET_FILE}.lock")));
                return Ok(None);
            }
            ProcessState::Alive => {
                if pid_file.is_ready() && socket_answers(socket_dir).await {
                    return Ok(Some(pid_file.pid));
                }
            }
        }
        if began.elapsed() > READY_TIMEOUT {
            return Err(EmbeddedError::NotReady {
                cluster_dir: cluster_dir.to_path_buf(),
                waited: READY_TIMEOUT,
                log: log.to_path_buf(),
                log_tail: log_tail(log),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The interesting lines of `postmaster.pid`.
#[derive(Debug)]
struct PidFile {
    pid: Pid,
    /// Line 8: `starting`, `stopping`, `ready` or `standby`.
    status: Option<String>,
}

impl PidFile {
    fn read(cluster_dir: &Path) -> Option<Self> {
        let text = fs::read_to_string(cluster_dir.join("postmaster.pid")).ok()?;
        let mut lines = text.lines();
        let pid = lines.next()?.trim().parse::<i32>().ok().filter(|p| *p > 0)?;
        let status = lines.nth(6).map(|s| s.trim().to_owned());
        Some(Self { pid: Pid::from_raw(pid), status })
    }

    /// The postmaster accepts connections. The status line is missing while the
    /// postmaster is still writing the file, so missing means not ready (which also means
    /// PostgreSQL 10 or newer is required).
    fn is_ready(&self) -> bool {
        self.status.as_deref() == Some("ready")
    }
}

enum ProcessState {
    Alive,
    Gone,
    NotPostgres,
}

/// Whether `pid` (from `postmaster.pid` of `cluster_dir`) is a live postmaster.
fn process_state(pid: Pid, cluster_dir: &Path) -> ProcessState {
    // EPERM means it exists but belongs to another user.
    if signal::kill(pid, None) == Err(Errno::ESRCH) {
        return ProcessState::Gone;
    }
    #[cfg(target_os = "linux")]
    if let Ok(cmdline) = fs::read(format!("/proc/{}/cmdline", pid.as_raw())) {
        let contains = |needle: &[u8]| {
            !needle.is_empty() && cmdline.windows(needle.len()).any(|w| w == needle)
        };
        if !contains(b"postgres") && !contains(cluster_dir.as_os_str().as_bytes()) {
            return ProcessState::NotPostgres;
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cluster_dir;
    ProcessState::Alive
}

/// Whether something accepts connections on the cluster's socket.
async fn socket_answers(socket_dir: &Path) -> bool {
    let path = socket_dir.join(SOCKET_FILE);
    matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::UnixStream::connect(path)).await,
        Ok(Ok(_))
    )
}
