//! [`EmbeddedError`]: why the embedded cluster could not be used, plus helpers that keep
//! its messages on one line.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// Map an I/O error on `path` to [`EmbeddedError::Io`].
pub(super) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> EmbeddedError {
    let path = path.to_path_buf();
    move |source| EmbeddedError::Io { action, path, source }
}

/// The last `n` non-empty lines of `text`, joined into one line.
pub(super) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(n)..].join(" | ");
    if tail.is_empty() { "(no output)".to_owned() } else { tail.replace('\t', " ") }
}

#[cfg(test)]
mod tests {
    use super::*;

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
