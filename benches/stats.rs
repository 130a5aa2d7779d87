//! How `caseStats` scales: the median and p99 latency (over HTTP, with authentication
//! and GraphQL) and the SQL statements of `caseStats(window:)` for every window, in a
//! tenant of 10,000, 100,000 and 1,000,000 cases seeded by `casefile seed --scale large`'s
//! generator (5% open, the rest resolved or archived over 300 days).
//!
//! Run with `cargo bench --bench stats` (release). It starts a throwaway PostgreSQL
//! cluster (or uses `CASEFILE_TEST_DATABASE_URL`'s server), seeds one tenant per size
//! (each size after the other, so the largest shares the tables with the smaller ones),
//! serves the real router on a loopback port and prints one table. `STATS_BENCH_CASES`
//! (comma-separated) picks other sizes; `STATS_BENCH_RUNS` the runs per window (default 50).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use casefile::config::Limits;
use casefile::db::embedded::EmbeddedPostgres;
use casefile::db::{migrations, pool};
use casefile::domain::seed::{self, Scale, SeedOptions};
use casefile::models::ids::UserId;
use casefile::models::{tokens, users};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

const WINDOWS: [&str; 4] = ["P7D", "P30D", "P90D", "P365D"];
const QUERY: &str = "query($w: StatsWindow!) { caseStats(window: $w) { window \
    openByStatus { status count } openBySeverity { severity count } openByKind { kind count } \
    resolvedByResolution { resolution count } createdPerDay { day count } \
    resolvedPerDay { day count } created previousCreated resolved previousResolved \
    meanTimeToAssignSeconds meanTimeToResolveSeconds \
    meanTimeToResolveBySeverity { severity seconds } \
    topRules { name count } topDevices { name count } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sizes: Vec<usize> = std::env::var("STATS_BENCH_CASES")
        .unwrap_or_else(|_| "10000,100000,1000000".to_owned())
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let runs: usize =
        std::env::var("STATS_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(50);
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let (cluster, admin_url, url) = match std::env::var("CASEFILE_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let mut parsed = url::Url::parse(&base)?;
            parsed.set_path("/casefile_stats_bench");
            (None, base, parsed.to_string())
        }
        _ => {
            let cluster = EmbeddedPostgres::start(dir.path()).await?;
            let admin = cluster.database_url("postgres");
            let url = cluster.database_url("casefile_stats_bench");
            (Some(cluster), admin, url)
        }
    };
    let mut admin = AsyncPgConnection::establish(&admin_url).await?;
    diesel::sql_query("DROP DATABASE IF EXISTS casefile_stats_bench WITH (FORCE)")
        .execute(&mut admin)
        .await?;
    diesel::sql_query("CREATE DATABASE casefile_stats_bench").execute(&mut admin).await?;
    migrations::run(&url).await?;

    let statements = Arc::new(AtomicU64::new(0));
    let db = pool::build_counting(
        &url,
        8,
        Duration::from_secs(5),
        Duration::from_secs(30),
        Some(statements.clone()),
    )?;
    let storage = casefile::storage::Storage::local(&dir.path().join("evidence"))?;
    let state = casefile::AppState::new(
        db.clone(),
        Limits::default(),
        casefile::config::FileLimits::default(),
        dir.path().to_owned(),
        storage,
    )
    .expect("app state");
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

    let mut table = Vec::new();
    for (i, &cases) in sizes.iter().enumerate() {
        let mut conn = pool::get(&db).await?;
        let mut plan = Scale::Large.plan();
        plan.cases = cases;
        let options =
            SeedOptions { plan, seed: 100 + i as u64, anchor: seed::today(), batch: 10_000 };
        let started = Instant::now();
        let seeded = seed::run(&mut conn, &options, &mut |_| {}).await?;
        let seeded = seeded.as_slice().first().ok_or_else(|| anyhow::anyhow!("nothing seeded"))?;
        eprintln!(
            "seeded {cases} cases ({} open), {} detections in {:.0} s",
            seeded.open_cases,
            seeded.detections,
            started.elapsed().as_secs_f64()
        );
        diesel::sql_query("VACUUM ANALYZE").execute(&mut *conn).await?;
        let admin = users::find_any(&mut conn, UserId(seeded.admin_id))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no seeded admin"))?;
        let (_, token) = tokens::create(&mut conn, &admin, "bench", None).await?;
        drop(conn);

        for window in WINDOWS {
            let run = async || -> anyhow::Result<Value> {
                let body: Value = http
                    .post(&endpoint)
                    .bearer_auth(&token)
                    .json(&json!({ "query": QUERY, "variables": { "w": window } }))
                    .send()
                    .await?
                    .json()
                    .await?;
                if body.get("errors").is_some() {
                    anyhow::bail!("caseStats failed: {body}");
                }
                Ok(body)
            };
            for _ in 0..5 {
                run().await?;
            }
            let mut times = Vec::with_capacity(runs);
            let mut counted = Vec::with_capacity(runs);
            let mut last = Value::Null;
            for _ in 0..runs {
                let before = AtomicU64::load(&statements, Ordering::SeqCst);
                let start = Instant::now();
                last = run().await?;
                times.push(start.elapsed().as_secs_f64() * 1000.0);
                counted.push(AtomicU64::load(&statements, Ordering::SeqCst) - before);
            }
            times.sort_by(f64::total_cmp);
            counted.sort_unstable();
            let stats = &last["data"]["caseStats"];
            table.push(format!(
                "{:>9} {:<6} {:>10.2} {:>8.2} {:>11} {:>8} {:>9}",
                cases,
                window,
                times[runs / 2],
                times[(runs * 99 / 100).min(runs - 1)],
                counted[runs / 2],
                stats["created"],
                stats["resolved"],
            ));
        }
    }
    println!("caseStats over HTTP; {runs} runs per window after a warm-up");
    println!(
        "{:>9} {:<6} {:>10} {:>8} {:>11} {:>8} {:>9}",
        "cases", "window", "median ms", "p99 ms", "statements", "created", "resolved"
    );
    for line in table {
        println!("{line}");
    }
    if let Some(cluster) = cluster {
        drop(admin);
        cluster.stop().await?;
    }
    Ok(())
}
