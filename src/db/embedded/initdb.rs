//! Creating a new cluster with `initdb`.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Instant;

use super::binaries::{Binaries, scrub_env};
use super::error::{io_err, last_lines};
use super::placement::Placement;
use super::{EmbeddedError, ROLE, elapsed_ms};

impl Placement {
    /// Create the cluster with `initdb` in a scratch folder beside `cluster_dir`, then
    /// rename it into place, so an interrupted `initdb` never leaves a half-made cluster.
    pub(super) async fn initdb(&self, binaries: &Binaries) -> Result<(), EmbeddedError> {
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
}
