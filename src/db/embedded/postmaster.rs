//! Spawning, supervising and stopping the postmaster this process owns, and its server log.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::sync::{oneshot, watch};

use super::binaries::{Binaries, scrub_env};
use super::error::{io_err, last_lines};
use super::placement::Placement;
use super::quote::escape_double_quotes;
use super::{EmbeddedError, PORT};

/// Line casefile writes to the server log before each start.
const LOG_START_MARKER: &str = "---- casefile is starting PostgreSQL";
/// The log is moved to `postgres.log.1` at start once it grows past this size.
const LOG_ROTATE_BYTES: u64 = 10 * 1024 * 1024;

const FAST_STOP_TIMEOUT: Duration = Duration::from_secs(60);
const IMMEDIATE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The postmaster this process started.
#[derive(Debug, Clone)]
pub(super) struct OwnedServer {
    pub(super) pid: Pid,
    /// Becomes `Some(description)` once the postmaster has exited and been reaped.
    pub(super) exited: watch::Receiver<Option<String>>,
}

impl Placement {
    /// Spawn the postmaster from a dedicated thread that owns and reaps it.
    pub(super) async fn spawn_postmaster(
        &self,
        binaries: &Binaries,
        socket_dir: &Path,
        log: &Path,
    ) -> Result<OwnedServer, EmbeddedError> {
        let log_file = self.open_log(log)?;
        let log_err = log_file.try_clone().map_err(io_err("open", log))?;

        let mut socket_dirs = OsString::from("unix_socket_directories=\"");
        // Quoted, so that spaces and commas in the path survive PostgreSQL's list parsing.
        socket_dirs
            .push(OsStr::from_bytes(&escape_double_quotes(socket_dir.as_os_str().as_bytes())));
        socket_dirs.push("\"");
        let mut cmd = std::process::Command::new(&binaries.postgres);
        cmd.arg("-D")
            .arg(&self.cluster_dir)
            .arg("-p")
            .arg(PORT.to_string())
            .args(["-c", "listen_addresses="])
            .arg("-c")
            .arg(socket_dirs)
            .args(["-c", "unix_socket_permissions=0700"])
            .args(["-c", "cluster_name=casefile"])
            .current_dir(&self.cluster_dir)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        scrub_env(&mut cmd);
        if let Some(user) = &self.run_as {
            user.apply(&mut cmd);
        }
        {
            use std::os::unix::process::CommandExt;
            // Ctrl-C in a terminal goes to the foreground process group: not to PostgreSQL.
            cmd.process_group(0);
        }
        stop_with_parent(&mut cmd);

        let program = binaries.postgres.clone();
        let (spawned_tx, spawned_rx) = oneshot::channel::<io::Result<u32>>();
        let (exited_tx, exited_rx) = watch::channel::<Option<String>>(None);
        // The thread that spawns the child must live as long as the child: the kernel sends
        // the parent-death signal when this thread (not the process) ends.
        std::thread::Builder::new()
            .name("casefile-postgres".into())
            .spawn(move || {
                let mut child = match cmd.spawn() {
                    Ok(child) => child,
                    Err(err) => {
                        let _ = spawned_tx.send(Err(err));
                        return;
                    }
                };
                if spawned_tx.send(Ok(child.id())).is_err() {
                    // start() was cancelled meanwhile: nobody will stop this server.
                    if let Ok(pid) = i32::try_from(child.id()) {
                        let _ = signal::kill(Pid::from_raw(pid), Signal::SIGINT);
                    }
                }
                let description = match child.wait() {
                    Ok(status) => describe_exit(status),
                    Err(err) => format!("could not wait for it: {err}"),
                };
                exited_tx.send_replace(Some(description));
            })
            .map_err(|source| EmbeddedError::Spawn { program: program.clone(), source })?;
        let pid = match spawned_rx.await {
            Ok(Ok(pid)) => pid,
            Ok(Err(source)) => return Err(EmbeddedError::Spawn { program, source }),
            Err(_) => {
                let source = io::Error::other("spawning thread ended early");
                return Err(EmbeddedError::Spawn { program, source });
            }
        };
        let pid = i32::try_from(pid).map(Pid::from_raw).map_err(|_| EmbeddedError::Spawn {
            program: binaries.postgres.clone(),
            source: io::Error::other("process id out of range"),
        })?;
        Ok(OwnedServer { pid, exited: exited_rx })
    }

    /// Open the server log for appending (rotating it once it is big), owned by the cluster user.
    fn open_log(&self, log: &Path) -> Result<File, EmbeddedError> {
        if fs::metadata(log).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
            let mut old = log.as_os_str().to_os_string();
            old.push(".1");
            fs::rename(log, &old).map_err(io_err("rotate", log))?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(log)
            .map_err(io_err("open", log))?;
        if let Some(user) = &self.run_as {
            user.chown(log)?;
        }
        let _ = writeln!(file, "{LOG_START_MARKER} (casefile pid {})", std::process::id());
        Ok(file)
    }
}

/// Ask the kernel to send the postmaster `SIGINT` (fast shutdown) when the thread that
/// spawned it dies, so PostgreSQL never outlives casefile.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn stop_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = Pid::this();
    // SAFETY: the closure runs in the forked child between fork and exec, after std has
    // switched uid/gid (a uid change would clear the parent-death signal again). It only
    // calls prctl(PR_SET_PDEATHSIG) and getppid, both async-signal-safe; it allocates
    // nothing and takes no locks (Errno converts into io::Error without allocating).
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGINT)?;
            // casefile died before the prctl took effect: do not start an orphan.
            if nix::unistd::getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// Parent-death signals are Linux-only; elsewhere casefile relies on `stop()` and `Drop`.
#[cfg(not(target_os = "linux"))]
fn stop_with_parent(_cmd: &mut std::process::Command) {}

/// Ask the postmaster to stop (fast, then immediate, then kill) and wait until it is reaped.
pub(super) async fn shutdown(
    server: &OwnedServer,
    cluster_dir: &Path,
) -> Result<(), EmbeddedError> {
    let steps = [
        (Signal::SIGINT, FAST_STOP_TIMEOUT),
        (Signal::SIGQUIT, IMMEDIATE_STOP_TIMEOUT),
        (Signal::SIGKILL, IMMEDIATE_STOP_TIMEOUT),
    ];
    let mut exited = server.exited.clone();
    let mut waited = Duration::ZERO;
    for (sig, timeout) in steps {
        if exited.borrow().is_some() {
            return Ok(());
        }
        if sig != Signal::SIGINT {
            tracing::warn!(
                cluster_dir = %cluster_dir.display(),
                pid = server.pid.as_raw(),
                signal = %sig,
                "embedded PostgreSQL did not stop in time; escalating"
            );
        }
        let _ = signal::kill(server.pid, sig);
        // `wait_for` fails only when the reaper thread is gone, which it is after reaping.
        if tokio::time::timeout(timeout, exited.wait_for(Option::is_some)).await.is_ok() {
            return Ok(());
        }
        waited += timeout;
    }
    Err(EmbeddedError::StopTimeout { cluster_dir: cluster_dir.to_path_buf(), waited })
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(sig) => format!("killed by {sig}"),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => status.to_string(),
    }
}

/// The last lines of the server log, as one line.
pub(super) fn log_tail(log: &Path) -> String {
    const TAIL_BYTES: u64 = 16 * 1024;
    let read = || -> io::Result<String> {
        let mut file = File::open(log)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        // Only what the latest start wrote, when its marker line is still in the tail.
        Ok(text) => match text.rfind(LOG_START_MARKER) {
            Some(at) => last_lines(text[at..].split_once('\n').map_or("", |(_, rest)| rest), 6),
            None => last_lines(&text, 6),
        },
        Err(err) => format!("(could not read the log: {err})"),
    }
}
