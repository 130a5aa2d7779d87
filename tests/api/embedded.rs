//! Integration tests of the embedded PostgreSQL cluster manager.
//!
//! They start real clusters from the machine's PostgreSQL binaries, each in its own
//! temporary data dir, so they run in parallel with each other and with other tests.
//! As root (the CI case) the clusters run as the `postgres` OS user.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use casefile::db::embedded::EmbeddedPostgres;

fn is_root() -> bool {
    // The owner of a file we just created is our effective uid.
    let probe = tempfile::NamedTempFile::new().expect("create probe file");
    std::os::unix::fs::MetadataExt::uid(&probe.as_file().metadata().expect("stat probe file")) == 0
}

/// A fresh data dir that the `postgres` OS user can reach (the tempdir's mode depends on
/// the umask, so set it explicitly).
fn reachable_data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("create tempdir");
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod tempdir");
    let data_dir = tmp.path().join("data");
    (tmp, data_dir)
}

/// Pid of the postmaster serving `cluster_dir`, from its `postmaster.pid`.
fn postmaster_pid(cluster_dir: &Path) -> u32 {
    let text = fs::read_to_string(cluster_dir.join("postmaster.pid")).expect("read postmaster.pid");
    text.lines().next().and_then(|l| l.trim().parse().ok()).expect("pid in postmaster.pid")
}

/// Pids of the processes whose parent is `parent` (the postmaster's backends and workers).
fn children_of(parent: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else { continue };
        // "pid (comm) state ppid ...": comm may contain spaces, so parse after the last ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(parent) {
            children.push(pid);
        }
    }
    children
}

/// Pids of live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &Path) -> Vec<(u32, String)> {
    let needle = needle.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else { continue };
        if cmdline.windows(needle.len()).any(|w| w == needle) {
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    // Zombies have no cmdline; reaped processes have no /proc entry at all.
    fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

/// Start, and print how long it took (visible with --nocapture).
async fn start(data_dir: &Path, what: &str) -> EmbeddedPostgres {
    let began = Instant::now();
    let pg = EmbeddedPostgres::start(data_dir).await.unwrap_or_else(|e| panic!("{what}: {e}"));
    eprintln!(
        "{what}: ready in {} ms (owns server: {})",
        began.elapsed().as_millis(),
        pg.owns_server()
    );
    pg
}

#[tokio::test]
async fn cluster_started_twice_on_same_data_dir_keeps_its_data() {
    let (_tmp, data_dir) = reachable_data_dir();

    let pg = start(&data_dir, "first start (initdb)").await;
    assert!(pg.owns_server());
    assert!(
        pg.cluster_dir().starts_with(&data_dir),
        "cluster {:?} should be in the data dir",
        pg.cluster_dir()
    );
    assert!(pg.cluster_dir().join("PG_VERSION").is_file());
    assert!(pg.socket_dir().join(".s.PGSQL.5432").exists());
    let url = pg.database_url("keep");
    assert!(url.starts_with("postgresql:///keep?host=/"), "{url}");
    pg.ensure_database("keep").await.expect("create database");
    pg.ensure_database("keep").await.expect("ensure_database is idempotent");
    pg.psql(
        "keep",
        "CREATE TABLE t (id int PRIMARY KEY, note text); INSERT INTO t VALUES (42, 'kept');",
    )
    .await
    .expect("create table and row");
    let cluster_dir = pg.cluster_dir().to_path_buf();
    pg.stop().await.expect("stop");
    assert!(
        !cluster_dir.join("postmaster.pid").exists(),
        "a stopped cluster has no postmaster.pid"
    );

    let pg = start(&data_dir, "second start").await;
    assert!(pg.owns_server());
    assert_eq!(pg.cluster_dir(), cluster_dir);
    pg.ensure_database("keep").await.expect("database still there");
    let row = pg.psql("keep", "SELECT id, note FROM t").await.expect("select");
    assert_eq!(row, "42|kept");
    pg.stop().await.expect("stop again");
}

#[tokio::test]
async fn second_start_attaches_to_running_cluster() {
    let (_tmp, data_dir) = reachable_data_dir();

    let a = start(&data_dir, "A").await;
    assert!(a.owns_server());
    let b = start(&data_dir, "B").await;
    assert!(!b.owns_server(), "B must attach to A's postmaster");
    assert_eq!(a.cluster_dir(), b.cluster_dir());
    assert_eq!(a.database_url("x"), b.database_url("x"));
    b.ensure_database("attached").await.expect("B creates a database");
    assert_eq!(b.psql("attached", "SELECT 1 + 1").await.expect("B queries"), "2");

    let pid = postmaster_pid(a.cluster_dir());
    b.stop().await.expect("stopping B is a no-op");
    assert!(alive(pid), "stopping an attached handle must leave the server running");
    assert_eq!(a.psql("attached", "SELECT 'still up'").await.expect("A still queries"), "still up");

    let cluster_dir = a.cluster_dir().to_path_buf();
    a.stop().await.expect("stop A");
    assert!(!alive(pid), "postmaster {pid} still alive after stop");
    let left = processes_mentioning(&cluster_dir);
    assert!(left.is_empty(), "processes still mention {}: {left:?}", cluster_dir.display());
}

#[tokio::test]
async fn data_dir_unreachable_for_postgres_user_moves_cluster() {
    if !is_root() {
        eprintln!(
            "not running as root: skipping the relocation of a cluster out of an unreachable data dir"
        );
        return;
    }
    // A root-owned 0700 folder (like /root) that the postgres user cannot traverse.
    let tmp = tempfile::tempdir().expect("create tempdir");
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o700)).expect("chmod tempdir");
    let data_dir = tmp.path().join("data");

    let pg = start(&data_dir, "unreachable data dir").await;
    let cluster_dir = pg.cluster_dir().to_path_buf();
    assert!(
        !cluster_dir.starts_with(tmp.path()),
        "cluster {} should be outside the data dir",
        cluster_dir.display()
    );
    assert!(
        cluster_dir.starts_with("/var/lib/casefile/clusters")
            || cluster_dir.starts_with("/var/tmp"),
        "unexpected cluster place {}",
        cluster_dir.display()
    );
    assert!(!data_dir.join("pg").exists(), "no cluster folder in the data dir");
    let result = async {
        pg.ensure_database("moved").await?;
        pg.psql("moved", "CREATE TABLE t AS SELECT 7 AS n").await?;
        pg.stop().await?;
        // The placement is deterministic: the next start finds the same cluster.
        let pg = start(&data_dir, "unreachable data dir, again").await;
        assert_eq!(pg.cluster_dir(), cluster_dir);
        let n = pg.psql("moved", "SELECT n FROM t").await?;
        pg.stop().await?;
        Ok::<_, casefile::db::embedded::EmbeddedError>(n)
    }
    .await;
    // Relocated clusters are not under the tempdir: clean up before asserting.
    let _ = fs::remove_dir_all(&cluster_dir);
    assert_eq!(result.expect("relocated cluster works"), "7");
}

#[tokio::test]
async fn stop_leaves_no_postgres_process() {
    let (_tmp, data_dir) = reachable_data_dir();
    let pg = start(&data_dir, "stop test").await;
    let cluster_dir = pg.cluster_dir().to_path_buf();
    // A client connection, so there is a backend too.
    assert_eq!(pg.psql("postgres", "SELECT current_user").await.expect("query"), "casefile");
    let pid = postmaster_pid(&cluster_dir);
    let children = children_of(pid);
    assert!(!children.is_empty(), "a running postmaster has auxiliary processes");
    assert!(
        !processes_mentioning(&cluster_dir).is_empty(),
        "the postmaster's command line names its cluster"
    );

    pg.stop().await.expect("stop");
    assert!(!alive(pid), "postmaster {pid} survived stop()");
    let survivors: Vec<u32> = children.into_iter().filter(|c| alive(*c)).collect();
    assert!(survivors.is_empty(), "postgres children survived stop(): {survivors:?}");
    let left = processes_mentioning(&cluster_dir);
    assert!(left.is_empty(), "processes still mention {}: {left:?}", cluster_dir.display());
    assert!(!cluster_dir.join("postmaster.pid").exists());
}

#[tokio::test]
async fn stale_postmaster_pid_does_not_block_start() {
    let (_tmp, data_dir) = reachable_data_dir();
    let pg = start(&data_dir, "stale pid: first start").await;
    let cluster_dir = pg.cluster_dir().to_path_buf();
    let pid_file = cluster_dir.join("postmaster.pid");
    let stale = fs::read_to_string(&pid_file).expect("read postmaster.pid");
    pg.stop().await.expect("stop");

    // A crash leaves postmaster.pid behind. Its pid may be dead, or reused by an unrelated
    // live process (typical after a container restart).
    let dead_pid = {
        let mut child = std::process::Command::new("true").spawn().expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait true");
        pid
    };
    let mut unrelated = std::process::Command::new("sleep").arg("60").spawn().expect("spawn sleep");
    for fake_pid in [dead_pid, unrelated.id()] {
        let rest = stale.split_once('\n').map_or("", |(_, rest)| rest);
        fs::write(&pid_file, format!("{fake_pid}\n{rest}")).expect("write stale postmaster.pid");
        let pg = start(&data_dir, &format!("stale pid {fake_pid}")).await;
        assert!(
            pg.owns_server(),
            "a stale postmaster.pid must not be mistaken for a running server"
        );
        assert_eq!(pg.psql("postgres", "SELECT 1").await.expect("query"), "1");
        pg.stop().await.expect("stop");
    }
    unrelated.kill().expect("kill sleep");
    unrelated.wait().expect("reap sleep");
}
