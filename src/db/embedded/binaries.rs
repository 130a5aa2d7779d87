//! Finding the PostgreSQL binaries (server and client) and telling their major version.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::EmbeddedError;

/// The PostgreSQL programs casefile runs.
#[derive(Debug, Clone)]
pub(super) struct Binaries {
    pub(super) initdb: PathBuf,
    pub(super) postgres: PathBuf,
}

impl Binaries {
    /// `PATH`, then `pg_config --bindir`, then the newest `/usr/lib/postgresql/*/bin`
    /// (or `/usr/pgsql-*/bin`).
    pub(super) async fn find() -> Result<Self, EmbeddedError> {
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
    pub(super) async fn for_cluster(
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
    pub(super) fn client(&self, tool: &'static str) -> Result<PathBuf, EmbeddedError> {
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

pub(super) fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Remove libpq's `PG*` variables (they would redirect or reconfigure the tools) and use
/// the C locale for predictable messages.
pub(super) fn scrub_env(cmd: &mut std::process::Command) {
    for (key, _) in std::env::vars_os() {
        if key.as_bytes().starts_with(b"PG") {
            cmd.env_remove(key);
        }
    }
    cmd.env("LC_ALL", "C");
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
}
