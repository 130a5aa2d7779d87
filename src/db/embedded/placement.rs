//! Where the cluster lives and as which OS user it runs (root-safe placement, relocation,
//! ownership), and the checks on that folder.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::unistd::{Gid, Uid, User};
use sha2::{Digest, Sha256};

use super::binaries::is_executable;
use super::error::io_err;
use super::{EmbeddedError, SOCKET_FILE};

/// Cluster folder inside the data dir.
const CLUSTER_SUBDIR: &str = "pg";
/// OS user that owns the cluster when casefile runs as root.
const UNPRIVILEGED_USER: &str = "postgres";
/// Where clusters go when running as root and the data dir is out of the cluster user's reach.
const RELOCATED_BASE: &str = "/var/lib/casefile/clusters";
/// Fallback when [`RELOCATED_BASE`] cannot be created (read-only `/var/lib`).
const RELOCATED_FALLBACK_BASE: &str = "/var/tmp";

/// Longest socket path the kernel accepts (`sizeof(sun_path)` minus the terminating NUL).
#[cfg(target_os = "linux")]
const SUN_PATH_MAX: usize = 107;
#[cfg(not(target_os = "linux"))]
const SUN_PATH_MAX: usize = 103;

/// OS user the cluster's processes run as (only used when casefile runs as root).
#[derive(Debug, Clone)]
pub(super) struct RunAs {
    uid: Uid,
    gid: Gid,
    pub(super) name: String,
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
    pub(super) fn apply(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        cmd.uid(self.uid.as_raw())
            .gid(self.gid.as_raw())
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name);
    }

    pub(super) fn chown(&self, path: &Path) -> Result<(), EmbeddedError> {
        nix::unistd::chown(path, Some(self.uid), Some(self.gid)).map_err(|e| EmbeddedError::Io {
            action: "change owner of",
            path: path.to_path_buf(),
            source: e.into(),
        })
    }
}

/// Where the cluster lives and as whom it runs. Creating the cluster there and starting its
/// postmaster are in the `initdb` and `postmaster` modules.
#[derive(Debug, Clone)]
pub(super) struct Placement {
    pub(super) cluster_dir: PathBuf,
    /// `Some` when casefile runs as root.
    pub(super) run_as: Option<RunAs>,
}

impl Placement {
    /// Pick the cluster folder for the canonical `data_dir`; see "Where the cluster lives"
    /// in the [`embedded`](super) module docs.
    pub(super) async fn decide(data_dir: &Path) -> Result<Self, EmbeddedError> {
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

pub(super) fn read_pg_version(cluster_dir: &Path) -> Option<String> {
    let text = fs::read_to_string(cluster_dir.join("PG_VERSION")).ok()?;
    Some(text.trim().to_owned()).filter(|v| !v.is_empty())
}

pub(super) fn check_socket_path(socket_dir: &Path) -> Result<(), EmbeddedError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relocation_is_deterministic() {
        let a = relocated_dirs(Path::new("/root/src/casefile/.casefile"));
        let b = relocated_dirs(Path::new("/root/src/casefile/.casefile"));
        assert_eq!(a, b);
        let name = a[0].file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        assert_eq!(name.len(), 16);
        assert!(a[0].starts_with(RELOCATED_BASE));
    }
}
