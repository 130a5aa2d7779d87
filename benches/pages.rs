//! Throughput of the benchmark's two read shapes under concurrent load: Q1, the first 50
//! open cases by last update with assignee, subject, detection count and totalCount, on
//! 10,000 cases of which 95% are closed; Q2, the first 100 detections of a case holding
//! 3,000 (default order) with the fields a case page shows and totalCount.
//!
//! Run with `cargo bench --bench pages`. It starts a throwaway PostgreSQL cluster (or uses
//! `CASEFILE_TEST_DATABASE_URL`'s server), seeds it in SQL, serves the real router on a
//! loopback port from a runtime of its own, and drives it with 16 and 64 concurrent
//! clients for `PAGES_SECONDS` seconds each (default 10). It prints requests per second,
//! p50/p99 latency and SQL statements per request (authentication included).
//! `PAGES_ONLY=Q1` (or `Q2`) runs one of them (for a profiler).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use casefile::config::Limits;
use casefile::db::embedded::EmbeddedPostgres;
use casefile::db::{migrations, pool};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

const Q1: &str = "query Q1 { cases(first: 50) { totalCount nodes { number name status updatedAt \
    detectionCount assignee { displayName } subject { username } } } }";
const Q2: &str = "query Q2($c: Int) { case(number: $c) { detections(first: 100) { totalCount \
    nodes { ruleName observedAt riskScore severity riskIndicators { name weight } \
    device { hostname } file { name sha256 } } } } }";

fn main() -> anyhow::Result<()> {
    let seconds: u64 =
        std::env::var("PAGES_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let load = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let server =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let (cluster, admin_url, url) = server.block_on(async {
        match std::env::var("CASEFILE_TEST_DATABASE_URL") {
            Ok(base) if !base.is_empty() => {
                let mut parsed = url::Url::parse(&base)?;
                parsed.set_path("/casefile_pages");
                Ok::<_, anyhow::Error>((None, base, parsed.to_string()))
            }
            _ => {
                let cluster = EmbeddedPostgres::start(dir.path()).await?;
                let admin = cluster.database_url("postgres");
                let url = cluster.database_url("casefile_pages");
                Ok((Some(cluster), admin, url))
            }
        }
    })?;
    let statements = Arc::new(AtomicU64::new(0));
    let (endpoint, token) = server.block_on(async {
        let mut admin = AsyncPgConnection::establish(&admin_url).await?;
        diesel::sql_query("DROP DATABASE IF EXISTS casefile_pages WITH (FORCE)")
            .execute(&mut admin)
            .await?;
        diesel::sql_query("CREATE DATABASE casefile_pages").execute(&mut admin).await?;
        migrations::run(&url).await?;
        let db = pool::build_counting(
            &url,
            16,
            Duration::from_secs(5),
            Duration::from_secs(30),
            Some(statements.clone()),
        )?;
        let token = {
            let mut conn = pool::get(&db).await?;
            let token = casefile::bootstrap::run(&mut conn).await?.expect("a first token");
            seed(&mut conn).await?;
            token
        };
        let storage = casefile::storage::Storage::local(&dir.path().join("evidence"))?;
        let state = casefile::AppState::new(
            db,
            Limits::default(),
            casefile::config::FileLimits::default(),
            dir.path().to_owned(),
            storage,
        )?;
        let app = casefile::router(state, Duration::from_secs(60));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}/graphql", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await;
        });
        Ok::<_, anyhow::Error>((endpoint, token))
    })?;

    println!("pid {} serving {endpoint}", std::process::id());
    println!(
        "{:<4} {:>7} {:>9} {:>8} {:>8} {:>11}",
        "", "clients", "req/s", "p50 ms", "p99 ms", "statements"
    );
    load.block_on(async {
        let http = reqwest::Client::builder().pool_max_idle_per_host(128).build()?;
        let only = std::env::var("PAGES_ONLY").unwrap_or_default();
        for (name, query, variables) in [("Q1", Q1, json!({})), ("Q2", Q2, json!({ "c": 1 }))] {
            if !only.is_empty() && only != name {
                continue;
            }
            let body = json!({ "query": query, "variables": variables });
            let check: Value =
                http.post(&endpoint).bearer_auth(&token).json(&body).send().await?.json().await?;
            anyhow::ensure!(check.get("errors").is_none(), "{name} failed: {check}");
            for clients in [16, 64] {
                // A warm-up of a second, then the measured run.
                drive(&http, &endpoint, &token, &body, clients, Duration::from_secs(1)).await?;
                let before = AtomicU64::load(&statements, Ordering::SeqCst);
                let (count, mut times, elapsed) =
                    drive(&http, &endpoint, &token, &body, clients, Duration::from_secs(seconds))
                        .await?;
                let per_request =
                    (AtomicU64::load(&statements, Ordering::SeqCst) - before) as f64 / count as f64;
                times.sort_by(f64::total_cmp);
                let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
                println!(
                    "{name:<4} {clients:>7} {:>9.0} {:>8.1} {:>8.1} {:>11.2}",
                    count as f64 / elapsed,
                    at(0.5),
                    at(0.99),
                    per_request
                );
            }
        }
        Ok::<_, anyhow::Error>(())
    })?;
    if let Some(cluster) = cluster {
        server.block_on(cluster.stop())?;
    }
    Ok(())
}

/// `clients` loops sending `body` until `duration` is over: how many answered, their
/// latencies in ms, and the seconds it took.
async fn drive(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    body: &Value,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(u64, Vec<f64>, f64)> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (http, endpoint, token, body) =
            (http.clone(), endpoint.to_owned(), token.to_owned(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            while Instant::now() < deadline {
                let sent = Instant::now();
                let response = http.post(&endpoint).bearer_auth(&token).json(&body).send().await?;
                anyhow::ensure!(response.status().is_success(), "status {}", response.status());
                let _ = response.bytes().await?;
                times.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(times)
        }));
    }
    let mut times = Vec::new();
    for task in tasks {
        times.extend(task.await??);
    }
    Ok((times.len() as u64, times, start.elapsed().as_secs_f64()))
}

/// 10,000 cases (95% resolved) over 4 analysts and 50 subjects, 3 detections each, and
/// case 1 with 3,000; straight in SQL. Links copy their detection's sort keys when the
/// schema has them (migration 2026-11-30-000008), so the same bench runs before it.
async fn seed(conn: &mut AsyncPgConnection) -> anyhow::Result<()> {
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let keyed: Exists = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
         WHERE table_name = 'case_detections' AND column_name = 'observed_at') AS exists",
    )
    .get_result(conn)
    .await?;
    let links = if keyed.exists {
        "INSERT INTO case_detections (case_id, detection_id, tenant_id, observed_at, ingested_at, \
           risk_score, rule_name_key) \
         SELECT c.id, d.id, c.tenant_id, d.observed_at, d.ingested_at, d.risk_score, d.rule_name_key \
         FROM detections d JOIN cases c ON c.number = split_part(d.external_id, '-', 1)::int"
    } else {
        "INSERT INTO case_detections (case_id, detection_id, tenant_id) \
         SELECT c.id, d.id, c.tenant_id \
         FROM detections d JOIN cases c ON c.number = split_part(d.external_id, '-', 1)::int"
    };
    let statements = [
        "INSERT INTO users (id, tenant_id, email, email_key, display_name, role) \
         SELECT gen_random_uuid(), t.id, 'analyst' || n || '@bench.test', \
           'analyst' || n || '@bench.test', 'Analyst ' || n, 'ANALYST' \
         FROM tenants t, generate_series(1, 4) n",
        "INSERT INTO subjects (id, tenant_id, username, username_key) \
         SELECT gen_random_uuid(), t.id, 'person' || n || '@bench.test', \
           'person' || n || '@bench.test' FROM tenants t, generate_series(1, 50) n",
        "INSERT INTO cases (id, tenant_id, number, kind, name, name_key, severity, status, \
           assignee_id, assignee_sort, subject_id, subject_sort, created_by_id, \
           created_at, updated_at, archive_at) \
         SELECT gen_random_uuid(), t.id, n, 'SELF_MANAGED', 'Case ' || n, 'case ' || n, n % 6, \
           CASE WHEN n % 20 = 0 OR n = 1 THEN (ARRAY['NEW','INVESTIGATING','ON_HOLD','ACTION_REQUIRED'])[1 + n % 4] \
                ELSE 'RESOLVED' END, \
           a.id, lower(a.display_name), s.id, lower(s.username), a.id, \
           now() - make_interval(mins => n), now() - make_interval(mins => n % 977), \
           now() + interval '180 days' - make_interval(mins => n) \
         FROM tenants t, generate_series(1, 10000) n \
         JOIN LATERAL (SELECT id, display_name FROM users WHERE role = 'ANALYST' \
                       ORDER BY email OFFSET n % 4 LIMIT 1) a ON true \
         JOIN LATERAL (SELECT id, username FROM subjects ORDER BY username OFFSET n % 50 LIMIT 1) s ON true",
        "UPDATE tenants SET next_case_number = 10001",
        "INSERT INTO detections (id, tenant_id, external_id, source, rule_name, rule_name_key, \
           observed_at, risk_score, risk_indicators, device_hostname, device_hostname_key, actor, \
           actor_key, file_name, file_sha256) \
         SELECT gen_random_uuid(), c.tenant_id, c.number || '-' || k, 'XDR', 'Rule ' || (k % 40), \
           'rule ' || (k % 40), now() - make_interval(mins => k * 7 + c.number), (c.number + k) % 11, \
           '[{\"name\":\"Uploaded to personal cloud storage\",\"weight\":3}]', \
           'host-' || (k % 300), 'host-' || (k % 300), \
           'person' || (k % 50) || '@bench.test', 'person' || (k % 50) || '@bench.test', \
           'report-' || k || '.pdf', md5(k::text) || md5(c.number::text) \
         FROM cases c CROSS JOIN LATERAL generate_series(1, CASE WHEN c.number = 1 THEN 3000 ELSE 3 END) k",
        links,
        "UPDATE cases c SET detection_count = x.total, risk_high = x.high FROM ( \
           SELECT cd.case_id, count(*) AS total, count(*) FILTER (WHERE d.severity = 4) AS high \
           FROM case_detections cd JOIN detections d ON d.id = cd.detection_id GROUP BY cd.case_id) x \
         WHERE x.case_id = c.id",
        "VACUUM ANALYZE",
    ];
    for sql in statements {
        let start = Instant::now();
        diesel::sql_query(sql)
            .execute(conn)
            .await
            .map_err(|e| anyhow::anyhow!("{e}: {}", &sql[..60.min(sql.len())]))?;
        eprintln!("seed: {:.1}s {}", start.elapsed().as_secs_f64(), &sql[..40.min(sql.len())]);
    }
    Ok(())
}
