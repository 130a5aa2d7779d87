//! How the case list scales: latency and SQL statements of `cases` on 10,000 cases, for
//! a small and a full page, a page deep in the list (keyset: no OFFSET to pay for), other
//! orders, a word search, and detections nested under every case of a page.
//!
//! Run with `cargo bench --bench case_list`. It starts a throwaway PostgreSQL cluster
//! (or uses `CASEFILE_TEST_DATABASE_URL`'s server), seeds it, serves the real router on a
//! loopback port and prints one table.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use casefile::config::Limits;
use casefile::db::embedded::EmbeddedPostgres;
use casefile::db::{migrations, pool};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

const CASES: i64 = 10_000;
const DETECTIONS_PER_CASE: i64 = 3;
const RUNS: usize = 25;

const FIELDS: &str = "number name severity status detectionCount riskSummary { high highest } \
     assignee { email } subject { username } createdBy { email }";

struct Scenario {
    name: &'static str,
    query: String,
    variables: Value,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let (cluster, admin_url, url) = match std::env::var("CASEFILE_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let mut parsed = url::Url::parse(&base)?;
            parsed.set_path("/casefile_bench");
            (None, base, parsed.to_string())
        }
        _ => {
            let cluster = EmbeddedPostgres::start(dir.path()).await?;
            let admin = cluster.database_url("postgres");
            let url = cluster.database_url("casefile_bench");
            (Some(cluster), admin, url)
        }
    };
    let mut admin = AsyncPgConnection::establish(&admin_url).await?;
    diesel::sql_query("DROP DATABASE IF EXISTS casefile_bench WITH (FORCE)")
        .execute(&mut admin)
        .await?;
    diesel::sql_query("CREATE DATABASE casefile_bench").execute(&mut admin).await?;
    migrations::run(&url).await?;

    let statements = Arc::new(AtomicU64::new(0));
    let db = pool::build_counting(
        &url,
        8,
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
    let state = casefile::AppState::new(db, Limits::default(), dir.path().to_owned());
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
    let http = reqwest::Client::new();
    let run = |query: String, variables: Value| {
        let (http, endpoint, token) = (http.clone(), endpoint.clone(), token.clone());
        async move {
            let body: Value = http
                .post(&endpoint)
                .bearer_auth(&token)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await?
                .json()
                .await?;
            if body.get("errors").is_some() {
                anyhow::bail!("query failed: {body}");
            }
            Ok::<Value, anyhow::Error>(body)
        }
    };

    // A cursor 9,900 cases into the default order, for the deep page.
    let mut after: Option<String> = None;
    for _ in 0..99 {
        let body = run(
            "query($a: String) { cases(first: 100, after: $a) { pageInfo { endCursor } } }".into(),
            json!({ "a": after }),
        )
        .await?;
        after = body["data"]["cases"]["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }

    let page = |first: u32, extra: &str| {
        format!(
            "query($a: String) {{ cases(first: {first}, after: $a{extra}) {{ totalCount nodes {{ {FIELDS} }} }} }}"
        )
    };
    let nested = |first: u32| {
        format!(
            "{{ cases(first: {first}) {{ nodes {{ number detections(first: 5) {{ totalCount \
             nodes {{ ruleName subject {{ username }} }} }} mitreSummary {{ tacticId }} }} }} }}"
        )
    };
    let scenarios = [
        Scenario { name: "first: 5", query: page(5, ""), variables: json!({}) },
        Scenario { name: "first: 100", query: page(100, ""), variables: json!({}) },
        Scenario {
            name: "first: 100, after 9,900",
            query: page(100, ""),
            variables: json!({ "a": after }),
        },
        Scenario {
            name: "first: 100, NAME ASC",
            query: page(100, ", orderBy: { field: NAME, direction: ASC }"),
            variables: json!({}),
        },
        Scenario {
            name: "first: 100, ASSIGNEE DESC",
            query: page(100, ", orderBy: { field: ASSIGNEE, direction: DESC }"),
            variables: json!({}),
        },
        Scenario {
            name: "first: 100, search",
            query: page(100, ", filter: { search: \"beacon\" }"),
            variables: json!({}),
        },
        Scenario { name: "first: 5, 5 detections each", query: nested(5), variables: json!({}) },
        Scenario {
            name: "first: 100, 5 detections each",
            query: nested(100),
            variables: json!({}),
        },
    ];

    println!(
        "case list on {CASES} cases, {} detections; {RUNS} runs each after a warm-up",
        CASES * DETECTIONS_PER_CASE
    );
    println!(
        "{:<32} {:>10} {:>10} {:>11} {:>9}",
        "query", "median ms", "p90 ms", "statements", "× first:5"
    );
    let mut baseline = None;
    for scenario in &scenarios {
        for _ in 0..3 {
            run(scenario.query.clone(), scenario.variables.clone()).await?;
        }
        let mut times = Vec::with_capacity(RUNS);
        let mut counted: Vec<u64> = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let before = AtomicU64::load(&statements, Ordering::SeqCst);
            let start = Instant::now();
            run(scenario.query.clone(), scenario.variables.clone()).await?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            counted.push(AtomicU64::load(&statements, Ordering::SeqCst) - before);
        }
        times.sort_by(f64::total_cmp);
        let median = times[RUNS / 2];
        let p90 = times[RUNS * 9 / 10];
        let base = *baseline.get_or_insert(median);
        counted.sort_unstable();
        // The median run's count: a rare run also records the token's use (once a minute).
        let counted = counted[RUNS / 2];
        println!(
            "{:<32} {:>10.2} {:>10.2} {:>11} {:>9.2}",
            scenario.name,
            median,
            p90,
            counted,
            median / base
        );
    }
    if let Some(cluster) = cluster {
        drop(admin);
        cluster.stop().await?;
    }
    Ok(())
}

/// 10,000 cases over 4 analysts and 50 subjects, 3 detections each, straight in SQL. The
/// values are ASCII, so their lower-case forms (written here, and by `lower()` for the
/// sort keys) are the keys casefile's fold (`models::fold`) makes.
async fn seed(conn: &mut AsyncPgConnection) -> anyhow::Result<()> {
    let statements = [
        "INSERT INTO users (id, tenant_id, email, email_key, display_name, role) \
         SELECT gen_random_uuid(), t.id, 'analyst' || n || '@bench.test', \
           'analyst' || n || '@bench.test', 'Analyst ' || n, 'ANALYST' \
         FROM tenants t, generate_series(1, 4) n",
        "INSERT INTO subjects (id, tenant_id, username, username_key, department, department_key) \
         SELECT gen_random_uuid(), t.id, 'person' || n || '@bench.test', \
           'person' || n || '@bench.test', 'Dept ' || (n % 5), 'dept ' || (n % 5) \
         FROM tenants t, generate_series(1, 50) n",
        "INSERT INTO cases (id, tenant_id, number, kind, name, name_key, description, severity, status, \
           assignee_id, assignee_sort, subject_id, subject_sort, created_by_id, last_modified_by_id, \
           created_at, updated_at, archive_at) \
         SELECT gen_random_uuid(), t.id, n, 'SELF_MANAGED', 'Case ' || n, 'case ' || n, \
           CASE WHEN n % 50 = 0 THEN 'cobalt beacon seen' ELSE 'routine' END, n % 6, \
           (ARRAY['NEW','INVESTIGATING','ON_HOLD','ACTION_REQUIRED'])[1 + n % 4], \
           a.id, lower(a.display_name), s.id, lower(s.username), a.id, a.id, \
           now() - make_interval(mins => n), now() - make_interval(mins => n % 977), \
           now() + interval '180 days' - make_interval(mins => n) \
         FROM tenants t, generate_series(1, 10000) n \
         JOIN LATERAL (SELECT id, display_name FROM users WHERE role = 'ANALYST' \
                       ORDER BY email OFFSET n % 4 LIMIT 1) a ON true \
         JOIN LATERAL (SELECT id, username FROM subjects ORDER BY username OFFSET n % 50 LIMIT 1) s ON true",
        "UPDATE tenants SET next_case_number = 10001",
        "INSERT INTO detections (id, tenant_id, external_id, source, rule_name, rule_name_key, \
           observed_at, risk_score, device_hostname, device_hostname_key, actor, actor_key, mitre) \
         SELECT md5(c.id::text || k)::uuid, c.tenant_id, c.number || '-' || k, 'XDR', 'Rule ' || (c.number % 40), \
           'rule ' || (c.number % 40), now() - make_interval(hours => c.number % 500), (c.number + k) % 11, \
           'host-' || (c.number % 300), 'host-' || (c.number % 300), \
           'person' || (c.number % 50) || '@bench.test', 'person' || (c.number % 50) || '@bench.test', \
           '[{\"tacticId\":\"TA0002\",\"tacticName\":\"Execution\",\"techniqueId\":\"T1059\",\"techniqueName\":\"Scripting\"}]' \
         FROM cases c, generate_series(1, 3) k",
        "INSERT INTO case_detections (case_id, detection_id, tenant_id) \
         SELECT c.id, md5(c.id::text || k)::uuid, c.tenant_id FROM cases c, generate_series(1, 3) k",
        "UPDATE cases c SET detection_count = x.total, risk_high = x.high FROM ( \
           SELECT cd.case_id, count(*) AS total, count(*) FILTER (WHERE d.severity = 4) AS high \
           FROM case_detections cd JOIN detections d ON d.id = cd.detection_id GROUP BY cd.case_id) x \
         WHERE x.case_id = c.id",
        "ANALYZE",
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
