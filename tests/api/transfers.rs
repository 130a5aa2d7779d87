//! Downloads and exports against clients that misbehave: one that reads the headers and
//! then stops reading is cut within the idle timeout and the server's work ends; one that
//! disconnects mid-export stops the export; a slow reader that keeps reading is never cut;
//! a stored content that no longer matches its address fails the export. The server's side
//! is observed through `casefile_file_transfers_*` on `/metrics`, polled.

use std::time::{Duration, Instant};

use casefile::config::FileLimits;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use crate::common::TestApp;
use crate::evidence::file_event;

/// The idle timeout of these tests' server.
const IDLE_SECS: u64 = 2;
/// Larger than everything between the server and a client that does not read (the
/// client's small receive buffer, the server's send buffer, hyper's and casefile's).
const BIG: usize = 16 * 1024 * 1024;

async fn app() -> TestApp {
    TestApp::with_file_limits(FileLimits {
        file_idle_timeout_secs: IDLE_SECS,
        ..FileLimits::default()
    })
    .await
}

fn content(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut bytes = vec![0_u8; len];
    for word in bytes.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        word.copy_from_slice(&state.to_le_bytes()[..word.len()]);
    }
    bytes
}

/// A case holding one detection with `bytes` stored: (detection id, case number).
async fn stored_case(app: &TestApp, bytes: &[u8]) -> (String, i64) {
    let ids = app.ingest(&app.admin_token, vec![file_event("big", "big file.bin", None)]).await;
    app.store_content(&ids[0], bytes).await;
    let case = app
        .create_case(&app.admin_token, json!({ "name": "Transfers", "detectionIds": ids }))
        .await;
    (ids[0].clone(), case["number"].as_i64().expect("number"))
}

/// A raw HTTP/1.1 client with a small receive buffer: sends `GET path` and reads the head.
/// The head is read a byte at a time, so no body byte is read with it.
async fn open(app: &TestApp, path: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
    let mut stream = socket.connect(app.addr).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        app.addr, app.admin_token
    );
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut head = Vec::new();
    let mut byte = [0_u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("head");
        assert!(n == 1, "the connection ended in the head");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).expect("an ASCII head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

/// A series of `/metrics` (0 when absent).
async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Polls until `kind`'s transfers have ended with `outcome` `count` times and none is
/// active; panics after a minute.
async fn wait_for_outcome(app: &TestApp, kind: &str, outcome: &str, count: f64) {
    let ended = format!("casefile_file_transfers_total{{kind=\"{kind}\",outcome=\"{outcome}\"}}");
    let active = format!("casefile_file_transfers_active{{kind=\"{kind}\"}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if metric(app, &ended).await == count && metric(app, &active).await == 0.0 {
            return;
        }
        assert!(Instant::now() < deadline, "no {kind} ended {outcome} within a minute");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads what is left until the server ends the connection; the bytes read. Panics when
/// the connection is still open after 30 s (the server did not close it).
async fn read_until_closed(stream: &mut TcpStream) -> usize {
    let mut buffer = vec![0_u8; 256 * 1024];
    let mut total = 0;
    let read_all = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => total += n,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read_all)
        .await
        .expect("the server keeps the connection open");
    total
}

async fn exported_events(app: &TestApp) -> usize {
    app.events(app.tenant_id).await.iter().filter(|e| e.action == "case.exported").count()
}

/// Checks a connection the client stopped reading: the server cuts it and its transfer.
async fn assert_stalled_reader_is_cut(app: &TestApp, kind: &str, path: &str, len: usize) {
    let mut stream = open(app, path).await;
    let stopped = Instant::now();
    wait_for_outcome(app, kind, "cut", 1.0).await;
    println!(
        "{kind}: cut {:.2} s after the client stopped reading",
        stopped.elapsed().as_secs_f64()
    );
    let rest = read_until_closed(&mut stream).await;
    assert!(rest < len, "the server closed the connection before the end ({rest} of {len} bytes)");
    assert_eq!(
        metric(
            app,
            &format!("casefile_file_transfers_total{{kind=\"{kind}\",outcome=\"complete\"}}")
        )
        .await,
        0.0
    );
}

#[tokio::test]
async fn a_download_whose_client_stops_reading_is_cut_within_the_idle_timeout() {
    let app = app().await;
    let (id, _) = stored_case(&app, &content(BIG)).await;
    assert_stalled_reader_is_cut(&app, "download", &format!("/detections/{id}/file"), BIG).await;
}

#[tokio::test]
async fn an_export_whose_client_stops_reading_is_cut_and_not_recorded() {
    let app = app().await;
    let (_, number) = stored_case(&app, &content(BIG)).await;
    let path = format!("/cases/{number}/export?parts=files");
    assert_stalled_reader_is_cut(&app, "export", &path, BIG).await;
    assert_eq!(exported_events(&app).await, 0, "no case.exported for a package not sent whole");
}

#[tokio::test]
async fn a_client_that_disconnects_mid_export_stops_the_work() {
    let app = app().await;
    let (_, number) = stored_case(&app, &content(BIG)).await;
    let mut stream = open(&app, &format!("/cases/{number}/export?parts=files")).await;
    let mut some = vec![0_u8; 64 * 1024];
    stream.read_exact(&mut some).await.expect("the package's first bytes");
    drop(stream);
    // Cut long before the idle timeout could have: the export saw the client leave.
    wait_for_outcome(&app, "export", "cut", 1.0).await;
    assert_eq!(exported_events(&app).await, 0, "no case.exported for a package not sent whole");
}

/// Reads the whole body of `response` slowly (40 ms of nothing after every 256 KiB); returns
/// the bytes and the time it took.
async fn read_slowly(response: reqwest::Response) -> (Vec<u8>, Duration) {
    use futures_util::StreamExt as _;
    let started = Instant::now();
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    let mut since_pause = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a slow reader is never cut");
        since_pause += chunk.len();
        body.extend_from_slice(&chunk);
        while since_pause >= 256 * 1024 {
            since_pause -= 256 * 1024;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
    (body, started.elapsed())
}

#[tokio::test]
async fn a_slow_reader_that_keeps_reading_gets_every_byte_of_a_download_and_an_export() {
    let app = app().await;
    let bytes = content(BIG);
    let (id, number) = stored_case(&app, &bytes).await;
    let response = app.download(&app.admin_token, &id).await;
    let (got, took) = read_slowly(response).await;
    println!("slow download: {} bytes in {:.2} s", got.len(), took.as_secs_f64());
    assert!(got == bytes, "every byte, in order");
    // 64 pauses of 40 ms: longer than the idle timeout, so the timeout is not a total one.
    assert!(took > Duration::from_secs(IDLE_SECS));
    wait_for_outcome(&app, "download", "complete", 1.0).await;

    let response = app
        .http
        .get(app.url(&format!("/cases/{number}/export?parts=files")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("export");
    let (zip, took) = read_slowly(response).await;
    println!("slow export: {} bytes in {:.2} s", zip.len(), took.as_secs_f64());
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a whole ZIP");
    let mut entry = archive.by_index(0).expect("the file");
    let mut inside = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut inside).expect("the entry");
    assert!(inside == bytes, "the file whole in the package");
    wait_for_outcome(&app, "export", "complete", 1.0).await;
    assert_eq!(
        metric(&app, "casefile_file_transfers_total{kind=\"download\",outcome=\"cut\"}").await,
        0.0
    );
}

#[tokio::test]
async fn a_stored_content_that_no_longer_matches_its_address_fails_the_export() {
    let app = app().await;
    let bytes = content(1024 * 1024);
    let (_, number) = stored_case(&app, &bytes).await;
    let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    let object =
        app.data_dir.path().join(format!("evidence/tenants/{}/sha256/{sha256}", app.tenant_id.0));
    let mut altered = bytes.clone();
    altered[1000] ^= 1;
    std::fs::write(&object, &altered).expect("alter the stored content");

    let response = app
        .http
        .get(app.url(&format!("/cases/{number}/export?parts=files")))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .expect("export");
    assert_eq!(response.status(), 200, "the package had started");
    assert!(response.bytes().await.is_err(), "the package is cut, never ended as if whole");
    wait_for_outcome(&app, "export", "failed", 1.0).await;
    assert_eq!(exported_events(&app).await, 0);
}
