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

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{self, Signal};
use nix::unistd::{Gid, Pid, Uid, User};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::{oneshot, watch};

/// Superuser role that `initdb` creates; every connection uses it.
const ROLE: &str = "casefile";
/// Port number: with `listen_addresses = ''` it only names the socket file.
const PORT: u16 = 5432;
/// Socket file name for [`PORT`].
const SOCKET_FILE: &str = ".s.PGSQL.5432";
/// Cluster folder inside the data dir.
const CLUSTER_SUBDIR: &str = "pg";
/// Lock file inside the data dir that serializes starts of the same cluster.
const LOCK_FILE: &str = "pg.lock";
/// Server log inside the cluster folder.
const LOG_FILE: &str = "postgres.log";
/// Line casefile writes to the server log before each start.
const LOG_START_MARKER: &str = "---- casefile is starting PostgreSQL";
/// The log is moved to `postgres.log.1` at start once it grows past this size.
const LOG_ROTATE_BYTES: u64 = 10 * 1024 * 1024;
/// OS user that owns the cluster when casefile runs as root.
const UNPRIVILEGED_USER: &str = "postgres";
/// Where clusters go when running as root and the data dir is out of the cluster user's reach.
const RELOCATED_BASE: &str = "/var/lib/casefile/clusters";
/// Fallback when [`RELOCATED_BASE`] cannot be created (read-only `/var/lib`).
const RELOCATED_FALLBACK_BASE: &str = "/var/tmp";

const READY_TIMEOUT: Duration = Duration::from_secs(30);
const LOCK_TIMEOUT: Duration = Duration::from_secs(90);
const FAST_STOP_TIMEOUT: Duration = Duration::from_secs(60);
const IMMEDIATE_STOP_TIMEOUT: Duration = Duration::from_secs(10);
const PSQL_TIMEOUT: Duration = Duration::from_secs(120);
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Longest socket path the kernel accepts (`sizeof(sun_path)` minus the terminating NUL).
#[cfg(target_os = "linux")]
const SUN_PATH_MAX: usize = 107;
#[cfg(not(target_os = "linux"))]
const SUN_PATH_MAX: usize = 103;

/// Why the embedded cluster could not be used. Every message is one line.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No `initdb` and `postgres` on `PATH`, via `pg_config --bindir` or under the usual
    /// versioned directories.
    #[error(
        "PostgreSQL server binaries (initdb, postgres) not found: install PostgreSQL \
         (Debian/Ubuntu: apt-get install postgresql; Fedora/RHEL: dnf install postgresql-server; \
         macOS: brew install postgresql) or set DATABASE_URL to an existing database"
    )]
    BinariesNotFound,
    /// A client tool (`psql`) is missing next to the server binaries and on `PATH`.
    #[error(
        "PostgreSQL client tool {tool} not found next to {} or on PATH: install the PostgreSQL \
         client (Debian/Ubuntu: apt-get install postgresql-client)",
        .bindir.display()
    )]
    ClientNotFound {
        /// Name of the missing tool.
        tool: &'static str,
        /// Directory of the server binaries that was searched.
        bindir: PathBuf,
    },
    /// Running as root, but there is no unprivileged OS user to run the cluster as.
    #[error(
        "running as root needs an unprivileged 'postgres' OS user to own the embedded cluster \
         (create it, e.g. `useradd --system --home-dir /var/lib/postgresql postgres`, \
         or set DATABASE_URL)"
    )]
    NoUnprivilegedUser,
    /// An existing cluster is owned by root; PostgreSQL cannot run as root.
    #[error(
        "embedded PostgreSQL cluster {} is owned by root and PostgreSQL refuses to run as root: \
         chown -R postgres: {} (or remove it to start afresh)",
        .cluster_dir.display(), .cluster_dir.display()
    )]
    ClusterOwnedByRoot {
        /// The cluster folder.
        cluster_dir: PathBuf,
    },
    /// The cluster belongs to another OS user than the one casefile runs as.
    #[error(
        "embedded PostgreSQL cluster {} belongs to OS user {owner}: \
         run casefile as that user or as root",
        .cluster_dir.display()
    )]
    ForeignCluster {
        /// The cluster folder.
        cluster_dir: PathBuf,
        /// Name (or uid) of the owner.
        owner: String,
    },
    /// The cluster folder exists but holds something else than a PostgreSQL cluster.
    #[error(
        "{} exists but is not a PostgreSQL cluster (no PG_VERSION): \
         move it away so casefile can create its cluster there",
        .cluster_dir.display()
    )]
    NotACluster {
        /// The cluster folder.
        cluster_dir: PathBuf,
    },
    /// A file system operation failed.
    #[error("could not {action} {}: {source}", .path.display())]
    Io {
        /// What was attempted, e.g. "create directory".
        action: &'static str,
        /// The path it was attempted on.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A program could not be run at all.
    #[error("could not run {}: {source}", .program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The Unix socket path would exceed the kernel's limit.
    #[error(
        "Unix socket path {} is {len} bytes, over the {max}-byte limit: \
         use a shorter CASEFILE_DATA_DIR",
        .path.display()
    )]
    SocketPathTooLong {
        /// The socket path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The socket directory contains a comma, which libpq takes as a host list separator.
    #[error(
        "the embedded PostgreSQL socket directory {} contains a comma, \
         which PostgreSQL clients cannot take: \
         use a CASEFILE_DATA_DIR without commas",
        .path.display()
    )]
    SocketPathComma {
        /// The socket directory.
        path: PathBuf,
    },
    /// The cluster was created by another PostgreSQL major version than the binaries found.
    #[error(
        "embedded PostgreSQL cluster {} was created by PostgreSQL {cluster} \
         but the server binaries found ({}) are PostgreSQL {binaries}: \
         install PostgreSQL {cluster} next to it, or move the cluster away to start afresh",
        .cluster_dir.display(), .postgres.display()
    )]
    VersionMismatch {
        /// The cluster folder.
        cluster_dir: PathBuf,
        /// Major version in the cluster's `PG_VERSION`.
        cluster: String,
        /// Major version of the binaries.
        binaries: String,
        /// The `postgres` binary.
        postgres: PathBuf,
    },
    /// `initdb` failed.
    #[error("initdb failed for {}: {output}", .cluster_dir.display())]
    Initdb {
        /// The cluster folder.
        cluster_dir: PathBuf,
        /// The last lines of its output.
        output: String,
    },
    /// The postmaster exited before it was ready.
    #[error(
        "PostgreSQL for {} exited during startup ({status}); end of {}: {log_tail}",
        .cluster_dir.display(), .log.display()
    )]
    ServerExited {
        /// The cluster folder.
        cluster_dir: PathBuf,
        /// How it exited.
        status: String,
        /// The server log.
        log: PathBuf,
        /// The last lines of the server log.
        log_tail: String,
    },
    /// The postmaster (ours or another process's) did not become ready in time.
    #[error(
        "PostgreSQL for {} was not ready within {} s; end of {}: {log_tail}",
        .cluster_dir.display(), .waited.as_secs(), .log.display()
    )]
    NotReady {
        /// The cluster folder.
        cluster_dir: PathBuf,
        /// How long casefile waited.
        waited: Duration,
        /// The server log.
        log: PathBuf,
        /// The last lines of the server log.
        log_tail: String,
    },
    /// Another process kept the start lock for too long.
    #[error(
        "another process held {} for over {} s while starting the embedded PostgreSQL",
        .path.display(), .waited.as_secs()
    )]
    LockTimeout {
        /// The lock file.
        path: PathBuf,
        /// How long casefile waited.
        waited: Duration,
    },
    /// The postmaster did not exit after fast and immediate shutdown requests.
    #[error(
        "PostgreSQL for {} did not stop within {} s",
        .cluster_dir.display(), .waited.as_secs()
    )]
    StopTimeout {
        /// The cluster folder.
        cluster_dir: PathBuf,
        /// How long casefile waited.
        waited: Duration,
    },
    /// A database name that PostgreSQL cannot take.
    #[error("invalid database name {name:?}: {reason}")]
    InvalidDatabaseName {
        /// The name.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// `psql` failed.
    #[error("psql on database {database:?} failed: {message}")]
    Psql {
        /// The database.
        database: String,
        /// The last lines of its error output.
        message: String,
    },
}

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
    server: Option<OwnedServer>,
}

/// The postmaster this process started.
#[derive(Debug)]
struct OwnedServer {
    pid: Pid,
    /// Becomes `Some(description)` once the postmaster has exited and been reaped.
    exited: watch::Receiver<Option<String>>,
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

        let server = placement.spawn_postmaster(&binaries, &socket_dir, &log).await?;
        let mut this = Self {
            cluster_dir: cluster_dir.clone(),
            socket_dir: socket_dir.clone(),
            log: log.clone(),
            binaries,
            server: Some(server),
        };
        if let Err(err) = this.wait_until_ready().await {
            if let Some(server) = this.server.take() {
                // Best effort: the startup error is what the caller needs to see.
                let _ = shutdown(&server, &this.cluster_dir).await;
            }
            return Err(err);
        }
        tracing::info!(
            cluster_dir = %this.cluster_dir.display(),
            socket_dir = %this.socket_dir.display(),
            pid = this.server.as_ref().map_or(0, |s| s.pid.as_raw()),
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
        let psql = self.binaries.client("psql")?;
        let mut conninfo = OsString::from("host=");
        conninfo.push(conninfo_value(self.socket_dir.as_os_str()));
        conninfo.push(format!(" port={PORT} user={ROLE} dbname="));
        conninfo.push(conninfo_value(OsStr::new(database)));
        let mut cmd = tokio::process::Command::new(&psql);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-", "-d"])
            .arg(conninfo)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        scrub_env(cmd.as_std_mut());
        let failed =
            |message: String| EmbeddedError::Psql { database: database.to_owned(), message };
        let mut child =
            cmd.spawn().map_err(|source| EmbeddedError::Spawn { program: psql.clone(), source })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(sql.as_bytes()).await.map_err(|e| failed(e.to_string()))?;
            // Dropping stdin closes it, which ends psql's input.
        }
        let output = tokio::time::timeout(PSQL_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| failed(format!("no answer within {} s", PSQL_TIMEOUT.as_secs())))?
            .map_err(|e| failed(e.to_string()))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(failed(format!("{}: {}", output.status, last_lines(&stderr, 4))));
        }
        let mut stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        while stdout.ends_with('\n') {
            stdout.pop();
        }
        Ok(stdout)
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
        shutdown(&server, &self.cluster_dir).await?;
        tracing::info!(
            cluster_dir = %self.cluster_dir.display(),
            pid = server.pid.as_raw(),
            elapsed_ms = elapsed_ms(began),
            "stopped embedded PostgreSQL"
        );
        Ok(())
    }

    /// Wait until the postmaster we spawned accepts connections on its socket.
    async fn wait_until_ready(&self) -> Result<(), EmbeddedError> {
        let Some(server) = &self.server else { return Ok(()) };
        let began = Instant::now();
        loop {
            if let Some(status) = server.exited.borrow().clone() {
                return Err(EmbeddedError::ServerExited {
                    cluster_dir: self.cluster_dir.clone(),
                    status,
                    log: self.log.clone(),
                    log_tail: log_tail(&self.log),
                });
            }
            if let Some(pid_file) = PidFile::read(&self.cluster_dir)
                && pid_file.pid == server.pid
                && pid_file.is_ready()
                && socket_answers(&self.socket_dir).await
            {
                return Ok(());
            }
            if began.elapsed() > READY_TIMEOUT {
                return Err(EmbeddedError::NotReady {
                    cluster_dir: self.cluster_dir.clone(),
                    waited: READY_TIMEOUT,
                    log: self.log.clone(),
                    log_tail: log_tail(&self.log),
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Some(server) = self.server.take()
            && server.exited.borrow().is_none()
        {
            tracing::info!(
                cluster_dir = %self.cluster_dir.display(),
                pid = server.pid.as_raw(),
                "embedded PostgreSQL dropped without stop(): requesting fast shutdown"
            );
            let _ = signal::kill(server.pid, Signal::SIGINT);
        }
    }
}

/// Ask the postmaster to stop (fast, then immediate, then kill) and wait until it is reaped.
async fn shutdown(server: &OwnedServer, cluster_dir: &Path) -> Result<(), EmbeddedError> {
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

/// OS user the cluster's processes run as (only used when casefile runs as root).
#[derive(Debug, Clone)]
struct RunAs {
    uid: Uid,
    gid: Gid,
    name: String,
    home: PathBuf,
}

impl RunAs {
    fn from_user(user: User) -> Self {
        Self { uid: user.uid, gid: user.gid, name: user.name, home: user.dir }
    }

    /// The `postgres` OS user.
    fn unprivileged() -> Result<Self, EmbeddedError> {
        match User::from_name(UNPRIVILEGED_USER) {
            Ok(Some(user)) if !user.uid.is_root() => Ok(Self::from_user(user)),
            _ => Err(EmbeddedError::NoUnprivilegedUser),
        }
    }

    /// The owner of an existing cluster folder.
    fn owner_of(cluster_dir: &Path) -> Result<Self, EmbeddedError> {
        let meta = fs::metadata(cluster_dir).map_err(io_err("inspect", cluster_dir))?;
        let uid = Uid::from_raw(meta.uid());
        if uid.is_root() {
            return Err(EmbeddedError::ClusterOwnedByRoot {
                cluster_dir: cluster_dir.to_path_buf(),
            });
        }
        Ok(match User::from_uid(uid) {
            Ok(Some(user)) => Self::from_user(user),
            // A uid without a passwd entry (containers): run with the folder's group.
            _ => Self {
                uid,
                gid: Gid::from_raw(meta.gid()),
                name: uid.to_string(),
                home: cluster_dir.to_path_buf(),
            },
        })
    }

    /// Apply the identity to a command. std clears the supplementary groups
    /// (`setgroups(0)`) itself when it switches uid as root, then sets gid and uid before
    /// any `pre_exec` closure runs.
    fn apply(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        cmd.uid(self.uid.as_raw())
            .gid(self.gid.as_raw())
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name);
    }

    fn chown(&self, path: &Path) -> Result<(), EmbeddedError> {
        nix::unistd::chown(path, Some(self.uid), Some(self.gid)).map_err(|e| EmbeddedError::Io {
            action: "change owner of",
            path: path.to_path_buf(),
            source: e.into(),
        })
    }
}

/// Where the cluster lives and as whom it runs.
#[derive(Debug)]
struct Placement {
    cluster_dir: PathBuf,
    /// `Some` when casefile runs as root.
    run_as: Option<RunAs>,
}

impl Placement {
    /// Pick the cluster folder for the canonical `data_dir`; see the module docs.
    async fn decide(data_dir: &Path) -> Result<Self, EmbeddedError> {
        let local = data_dir.join(CLUSTER_SUBDIR);
        let euid = nix::unistd::geteuid();
        if !euid.is_root() {
            if let Ok(meta) = fs::metadata(&local)
                && meta.uid() != euid.as_raw()
            {
                let owner = User::from_uid(Uid::from_raw(meta.uid()))
                    .ok()
                    .flatten()
                    .map_or_else(|| format!("uid {}", meta.uid()), |u| u.name);
                return Err(EmbeddedError::ForeignCluster { cluster_dir: local, owner });
            }
            return Ok(Self { cluster_dir: local, run_as: None });
        }

        // Root: an existing cluster stays where it is and runs as its owner.
        if is_cluster(&local) {
            let run_as = RunAs::owner_of(&local)?;
            return Ok(Self { cluster_dir: local, run_as: Some(run_as) });
        }
        let relocated = relocated_dirs(data_dir);
        for dir in &relocated {
            if is_cluster(dir) {
                let user = RunAs::unprivileged()?;
                let meta = fs::symlink_metadata(dir).map_err(io_err("inspect", dir))?;
                // Only trust a relocated cluster that is a real folder of the cluster user
                // (the /var/tmp fallback is writable by anyone).
                if !meta.is_dir() || meta.uid() != user.uid.as_raw() {
                    let owner = format!("uid {}", meta.uid());
                    return Err(EmbeddedError::ForeignCluster { cluster_dir: dir.clone(), owner });
                }
                return Ok(Self { cluster_dir: dir.clone(), run_as: Some(user) });
            }
        }

        let user = RunAs::unprivileged()?;
        // A data dir too deep for a socket path is another reason to keep the cluster elsewhere.
        if check_socket_path(&local).is_ok() && reachable_by(data_dir, &user).await {
            return Ok(Self { cluster_dir: local, run_as: Some(user) });
        }
        let mut last_err = None;
        for dir in relocated {
            match prepare_relocation_parent(&dir) {
                Ok(()) => {
                    tracing::info!(
                        data_dir = %data_dir.display(),
                        cluster_dir = %dir.display(),
                        user = %user.name,
                        "data dir is out of reach for the cluster's OS user \
                         (or too deep for a socket path): keeping the embedded cluster elsewhere"
                    );
                    return Ok(Self { cluster_dir: dir, run_as: Some(user) });
                }
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or(EmbeddedError::NoUnprivilegedUser))
    }

    /// Create the cluster with `initdb` in a scratch folder beside `cluster_dir`, then
    /// rename it into place, so an interrupted `initdb` never leaves a half-made cluster.
    async fn initdb(&self, binaries: &Binaries) -> Result<(), EmbeddedError> {
        let began = Instant::now();
        let cluster_dir = &self.cluster_dir;
        match fs::read_dir(cluster_dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(EmbeddedError::NotACluster { cluster_dir: cluster_dir.clone() });
                }
                fs::remove_dir(cluster_dir)
                    .map_err(io_err("remove empty directory", cluster_dir))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(EmbeddedError::Io {
                    action: "read directory",
                    path: cluster_dir.clone(),
                    source: e,
                });
            }
        }
        let mut scratch_name = cluster_dir.file_name().map(OsStr::to_os_string).unwrap_or_default();
        scratch_name.push(".initdb");
        let scratch = cluster_dir.with_file_name(scratch_name);
        if fs::symlink_metadata(&scratch).is_ok() {
            fs::remove_dir_all(&scratch).map_err(io_err("remove leftover", &scratch))?;
        }
        fs::create_dir(&scratch).map_err(io_err("create directory", &scratch))?;
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o700))
            .map_err(io_err("set permissions of", &scratch))?;
        if let Some(user) = &self.run_as {
            user.chown(&scratch)?;
        }

        let mut cmd = std::process::Command::new(&binaries.initdb);
        cmd.arg("-D")
            .arg(&scratch)
            .args(["-U", ROLE, "--auth=trust", "-E", "UTF8", "--locale=C"])
            .current_dir(&scratch)
            .stdin(Stdio::null());
        scrub_env(&mut cmd);
        // initdb writes the time zone into postgresql.conf; UTC also spares it the
        // scan of the system's zone files.
        cmd.env("TZ", "UTC");
        if let Some(user) = &self.run_as {
            user.apply(&mut cmd);
        }
        let output =
            tokio::process::Command::from(cmd).kill_on_drop(true).output().await.map_err(
                |source| EmbeddedError::Spawn { program: binaries.initdb.clone(), source },
            )?;
        if !output.status.success() {
            let _ = fs::remove_dir_all(&scratch);
            let text = format!(
                "{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            return Err(EmbeddedError::Initdb {
                cluster_dir: cluster_dir.clone(),
                output: format!("{}: {}", output.status, last_lines(&text, 4)),
            });
        }
        fs::rename(&scratch, cluster_dir)
            .map_err(io_err("move the new cluster into", cluster_dir))?;
        tracing::info!(
            cluster_dir = %cluster_dir.display(),
            elapsed_ms = elapsed_ms(began),
            "initialized embedded PostgreSQL cluster"
        );
        Ok(())
    }

    /// Spawn the postmaster from a dedicated thread that owns and reaps it.
    async fn spawn_postmaster(
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

/// Wait while a postmaster of another process is starting or stopping on `cluster_dir`.
/// Returns its pid once it is ready to be attached to, or `None` when none runs.
async fn wait_for_running(
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

/// The PostgreSQL programs casefile runs.
#[derive(Debug, Clone)]
struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
}

impl Binaries {
    /// `PATH`, then `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`
    /// (or `/usr/pgsql-*/bin`).
    async fn find() -> Result<Self, EmbeddedError> {
        if let Some(path) = std::env::var_os("PATH")
            && let Some(found) = std::env::split_paths(&path).find_map(|dir| Self::in_dir(&dir))
        {
            return Ok(found);
        }
        if let Some(found) = pg_config_bindir().await.and_then(|dir| Self::in_dir(&dir)) {
            return Ok(found);
        }
        versioned_bindirs(None)
            .into_iter()
            .find_map(|dir| Self::in_dir(&dir))
            .ok_or(EmbeddedError::BinariesNotFound)
    }

    fn in_dir(dir: &Path) -> Option<Self> {
        let initdb = dir.join("initdb");
        let postgres = dir.join("postgres");
        (is_executable(&initdb) && is_executable(&postgres)).then_some(Self { initdb, postgres })
    }

    /// Binaries that can run an existing cluster of major version `cluster_major`: these,
    /// or those of that version installed beside them.
    async fn for_cluster(
        self,
        cluster_dir: &Path,
        cluster_major: &str,
    ) -> Result<Self, EmbeddedError> {
        let Some(major) = self.major_version().await else { return Ok(self) };
        if major == cluster_major {
            return Ok(self);
        }
        if let Some(found) =
            versioned_bindirs(Some(cluster_major)).into_iter().find_map(|dir| Self::in_dir(&dir))
        {
            return Ok(found);
        }
        Err(EmbeddedError::VersionMismatch {
            cluster_dir: cluster_dir.to_path_buf(),
            cluster: cluster_major.to_owned(),
            binaries: major,
            postgres: self.postgres,
        })
    }

    /// Major version (`15`, or `9.6` before PostgreSQL 10) from `postgres -V`.
    async fn major_version(&self) -> Option<String> {
        let out = tokio::process::Command::new(&self.postgres).arg("-V").output().await.ok()?;
        parse_major_version(&String::from_utf8_lossy(&out.stdout))
    }

    /// A client tool: next to the server binaries (symlinks resolved), else on `PATH`.
    fn client(&self, tool: &'static str) -> Result<PathBuf, EmbeddedError> {
        let bindir = self.postgres.parent().map(Path::to_path_buf).unwrap_or_default();
        let real_dir =
            fs::canonicalize(&self.postgres).ok().and_then(|p| p.parent().map(Path::to_path_buf));
        real_dir
            .into_iter()
            .chain([bindir.clone()])
            .map(|dir| dir.join(tool))
            .find(|p| is_executable(p))
            .or_else(|| which(tool))
            .ok_or(EmbeddedError::ClientNotFound { tool, bindir })
    }
}

fn parse_major_version(text: &str) -> Option<String> {
    // "postgres (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)"
    let version = text.split(')').nth(1)?.split_whitespace().next()?;
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let first = parts.next().filter(|s| !s.is_empty())?;
    if first.parse::<u32>().ok()? < 10 {
        Some(format!("{first}.{}", parts.next()?))
    } else {
        Some(first.to_owned())
    }
}

async fn pg_config_bindir() -> Option<PathBuf> {
    let out = tokio::process::Command::new("pg_config").arg("--bindir").output().await.ok()?;
    if !out.status.success() {
        return None;
    }
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `/usr/lib/postgresql/<v>/bin` and `/usr/pgsql-<v>/bin`, newest version first, only
/// version `major` when given.
fn versioned_bindirs(major: Option<&str>) -> Vec<PathBuf> {
    let mut found: Vec<(Vec<u32>, PathBuf)> = Vec::new();
    let mut scan = |parent: &str, prefix: &str| {
        let Ok(entries) = fs::read_dir(parent) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(version) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
                continue;
            };
            if major.is_some_and(|m| m != version) {
                continue;
            }
            let Ok(key) = version.split('.').map(str::parse::<u32>).collect::<Result<Vec<_>, _>>()
            else {
                continue;
            };
            found.push((key, entry.path().join("bin")));
        }
    };
    scan("/usr/lib/postgresql", "");
    scan("/usr", "pgsql-");
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, dir)| dir).collect()
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Remove libpq's `PG*` variables (they would redirect or reconfigure the tools) and use
/// the C locale for predictable messages.
fn scrub_env(cmd: &mut std::process::Command) {
    for (key, _) in std::env::vars_os() {
        if key.as_bytes().starts_with(b"PG") {
            cmd.env_remove(key);
        }
    }
    cmd.env("LC_ALL", "C");
}

/// Whether `user` (without supplementary groups, as std runs it) can reach `dir`.
async fn reachable_by(dir: &Path, user: &RunAs) -> bool {
    if let Some(test) =
        ["/usr/bin/test", "/bin/test"].into_iter().map(Path::new).find(|p| is_executable(p))
    {
        let mut cmd = std::process::Command::new(test);
        cmd.arg("-x")
            .arg(dir)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        user.apply(&mut cmd);
        if let Ok(status) = tokio::process::Command::from(cmd).status().await {
            return status.success();
        }
    }
    // No usable `test`: check the search bit of every ancestor by hand.
    dir.ancestors().all(|ancestor| {
        let Ok(meta) = fs::metadata(ancestor) else { return false };
        let mode = meta.permissions().mode();
        if meta.uid() == user.uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    })
}

/// Deterministic places for a relocated cluster of `data_dir`, preferred first.
fn relocated_dirs(data_dir: &Path) -> [PathBuf; 2] {
    let digest = Sha256::digest(data_dir.as_os_str().as_bytes());
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    [
        Path::new(RELOCATED_BASE).join(&hash),
        Path::new(RELOCATED_FALLBACK_BASE).join(format!("casefile-{hash}")),
    ]
}

/// Make sure the parent of a relocated cluster exists and can be traversed by the cluster user.
fn prepare_relocation_parent(cluster_dir: &Path) -> Result<(), EmbeddedError> {
    let Some(parent) = cluster_dir.parent() else { return Ok(()) };
    if parent == Path::new(RELOCATED_BASE) {
        fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        for dir in [parent, parent.parent().unwrap_or(parent)] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .map_err(io_err("set permissions of", dir))?;
        }
        Ok(())
    } else {
        fs::metadata(parent).map(|_| ()).map_err(io_err("inspect", parent))
    }
}

fn is_cluster(dir: &Path) -> bool {
    dir.join("PG_VERSION").is_file()
}

fn read_pg_version(cluster_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(cluster_dir.join("PG_VERSION")).ok()?;
    Some(text.trim().to_owned()).filter(|v| !v.is_empty())
}

fn check_socket_path(socket_dir: &Path) -> Result<(), EmbeddedError> {
    if socket_dir.as_os_str().as_bytes().contains(&b',') {
        // libpq reads `host` as a comma-separated list, with no way to escape a comma.
        return Err(EmbeddedError::SocketPathComma { path: socket_dir.to_path_buf() });
    }
    let path = socket_dir.join(SOCKET_FILE);
    let len = path.as_os_str().len();
    if len > SUN_PATH_MAX {
        return Err(EmbeddedError::SocketPathTooLong { path, len, max: SUN_PATH_MAX });
    }
    Ok(())
}

/// Take the start lock, polling so that a stuck holder cannot block us forever.
async fn lock_exclusive(path: &Path) -> Result<Flock<File>, EmbeddedError> {
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

fn validate_database_name(name: &str) -> Result<(), EmbeddedError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name.len() > 63 {
        "longer than 63 bytes"
    } else if name.contains('\0') {
        "contains a NUL character"
    } else {
        return Ok(());
    };
    Err(EmbeddedError::InvalidDatabaseName { name: name.to_owned(), reason })
}

/// A standard-conforming SQL string literal.
fn sql_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A libpq conninfo value: single-quoted, with `\` and `'` escaped.
fn conninfo_value(value: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(value.len() + 2);
    out.push(b'\'');
    for &b in value.as_bytes() {
        if b == b'\\' || b == b'\'' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'\'');
    OsStr::from_bytes(&out).to_os_string()
}

fn escape_double_quotes(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for &b in bytes {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out
}

/// Percent-encode everything but RFC 3986 unreserved characters (and `/` when `keep_slash`).
fn percent_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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

/// The last `n` non-empty lines of `text`, joined into one line.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(n)..].join(" | ");
    if tail.is_empty() { "(no output)".to_owned() } else { tail.replace('\t', " ") }
}

/// The last lines of the server log, as one line.
fn log_tail(log: &Path) -> String {
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

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> EmbeddedError {
    let path = path.to_path_buf();
    move |source| EmbeddedError::Io { action, path, source }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn major_versions_parse() {
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)\n")
                .as_deref(),
            Some("15")
        );
        assert_eq!(parse_major_version("postgres (PostgreSQL) 17devel").as_deref(), Some("17"));
        assert_eq!(parse_major_version("postgres (PostgreSQL) 9.6.24").as_deref(), Some("9.6"));
        assert_eq!(parse_major_version("garbage"), None);
    }

    #[test]
    fn urls_and_conninfo_are_escaped() {
        assert_eq!(percent_encode(b"/tmp/a b,c@d", true), "/tmp/a%20b%2Cc%40d");
        assert_eq!(percent_encode(b"db/x", false), "db%2Fx");
        assert_eq!(conninfo_value(OsStr::new(r"it's\x")), OsString::from(r"'it\'s\\x'"));
        assert_eq!(sql_literal("o'neil"), "'o''neil'");
        assert_eq!(escape_double_quotes(br#"a"b"#), br#"a""b"#.to_vec());
    }

    #[test]
    fn relocation_is_deterministic() {
        let a = relocated_dirs(Path::new("/root/src/casefile/.casefile"));
        let b = relocated_dirs(Path::new("/root/src/casefile/.casefile"));
        assert_eq!(a, b);
        let name = a[0].file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        assert_eq!(name.len(), 16);
        assert!(a[0].starts_with(RELOCATED_BASE));
    }

    #[test]
    fn handle_can_be_shared_across_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<EmbeddedPostgres>();
        assert_send_sync::<EmbeddedError>();
    }

    #[test]
    fn last_lines_make_one_line() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(last_lines("", 2), "(no output)");
    }

    #[test]
    fn missing_binaries_message_is_one_line() {
        assert!(!EmbeddedError::BinariesNotFound.to_string().contains('\n'));
        assert!(!EmbeddedError::NoUnprivilegedUser.to_string().contains('\n'));
    }
}
