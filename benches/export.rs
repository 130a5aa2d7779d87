//! Case export throughput: a case holding 2 GiB of file contents in 1,000 files exported
//! as `?parts=files` by the release server (a process of its own), next to `sha256sum`
//! over the same stored files in the same run (the export hashes every byte too), and the
//! server's peak RSS (`VmHWM`). Targets (issue 9): at least half of `sha256sum`'s
//! throughput, RSS under 150 MB.
//!
//! Run with `cargo bench --bench export` (`EXPORT_BENCH_FILES` and `EXPORT_BENCH_MIB`
//! change the 1,000 files of 2 MiB). It starts a throwaway PostgreSQL cluster, seeds the
//! case through the API and the storage, starts `casefile serve` and prints one table.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use casefile::db::embedded::EmbeddedPostgres;
use casefile::db::{migrations, pool};
use casefile::models::evidence;
use casefile::models::ids::DetectionId;
use casefile::storage::Storage;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt as _;
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let files: usize =
        std::env::var("EXPORT_BENCH_FILES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000);
    let mib: usize =
        std::env::var("EXPORT_BENCH_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let cluster = EmbeddedPostgres::start(&dir.path().join("pg")).await?;
    let mut admin = AsyncPgConnection::establish(&cluster.database_url("postgres")).await?;
    diesel::sql_query("CREATE DATABASE casefile_export_bench").execute(&mut admin).await?;
    let url = cluster.database_url("casefile_export_bench");
    migrations::run(&url).await?;
    let db = pool::build(&url, 4, Duration::from_secs(5), Duration::from_secs(60))?;
    let (token, tenant) = {
        let mut conn = pool::get(&db).await?;
        let token = casefile::bootstrap::run(&mut conn).await?.expect("a first token");
        let (found, _) =
            casefile::models::tokens::find_by_secret(&mut conn, &token).await?.expect("the token");
        (token, found.tenant_id)
    };

    // The server: the release binary, on the bench's database and data dir.
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"))
        .arg("serve")
        .env("DATABASE_URL", &url)
        .env("CASEFILE_DATA_DIR", &data_dir)
        .env("CASEFILE_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let http = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..600 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::ensure!(ready, "the server did not become ready");
    let pid = server.id().expect("the server's pid");

    // 1,000 file events on one case, and 2 MiB of distinct contents for each.
    let graphql = |query: &'static str, variables: Value| {
        let (http, endpoint, token) = (http.clone(), format!("{base}/graphql"), token.clone());
        async move {
            let body: Value = http
                .post(endpoint)
                .bearer_auth(token)
                .json(&json!({ "query": query, "variables": variables }))
                .send()
                .await?
                .json()
                .await?;
            anyhow::ensure!(body.get("errors").is_none(), "{body}");
            Ok::<Value, anyhow::Error>(body["data"].clone())
        }
    };
    let detections: Vec<Value> = (0..files)
        .map(|i| {
            json!({
                "externalId": format!("bench-{i}"), "source": "FILE_ACTIVITY", "ruleName": "Copy to USB",
                "observedAt": format!("2026-11-20T10:{:02}:{:02}Z", (i / 60) % 60, i % 60),
                "riskScore": 1, "actor": "bench@example.test",
                "file": { "name": format!("evidence {i}.bin"), "size": (mib * 1024 * 1024) as f64 },
            })
        })
        .collect();
    let mut ids = Vec::new();
    for chunk in detections.chunks(1_000) {
        let data = graphql(
            "mutation($i: IngestDetectionsInput!) { ingestDetections(input: $i) { detections { id } } }",
            json!({ "i": { "detections": chunk } }),
        )
        .await?;
        for d in data["ingestDetections"]["detections"].as_array().into_iter().flatten() {
            ids.push(d["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    let data = graphql(
        "mutation($i: CreateCaseInput!) { createCase(input: $i) { case { number } } }",
        json!({ "i": { "name": "Export benchmark", "detectionIds": ids } }),
    )
    .await?;
    let number = data["createCase"]["case"]["number"].as_i64().unwrap_or(1);

    let storage = Storage::local(&data_dir.join("evidence"))?;
    let mut conn = pool::get(&db).await?;
    let started = Instant::now();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for id in &ids {
        let mut content = vec![0_u8; mib * 1024 * 1024];
        for word in content.chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
        }
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from(content))]);
        let staged =
            storage.stage(tenant, body, u64::MAX).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        storage.commit(tenant, &staged).await?;
        let sha256 = staged.sha256.as_str().to_owned();
        evidence::keep_content(&mut conn, tenant, &sha256, staged.size as i64).await?;
        let (_, uuid) = casefile::graphql::ids::decode(id).expect("a detection id");
        evidence::set_detection_content(&mut conn, DetectionId(uuid), &sha256).await?;
    }
    drop(conn);
    let total = (files * mib * 1024 * 1024) as f64;
    println!("seeded {files} files of {mib} MiB in {:.1} s", started.elapsed().as_secs_f64());

    // sha256sum over the same stored files.
    let objects: Vec<_> = std::fs::read_dir(
        data_dir.join("evidence/tenants").join(tenant.0.to_string()).join("sha256"),
    )?
    .filter_map(|e| e.ok().map(|e| e.path()))
    .collect();
    let started = Instant::now();
    let status = tokio::process::Command::new("sha256sum")
        .args(&objects)
        .stdout(Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "sha256sum failed");
    let sha256sum = started.elapsed().as_secs_f64();

    // The export, read to the end as a client would.
    let started = Instant::now();
    let response = http
        .get(format!("{base}/cases/{number}/export?parts=files"))
        .bearer_auth(&token)
        .send()
        .await?;
    anyhow::ensure!(response.status().is_success(), "export answered {}", response.status());
    let mut received: u64 = 0;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        received += chunk?.len() as u64;
    }
    let export = started.elapsed().as_secs_f64();
    let rss = peak_rss_kib(pid).unwrap_or(0);

    let mbs = |seconds: f64| total / 1e6 / seconds;
    println!();
    println!("| measure | value |");
    println!("| --- | --- |");
    println!("| contents | {files} files, {:.2} GiB |", total / (1u64 << 30) as f64);
    println!(
        "| export (ZIP received) | {received} bytes in {export:.2} s: {:.0} MB/s |",
        mbs(export)
    );
    println!("| sha256sum, same files | {sha256sum:.2} s: {:.0} MB/s |", mbs(sha256sum));
    println!("| export / sha256sum | {:.2} (target at least 0.5) |", sha256sum / export);
    println!(
        "| server peak RSS (VmHWM) | {:.1} MB (target under 150 MB) |",
        rss as f64 * 1024.0 / 1e6
    );

    server.kill().await?;
    let _ = server.wait().await;
    cluster.stop().await?;
    Ok(())
}

/// The peak resident set of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
