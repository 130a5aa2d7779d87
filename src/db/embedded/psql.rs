//! Running `psql` against the cluster, and checking database names.

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::binaries::scrub_env;
use super::error::last_lines;
use super::quote::conninfo_value;
use super::{EmbeddedError, PORT, ROLE};

const PSQL_TIMEOUT: Duration = Duration::from_secs(120);

/// Run `sql` with the `psql` program on `database` through the socket in `socket_dir`;
/// see [`EmbeddedPostgres::psql`](super::EmbeddedPostgres::psql).
pub(super) async fn run(
    psql: &Path,
    socket_dir: &Path,
    database: &str,
    sql: &str,
) -> Result<String, EmbeddedError> {
    let mut conninfo = OsString::from("host=");
    conninfo.push(conninfo_value(socket_dir.as_os_str()));
    conninfo.push(format!(" port={PORT} user={ROLE} dbname="));
    conninfo.push(conninfo_value(OsStr::new(database)));
    let mut cmd = tokio::process::Command::new(psql);
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-f", "-", "-d"])
        .arg(conninfo)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    scrub_env(cmd.as_std_mut());
    let failed = |message: String| EmbeddedError::Psql { database: database.to_owned(), message };
    let mut child = cmd
        .spawn()
        .map_err(|source| EmbeddedError::Spawn { program: psql.to_path_buf(), source })?;
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

/// Refuse names PostgreSQL cannot take, before any SQL is built from them.
pub(super) fn validate_database_name(name: &str) -> Result<(), EmbeddedError> {
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
