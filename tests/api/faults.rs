//! The database fails under a write load, and casefile keeps its promises: while the
//! database is out of reach requests fail fast with `UNAVAILABLE` (503) and `/readyz` says
//! so; when it is back (restarted, or a standby promoted) the server recovers by itself,
//! the live subscription catches up, and every acknowledged write is found afterwards.
//! Also: servers that start together migrate a fresh database once.
//!
//! The clusters are started by the tests from the machine's PostgreSQL binaries; the
//! server is the real binary. Each test prints its timings (see with `--nocapture`).

mod cluster;
mod load;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use diesel_async::RunQueryDsl;

use cluster::Cluster;
use load::{Casefile, Load};

/// Writers posting at once.
const WRITERS: usize = 4;
/// The longest any wait for recovery may take (the target is 10 s).
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);

/// A data dir for the server that the `postgres` OS user can reach (the embedded cluster
/// lives in it).
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("casefile-faults-").tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    dir
}

/// The bodies of every message stored in the database at `url`.
async fn stored_bodies(url: &str) -> BTreeSet<String> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        body: String,
    }
    let mut conn = casefile::db::pool::connect(url).await.expect("connect to check the writes");
    let rows: Vec<Row> =
        diesel::sql_query("SELECT body FROM messages").load(&mut conn).await.expect("messages");
    rows.into_iter().map(|row| row.body).collect()
}

fn millis(duration: Duration) -> u128 {
    duration.as_millis()
}

/// `since` to `at`, or "none".
fn after(since: Instant, at: Option<Instant>) -> String {
    at.map_or_else(|| "none".to_owned(), |at| format!("{} ms", millis(at - since)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_under_load_fails_fast_with_unavailable_and_loses_no_acknowledged_write() {
    let cluster = Cluster::init().await;
    cluster.start().await;
    cluster.psql("postgres", "CREATE DATABASE casefile").await;
    let data = data_dir();
    let server = Casefile::start(data.path(), &[("DATABASE_URL", &cluster.url("casefile"))]).await;
    let case = server.create_case("Outage").await;
    let mut load = Load::start(&server, &case, WRITERS).await;
    load.until_more_acknowledged(20, RECOVERY_LIMIT).await;

    let stopped = Instant::now();
    cluster.stop("fast").await;
    let stop_took = stopped.elapsed();
    load.until_failure_after(stopped, RECOVERY_LIMIT).await;
    load.until_readyz_after(503, stopped, RECOVERY_LIMIT).await;
    // The outage lasts a while; every write in it must fail, and fast.
    let down_from = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (ack_while_down, _) = load.first_after(down_from);
    assert_eq!(ack_while_down, None, "a write was acknowledged while PostgreSQL was stopped");

    let started = Instant::now();
    cluster.start().await;
    let start_took = started.elapsed();
    load.until_more_acknowledged(20, RECOVERY_LIMIT).await;
    load.until_readyz_after(200, started, RECOVERY_LIMIT).await;
    load.stop_writers().await;

    let (_, first_failure) = load.first_after(stopped);
    let (first_ack, _) = load.first_after(started);
    let (ready_503, ready_200) = readyz_times(&load, stopped, started);
    let (failures, slowest, _) = load.check_failures(stopped);
    let stored = stored_bodies(&cluster.url("casefile")).await;
    let acknowledged = load.check_nothing_lost(&stored, RECOVERY_LIMIT).await;
    println!(
        "PostgreSQL stop (pg_ctl stop -m fast, took {} ms) and start (pg_ctl start -w, took {} ms) \
         under {WRITERS} writers: time to detect (first failed write after the stop) {}, \
         /readyz 503 after {}; time to recover (first acknowledged write after the start) {}, \
         /readyz 200 after {}; {failures} failed writes, all UNAVAILABLE 503, the slowest in \
         {} ms; {acknowledged} writes acknowledged, all found in the database and sent to the \
         subscription",
        millis(stop_took),
        millis(start_took),
        after(stopped, first_failure),
        after(stopped, ready_503),
        after(started, first_ack),
        after(started, ready_200),
        millis(slowest),
    );
    assert!(first_ack.is_some_and(|at| at - started < RECOVERY_LIMIT));
}

/// When `/readyz` first said 503 after `stopped`, and 200 after `started`.
fn readyz_times(
    load: &Load,
    stopped: Instant,
    started: Instant,
) -> (Option<Instant>, Option<Instant>) {
    let seen = load.readyz.lock().expect("readyz");
    let first = |since: Instant, status: u16| {
        seen.iter().filter(|(at, s)| *at >= since && *s == status).map(|(at, _)| *at).min()
    };
    (first(stopped, 503), first(started, 200))
}

/// The embedded cluster's folder under the data dir.
fn embedded_cluster(data_dir: &Path) -> PathBuf {
    let cluster = data_dir.join("pg");
    assert!(cluster.join("PG_VERSION").is_file(), "the embedded cluster lives in <data dir>/pg");
    cluster
}

fn postmaster_pid(cluster: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(cluster.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_postmaster_killed_is_started_again_and_casefile_recovers_by_itself() {
    let data = data_dir();
    let server = Casefile::start(data.path(), &[]).await;
    let cluster = embedded_cluster(data.path());
    let case = server.create_case("Killed postmaster").await;
    let mut load = Load::start(&server, &case, WRITERS).await;
    load.until_more_acknowledged(20, RECOVERY_LIMIT).await;

    let old = postmaster_pid(&cluster).expect("the postmaster's pid");
    let killed = Instant::now();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(old), nix::sys::signal::Signal::SIGKILL)
        .expect("kill -9 the postmaster");
    // A new postmaster on the same cluster, then writes acknowledged again.
    while postmaster_pid(&cluster).is_none_or(|pid| pid == old || !alive(pid)) {
        assert!(killed.elapsed() < RECOVERY_LIMIT, "no new postmaster:\n{}", server.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let restarted = killed.elapsed();
    load.until_more_acknowledged(20, RECOVERY_LIMIT).await;
    load.until_readyz_after(200, killed + restarted, RECOVERY_LIMIT).await;
    load.stop_writers().await;

    let (_, first_failure) = load.first_after(killed);
    // Recovered: the first write acknowledged after the outage began (writes in flight
    // at the kill may still be acknowledged before it).
    let first_ack = first_failure.and_then(|at| load.first_after(at).0);
    let (failures, slowest, _) = load.check_failures(killed);
    let url = format!(
        "postgresql:///casefile?host={}&port=5432&user=casefile",
        cluster.to_str().expect("a UTF-8 path")
    );
    let stored = stored_bodies(&url).await;
    let acknowledged = load.check_nothing_lost(&stored, RECOVERY_LIMIT).await;
    let log = server.log_text();
    assert!(log.contains("embedded PostgreSQL exited unexpectedly"), "{log}");
    assert!(log.contains("restarted embedded PostgreSQL"), "{log}");
    println!(
        "embedded postmaster killed (SIGKILL) under {WRITERS} writers: first failed write after \
         {}, new postmaster after {} ms, time to recover (first acknowledged write after the \
         first failure, from the kill) {}; {failures} failed writes, all UNAVAILABLE 503, the slowest in {} ms; \
         {acknowledged} writes acknowledged, all found and sent to the subscription",
        after(killed, first_failure),
        millis(restarted),
        after(killed, first_ack),
        millis(slowest),
    );

    let now = postmaster_pid(&cluster).expect("the new postmaster's pid");
    drop(load);
    assert!(server.terminate().await.success(), "casefile stops cleanly after the restart");
    let began = Instant::now();
    while alive(now) {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "the restarted postmaster outlived casefile"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_a_promoted_synchronous_standby_carries_on_and_loses_no_acknowledged_write() {
    let primary = Cluster::init().await;
    primary.configure(&[("wal_level", "replica".to_owned()), ("max_wal_senders", "5".to_owned())]);
    primary.allow("host replication casefile 127.0.0.1/32 trust");
    primary.start().await;
    primary.psql("postgres", "CREATE DATABASE casefile").await;
    let standby = Cluster::standby_of(&primary, "standby1").await;
    standby.start().await;
    // Synchronous once the standby runs (a commit would wait for it forever before).
    primary.psql("postgres", "ALTER SYSTEM SET synchronous_standby_names = 'standby1'").await;
    primary.psql("postgres", "SELECT pg_reload_conf()").await;
    let began = Instant::now();
    let state = "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'";
    while primary.psql("postgres", state).await != "sync" {
        assert!(began.elapsed() < RECOVERY_LIMIT, "the standby did not become synchronous");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let url = format!(
        "postgresql://{}@127.0.0.1:{},127.0.0.1:{}/casefile?target_session_attrs=read-write",
        cluster::ROLE,
        primary.port,
        standby.port
    );
    let data = data_dir();
    let server = Casefile::start(data.path(), &[("DATABASE_URL", &url)]).await;
    let case = server.create_case("Failover").await;
    let mut load = Load::start(&server, &case, WRITERS).await;
    load.until_more_acknowledged(20, RECOVERY_LIMIT).await;

    let killed = Instant::now();
    primary.stop("immediate").await;
    let kill_took = killed.elapsed();
    standby.promote().await;
    let promoted = killed.elapsed();
    assert_eq!(standby.psql("postgres", "SELECT pg_is_in_recovery()").await, "f");
    load.until_more_acknowledged(20, RECOVERY_LIMIT).await;
    load.until_readyz_after(200, killed + promoted, RECOVERY_LIMIT).await;
    load.stop_writers().await;

    let (_, first_failure) = load.first_after(killed);
    // Recovered: the first write acknowledged after the outage began (writes in flight
    // at the kill may still be acknowledged before it).
    let first_ack = first_failure.and_then(|at| load.first_after(at).0);
    let (failures, slowest, _) = load.check_failures(killed);
    let stored = stored_bodies(&standby.url("casefile")).await;
    let acknowledged = load.check_nothing_lost(&stored, RECOVERY_LIMIT).await;
    let after_failover = load
        .acknowledged
        .lock()
        .expect("ack")
        .iter()
        .filter(|(_, at)| *at >= killed + promoted)
        .count();
    println!(
        "failover under {WRITERS} writers: primary stopped (pg_ctl stop -m immediate) in {} ms, \
         standby promoted {} ms after the kill; first failed write after {}, time to recover \
         (first acknowledged write after the first failure, from the kill) {}; {failures} failed writes, \
         all UNAVAILABLE 503, the slowest in {} ms; {acknowledged} \
         writes acknowledged ({after_failover} on the new primary), all found on the new primary and sent to the \
         subscription started before the failover",
        millis(kill_took),
        millis(promoted),
        after(killed, first_failure),
        after(killed, first_ack),
        millis(slowest),
    );
    assert!(after_failover > 0, "writes were acknowledged by the new primary");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_servers_migrating_a_fresh_database_together_apply_each_migration_once() {
    use diesel::migration::MigrationSource;
    let database = crate::common::empty_database().await;
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let url = database.url.clone();
            tokio::spawn(async move { casefile::db::migrations::run(&url).await })
        })
        .collect();
    let mut applied = Vec::new();
    for run in runs {
        applied.push(run.await.expect("a migration run").expect("every run succeeds"));
    }
    let embedded =
        MigrationSource::<diesel::pg::Pg>::migrations(&casefile::db::migrations::MIGRATIONS)
            .expect("migrations")
            .len();
    applied.sort_unstable();
    assert_eq!(applied, vec![0, 0, 0, embedded], "one run applied everything, the others nothing");

    #[derive(diesel::QueryableByName)]
    struct Recorded {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rows: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        versions: i64,
    }
    let mut conn = casefile::db::pool::connect(&database.url).await.expect("connect");
    let recorded: Recorded = diesel::sql_query(
        "SELECT count(*) AS rows, count(DISTINCT version) AS versions FROM __diesel_schema_migrations",
    )
    .get_result(&mut conn)
    .await
    .expect("recorded migrations");
    assert_eq!((recorded.rows, recorded.versions), (embedded as i64, embedded as i64));
}
