//! PostgreSQL clusters the fault tests start, stop, kill and promote themselves, from the
//! machine's binaries, on loopback TCP ports. As root (CI) every PostgreSQL program runs as
//! the `postgres` OS user, as the embedded cluster does, and the folders belong to it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::unistd::{Uid, User};

/// The superuser `initdb` creates; casefile connects as it.
pub const ROLE: &str = "casefile";
/// How long `pg_ctl` waits for a start, a stop or a promotion.
const PG_CTL_WAIT_SECS: &str = "90";

/// The folder of `initdb`, `pg_ctl`, `pg_basebackup` and `psql`: `pg_config --bindir`,
/// else the newest `/usr/lib/postgresql/<major>/bin`, else the folder of `initdb` on `PATH`.
fn bindir() -> PathBuf {
    let has_tools =
        |dir: &Path| ["initdb", "pg_ctl", "pg_basebackup"].iter().all(|t| dir.join(t).is_file());
    if let Ok(out) = std::process::Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_tools(&dir) {
            return dir;
        }
    }
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versioned.sort();
    if let Some((_, dir)) = versioned.pop() {
        return dir;
    }
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| has_tools(dir)))
        .expect("PostgreSQL's initdb, pg_ctl and pg_basebackup are installed")
}

/// The OS user PostgreSQL's programs run as: `postgres` when the tests run as root.
fn run_as() -> Option<User> {
    if !Uid::effective().is_root() {
        return None;
    }
    let user = User::from_name("postgres")
        .ok()
        .flatten()
        .expect("running as root, the PostgreSQL programs need the `postgres` OS user");
    Some(user)
}

/// A free loopback TCP port (free when asked; PostgreSQL binds it moments later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// One cluster in a folder of its own, listening on `127.0.0.1:<port>` only.
pub struct Cluster {
    pub port: u16,
    pub data: PathBuf,
    log: PathBuf,
    bindir: PathBuf,
    user: Option<User>,
    _root: tempfile::TempDir,
}

impl Cluster {
    /// A folder for a cluster's files, owned by the user PostgreSQL runs as.
    fn folder() -> (tempfile::TempDir, Option<User>) {
        let root = tempfile::Builder::new().prefix("casefile-faults-").tempdir().expect("tempdir");
        let user = run_as();
        if let Some(user) = &user {
            nix::unistd::chown(root.path(), Some(user.uid), Some(user.gid)).expect("chown");
        }
        (root, user)
    }

    fn empty(port: u16) -> Self {
        let (root, user) = Self::folder();
        Cluster {
            port,
            data: root.path().join("data"),
            log: root.path().join("postgres.log"),
            bindir: bindir(),
            user,
            _root: root,
        }
    }

    /// `initdb` of a new cluster that will listen on a free port (not started).
    pub async fn init() -> Self {
        let cluster = Self::empty(free_port());
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    path(&cluster.data),
                    "-U",
                    ROLE,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
            )
            .await;
        cluster.configure(&[
            ("listen_addresses", "'127.0.0.1'".to_owned()),
            ("port", cluster.port.to_string()),
            ("unix_socket_directories", "''".to_owned()),
            ("max_connections", "100".to_owned()),
        ]);
        cluster
    }

    /// A synchronous streaming standby of `primary` (which must run), named `name` in
    /// `synchronous_standby_names`: `pg_basebackup -R` and `standby.signal`, on a port of
    /// its own (not started).
    pub async fn standby_of(primary: &Cluster, name: &str) -> Self {
        let standby = Self::empty(free_port());
        let conninfo =
            format!("host=127.0.0.1 port={} user={ROLE} application_name={name}", primary.port);
        standby
            .run(
                "pg_basebackup",
                &["-d", &conninfo, "-D", path(&standby.data), "-R", "-X", "stream", "-c", "fast"],
            )
            .await;
        assert!(
            standby.data.join("standby.signal").is_file(),
            "pg_basebackup -R wrote standby.signal"
        );
        standby.configure(&[
            ("port", standby.port.to_string()),
            ("primary_conninfo", format!("'{conninfo}'")),
        ]);
        standby
    }

    /// Sets these parameters (appended to `postgresql.conf`: the last setting wins).
    pub fn configure(&self, settings: &[(&str, String)]) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .expect("open postgresql.conf");
        for (name, value) in settings {
            writeln!(file, "{name} = {value}").expect("write postgresql.conf");
        }
    }

    /// Adds a line to `pg_hba.conf`.
    pub fn allow(&self, line: &str) {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("pg_hba.conf"))
            .expect("open pg_hba.conf");
        writeln!(file, "{line}").expect("write pg_hba.conf");
    }

    pub async fn start(&self) {
        self.pg_ctl(&["start", "-l", path(&self.log)]).await;
    }

    /// `pg_ctl stop -m <mode>` (`fast`, or `immediate`: a crash as far as the data goes).
    pub async fn stop(&self, mode: &str) {
        self.pg_ctl(&["stop", "-m", mode]).await;
    }

    pub async fn promote(&self) {
        self.pg_ctl(&["promote"]).await;
    }

    async fn pg_ctl(&self, args: &[&str]) {
        let mut all = vec!["-D", path(&self.data), "-w", "-t", PG_CTL_WAIT_SECS];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all).await;
    }

    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgresql://{ROLE}@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `sql` with psql on `database`; returns the rows unaligned, one a line.
    pub async fn psql(&self, database: &str, sql: &str) -> String {
        let port = self.port.to_string();
        self.run(
            "psql",
            &[
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                ROLE,
                "-d",
                database,
                "-c",
                sql,
            ],
        )
        .await
    }

    /// Runs one of the PostgreSQL programs as the cluster's user; fails the test, with the
    /// server log's tail, when it fails.
    async fn run(&self, program: &str, args: &[&str]) -> String {
        let mut command = tokio::process::Command::new(self.bindir.join(program));
        command
            .args(args)
            .current_dir(self._root.path())
            .env("TZ", "UTC")
            .env_remove("PGDATA")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(user) = &self.user {
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw()).env("HOME", self._root.path());
        }
        let output = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .unwrap_or_else(|_| panic!("{program} {args:?} did not finish in 120 s"))
            .unwrap_or_else(|e| panic!("run {program}: {e}"));
        if !output.status.success() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            panic!(
                "{program} {args:?} failed ({}): {}{}\nserver log, last lines reversed: {tail:#?}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
            );
        }
        String::from_utf8_lossy(&output.stdout).trim_end().to_owned()
    }
}

impl Drop for Cluster {
    /// An immediate stop of whatever still runs, so no PostgreSQL outlives the test.
    fn drop(&mut self) {
        if !self.data.join("postmaster.pid").exists() {
            return;
        }
        let mut command = std::process::Command::new(self.bindir.join("pg_ctl"));
        command
            .args(["-D", path(&self.data), "-w", "-t", "30", "stop", "-m", "immediate"])
            .current_dir(self._root.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(user) = &self.user {
            use std::os::unix::process::CommandExt;
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        let _ = command.status();
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}
