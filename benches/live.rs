//! How live subscriptions scale: N subscribers (1,000 and 10,000) on one case, and 1,000
//! subscribers on 1,000 different cases; messages posted while they listen; delivery
//! latency, events lost, and the server's memory per subscriber. Then the write
//! throughput of 16 concurrent writers in one tenant against 16 spread over 10 tenants
//! (what serializing a tenant's appends under its head row costs).
//!
//! Run with `cargo build --release && cargo bench --bench live`. The server is the release
//! binary (`CASEFILE_BIN`, default `target/release/casefile`) run as a child process on a
//! database of its own (a throwaway cluster, or `CASEFILE_TEST_DATABASE_URL`'s server), so
//! that its RSS is its own; the subscribers are WebSocket clients in this process. Both
//! share this machine's cores.
//!
//! Latency is taken from just before the `postMessage` request is sent (the commit lies
//! between that and its response) to the moment a subscriber reads the event: an upper
//! bound of commit → receipt.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use casefile::db::embedded::EmbeddedPostgres;
use casefile::db::migrations;
use casefile::models::ids::UserId;
use casefile::models::tenants::{self, NewTenant};
use casefile::models::tokens;
use casefile::models::users::{self, NewUser, Role};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SELECTION: &str = "subscription($c: ID!) { caseEvents(caseId: $c) { cursor kind caseId } }";
const POST: &str = "mutation($i: PostMessageInput!) { postMessage(input: $i) { message { id } } }";
const MESSAGES: usize = 20;
const WRITE_SECONDS: u64 = 10;
const WRITERS: usize = 16;

type Receipts = Arc<Mutex<HashMap<String, Vec<Instant>>>>;

struct Server {
    child: tokio::process::Child,
    base: String,
    token: String,
    database_url: String,
}

/// The last sequence of the `Default` tenant's change record.
async fn default_head(url: &str) -> anyhow::Result<i64> {
    #[derive(diesel::QueryableByName)]
    struct Head {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        last_sequence: i64,
    }
    let mut conn = AsyncPgConnection::establish(url).await?;
    let head: Head = diesel::sql_query(
        "SELECT h.last_sequence FROM audit_heads h JOIN tenants t ON t.id = h.tenant_id \
         WHERE t.name = 'Default'",
    )
    .get_result(&mut conn)
    .await?;
    Ok(head.last_sequence)
}

impl Server {
    fn rss_kib(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            })
            .unwrap_or(0)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let (_cluster, admin_url, url) = match std::env::var("CASEFILE_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let mut parsed = url::Url::parse(&base)?;
            parsed.set_path("/casefile_live_bench");
            (None, base, parsed.to_string())
        }
        _ => {
            let cluster = EmbeddedPostgres::start(dir.path()).await?;
            let admin = cluster.database_url("postgres");
            let url = cluster.database_url("casefile_live_bench");
            (Some(cluster), admin, url)
        }
    };
    let mut admin = AsyncPgConnection::establish(&admin_url).await?;
    diesel::sql_query("DROP DATABASE IF EXISTS casefile_live_bench WITH (FORCE)")
        .execute(&mut admin)
        .await?;
    diesel::sql_query("CREATE DATABASE casefile_live_bench").execute(&mut admin).await?;
    migrations::run(&url).await?;

    let server = start_server(&url, dir.path()).await?;
    let http = reqwest::Client::new();
    println!("server: {} (RSS {} MiB idle)", server.base, server.rss_kib() / 1024);
    println!();
    println!(
        "| scenario | subscribers | events expected | received | lost | p50 ms | p99 ms | max ms | server RSS / subscriber |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for n in [1_000, 10_000] {
        let case =
            create_case(&http, &server.base, &server.token, &format!("One case {n}")).await?;
        fan_out(&http, &server, &format!("{n} on one case"), &vec![case; n]).await?;
    }
    let mut cases = Vec::new();
    for i in 0..1_000 {
        cases.push(create_case(&http, &server.base, &server.token, &format!("Many {i}")).await?);
    }
    fan_out(&http, &server, "1,000 on 1,000 cases", &cases).await?;

    println!();
    let mut conn = AsyncPgConnection::establish(&url).await?;
    let one = throughput(&http, &server, &mut conn, 1).await?;
    let ten = throughput(&http, &server, &mut conn, 10).await?;
    println!("| writers | tenants | messages/s |");
    println!("| --- | --- | --- |");
    println!("| {WRITERS} | 1 | {one:.0} |");
    println!("| {WRITERS} | 10 | {ten:.0} |");
    println!("one tenant / ten tenants: {:.2}", one / ten);
    drop(server);
    Ok(())
}

async fn start_server(url: &str, dir: &std::path::Path) -> anyhow::Result<Server> {
    let bin = std::env::var("CASEFILE_BIN").unwrap_or_else(|_| "target/release/casefile".into());
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.local_addr()?.port()
    };
    let data = dir.join("server");
    std::fs::create_dir_all(&data)?;
    let child = tokio::process::Command::new(&bin)
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("CASEFILE_LISTEN", format!("127.0.0.1:{port}"))
        .env("CASEFILE_DATA_DIR", &data)
        .env("CASEFILE_POOL_SIZE", "16")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!("starting {bin} (build it with cargo build --release): {e}")
        })?;
    let base = format!("127.0.0.1:{port}");
    let token_file = data.join("admin-token");
    for _ in 0..600 {
        if let Ok(token) = std::fs::read_to_string(&token_file)
            && reqwest::get(format!("http://{base}/readyz"))
                .await
                .is_ok_and(|r| r.status().is_success())
        {
            return Ok(Server {
                child,
                base,
                token: token.trim().to_owned(),
                database_url: url.to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the server was not ready within 60 s")
}

async fn graphql(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let body: Value = http
        .post(format!("http://{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    if body.get("errors").is_some() {
        anyhow::bail!("request failed: {body}");
    }
    Ok(body)
}

async fn create_case(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    name: &str,
) -> anyhow::Result<String> {
    let body = graphql(
        http,
        base,
        token,
        "mutation($i: CreateCaseInput!) { createCase(input: $i) { case { id } } }",
        json!({ "i": { "name": name } }),
    )
    .await?;
    Ok(body["data"]["createCase"]["case"]["id"].as_str().unwrap_or_default().to_owned())
}

/// One subscriber per entry of `cases` (a socket each), then messages posted on every
/// distinct case; every subscriber of a case must receive each of its case's events.
async fn fan_out(
    http: &reqwest::Client,
    server: &Server,
    name: &str,
    cases: &[String],
) -> anyhow::Result<()> {
    let rss_before = server.rss_kib();
    let receipts: Receipts = Arc::new(Mutex::new(HashMap::new()));
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(cases.len());
    for (n, case) in cases.iter().enumerate() {
        let url = format!("ws://{}/graphql/ws", server.base);
        let token = server.token.clone();
        let case = case.clone();
        let receipts = receipts.clone();
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut request = url.into_client_request().expect("request");
            request.headers_mut().insert("sec-websocket-protocol", "graphql-transport-ws".parse().expect("header"));
            let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else { return };
            let init = json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } });
            let _ = socket.send(Message::Text(init.to_string().into())).await;
            let _ = socket.next().await;
            let subscribe = json!({ "id": n.to_string(), "type": "subscribe", "payload": { "query": SELECTION, "variables": { "c": case } } });
            let _ = socket.send(Message::Text(subscribe.to_string().into())).await;
            let _ = ready.send(()).await;
            while let Some(Ok(frame)) = socket.next().await {
                let Message::Text(text) = frame else { continue };
                let now = Instant::now();
                let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
                match value["type"].as_str() {
                    Some("next") => {
                        let cursor = value["payload"]["data"]["caseEvents"]["cursor"].as_str().unwrap_or_default().to_owned();
                        receipts.lock().await.entry(cursor).or_default().push(now);
                    }
                    Some("ping") => {
                        let _ = socket.send(Message::Text(r#"{"type":"pong"}"#.into())).await;
                    }
                    _ => {}
                }
            }
        }));
        // Connect in waves so the accept queue keeps up.
        if n % 200 == 199 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    drop(ready_tx);
    let mut ready = 0;
    while ready < cases.len() {
        match tokio::time::timeout(Duration::from_secs(120), ready_rx.recv()).await {
            Ok(Some(())) => ready += 1,
            _ => break,
        }
    }
    // Let the last subscriptions join the feed.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_after = server.rss_kib();
    let mut by_case: HashMap<&String, usize> = HashMap::new();
    for case in cases {
        *by_case.entry(case).or_default() += 1;
    }
    let distinct: Vec<&String> = by_case.keys().copied().collect();
    let messages = if distinct.len() == 1 { MESSAGES } else { 1 };
    let base = default_head(&server.database_url).await?;
    let mut sent: Vec<(Instant, String, usize)> = Vec::new();
    for round in 0..messages {
        for case in &distinct {
            let at = Instant::now();
            let body = graphql(
                http,
                &server.base,
                &server.token,
                POST,
                json!({ "i": { "caseId": case, "body": format!("m{round}") } }),
            )
            .await?;
            let id = body["data"]["postMessage"]["message"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            sent.push((at, id, by_case[case]));
            if distinct.len() == 1 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let expected: usize = sent.iter().map(|(_, _, n)| n).sum();
    // Wait until everything arrived or 30 s passed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let received: usize = receipts.lock().await.values().map(Vec::len).sum();
        if received >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The messages were posted one after the other, nothing else wrote meanwhile: the
    // k-th message is the event with sequence base + k.
    let receipts = receipts.lock().await;
    let mut latencies: Vec<f64> = Vec::new();
    let mut received = 0;
    for (cursor, times) in receipts.iter() {
        let Some((sent_at, _, _)) =
            usize::try_from(sequence_of(cursor) - base - 1).ok().and_then(|k| sent.get(k))
        else {
            continue;
        };
        received += times.len();
        latencies.extend(times.iter().map(|t| t.duration_since(*sent_at).as_secs_f64() * 1000.0));
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let per_subscriber = (rss_after.saturating_sub(rss_before)) as f64 / cases.len() as f64;
    println!(
        "| {name} | {} connected of {} | {expected} | {received} | {} | {:.1} | {:.1} | {:.1} | {:.1} KiB |",
        ready,
        cases.len(),
        expected.saturating_sub(received),
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        per_subscriber
    );
    for task in tasks {
        task.abort();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

fn sequence_of(cursor: &str) -> i64 {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.split(':').nth(2).and_then(|s| s.parse().ok()))
        .unwrap_or(0)
}

/// Messages per second that 16 writers post for a while, in `tenants` tenants.
async fn throughput(
    http: &reqwest::Client,
    server: &Server,
    conn: &mut AsyncPgConnection,
    tenants: usize,
) -> anyhow::Result<f64> {
    let mut targets = Vec::new();
    for t in 0..tenants {
        let tenant =
            tenants::insert(conn, &NewTenant::new(&format!("Throughput {tenants}-{t}"), &[]))
                .await?;
        let email = format!("writer-{tenants}-{t}@example.test");
        let user = users::insert(
            conn,
            &NewUser {
                id: UserId::new(),
                tenant_id: tenant.id,
                email: &email,
                display_name: "Writer",
                role: Role::Analyst,
            },
        )
        .await?;
        let (_, token) = tokens::create(conn, &user, "bench", None).await?;
        let case = create_case(http, &server.base, &token, &format!("Throughput {t}")).await?;
        targets.push((token, case));
    }
    let stop = Instant::now() + Duration::from_secs(WRITE_SECONDS);
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (token, case) = targets[w % targets.len()].clone();
        let http = http.clone();
        let base = server.base.clone();
        writers.push(tokio::spawn(async move {
            let mut done = 0_u64;
            while Instant::now() < stop {
                if graphql(
                    &http,
                    &base,
                    &token,
                    POST,
                    json!({ "i": { "caseId": case, "body": "x" } }),
                )
                .await
                .is_ok()
                {
                    done += 1;
                }
            }
            done
        }));
    }
    let mut total = 0;
    for writer in writers {
        total += writer.await?;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
