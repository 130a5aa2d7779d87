//! The real binary on the embedded default: first start prints a working token, a restart
//! keeps the data, the CLI attaches to the running cluster, and SIGTERM/SIGINT stop the
//! server and its cluster with no postgres process left behind.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    address: String,
    printed_token: Option<String>,
}

fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("casefile-proc-").tempdir().expect("tempdir");
    // The cluster's OS user must reach the folder when tests run as root.
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    dir
}

fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_casefile"));
    command
        .env_remove("DATABASE_URL")
        .env("CASEFILE_DATA_DIR", data_dir)
        .env("CASEFILE_LISTEN", "127.0.0.1:0")
        .env("RUST_LOG", "warn");
    command
}

fn start(data_dir: &Path) -> Server {
    let mut child = command(data_dir)
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn casefile");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut address = None;
    let mut printed_token = None;
    while Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) else {
            if address.is_some() {
                break;
            }
            continue;
        };
        if let Some(rest) = line.split("GraphiQL at http://").nth(1) {
            address = Some(rest.trim_end_matches('/').to_owned());
        }
        if let Some(token) = line.split("admin API token (shown once): ").nth(1) {
            printed_token = Some(token.trim().to_owned());
        }
        if line.contains("token is also in") || line.contains("first admin token is in") {
            break;
        }
    }
    let address = address.expect("casefile printed its GraphiQL address");
    Server { child, lines, address, printed_token }
}

fn viewer(address: &str, token: &str) -> Value {
    http1::post(address, token, "{ viewer { email role } }")
}

/// A minimal blocking HTTP client so these tests need no runtime of their own.
mod http1 {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use serde_json::{Value, json};

    pub fn post(address: &str, token: &str, query: &str) -> Value {
        let body = json!({ "query": query }).to_string();
        let mut stream = TcpStream::connect(address).expect("connect");
        write!(
            stream,
            "POST /graphql HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
        serde_json::from_str(body).unwrap_or(Value::Null)
    }
}

/// The pid in the cluster's `postmaster.pid`, wherever under the data dir the cluster lives.
fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    fn find(dir: &Path) -> Option<PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "postmaster.pid") {
                return Some(path);
            }
            if path.is_dir()
                && let Some(found) = find(&path)
            {
                return Some(found);
            }
        }
        None
    }
    let text = std::fs::read_to_string(find(data_dir)?).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Processes that are `pid` or its children.
fn alive_family(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if Path::new(&format!("/proc/{pid}")).exists() {
        out.push(pid);
    }
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let status =
                std::fs::read_to_string(format!("/proc/{child}/status")).unwrap_or_default();
            let parent = status
                .lines()
                .find_map(|l| l.strip_prefix("PPid:"))
                .and_then(|p| p.trim().parse::<i32>().ok());
            if parent == Some(pid) {
                out.push(child);
            }
        }
    }
    out
}

fn stop(mut server: Server, signal: Signal) {
    kill(Pid::from_raw(server.child.id() as i32), signal).expect("signal");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = server.child.try_wait().expect("wait") {
            assert!(status.success(), "casefile exited with {status} after {signal}");
            break;
        }
        assert!(Instant::now() < deadline, "casefile did not exit within 30 s of {signal}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server.lines);
}

fn assert_no_postgres_left(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive = alive_family(pid);
        if alive.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "postgres processes left behind: {alive:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn first_start_prints_a_working_token_and_a_restart_keeps_the_data() {
    let dir = data_dir();
    let server = start(dir.path());
    let token = server.printed_token.clone().expect("the first start prints the token");
    let saved = std::fs::read_to_string(dir.path().join("admin-token")).expect("admin-token file");
    assert_eq!(saved.trim(), token);
    assert_eq!(
        viewer(&server.address, &token)["data"]["viewer"],
        json!({ "email": "admin@localhost", "role": "ADMIN" })
    );
    let pid = postmaster_pid(dir.path()).expect("the embedded cluster runs in the data dir");
    stop(server, Signal::SIGTERM);
    assert_no_postgres_left(pid);

    let server = start(dir.path());
    assert_eq!(server.printed_token, None, "a later start shows no token");
    assert_eq!(viewer(&server.address, &token)["data"]["viewer"]["email"], "admin@localhost");
    let pid = postmaster_pid(dir.path()).expect("cluster running");
    stop(server, Signal::SIGINT);
    assert_no_postgres_left(pid);
}

#[test]
fn the_cli_attaches_to_the_running_cluster_and_its_token_works() {
    let dir = data_dir();
    let server = start(dir.path());
    let pid = postmaster_pid(dir.path()).expect("cluster running");

    let run = |args: &[&str]| -> Value {
        let output = command(dir.path()).args(args).output().expect("run the CLI");
        assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice(&output.stdout).expect("one JSON object on stdout")
    };
    let tenant = run(&["tenant", "create", "--name", "Acme SOC", "--license", "MDR"]);
    let tenant_id = tenant["tenantId"].as_str().expect("tenantId").to_owned();
    let user = run(&[
        "user",
        "create",
        "--tenant",
        &tenant_id,
        "--email",
        "ana@acme.test",
        "--role",
        "ANALYST",
    ]);
    let user_id = user["userId"].as_str().expect("userId").to_owned();
    let token = run(&["token", "create", "--user", &user_id, "--name", "laptop"]);
    let token = token["token"].as_str().expect("token").to_owned();

    // The CLI left the server's cluster running, and the new token works against it.
    assert_eq!(postmaster_pid(dir.path()), Some(pid));
    let answer =
        http1::post(&server.address, &token, "{ viewer { email role } tenant { name licenses } }");
    assert_eq!(answer["data"]["viewer"], json!({ "email": "ana@acme.test", "role": "ANALYST" }));
    assert_eq!(answer["data"]["tenant"], json!({ "name": "Acme SOC", "licenses": ["XDR", "MDR"] }));

    // Bad input is refused with one clear line and a failure exit.
    let output = command(dir.path())
        .args(["user", "create", "--tenant", "nope", "--email", "x@y", "--role", "ADMIN"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a tenant id"));
    for (args, message) in [
        (
            vec!["token", "create", "--user", user_id.as_str(), "--name", "  "],
            "--name must have 1 to 100 characters",
        ),
        (
            vec!["token", "create", "--user", user_id.as_str(), "--expires-in-days", "0"],
            "--expires-in-days must be at least 1",
        ),
        (vec!["tenant", "create", "--name", ""], "--name must have 1 to 100 characters"),
    ] {
        let output = command(dir.path()).args(&args).output().expect("run");
        assert!(!output.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }

    stop(server, Signal::SIGTERM);
    assert_no_postgres_left(pid);
}

#[tokio::test]
async fn with_database_url_set_nothing_embedded_starts() {
    let app = crate::common::TestApp::new().await;
    let dir = data_dir();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"))
        .env("DATABASE_URL", &app.database_url)
        .env("CASEFILE_DATA_DIR", dir.path())
        .args(["tenant", "create", "--name", "Via URL"])
        .output()
        .await
        .expect("run the CLI");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(printed["tenantId"].is_string());
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("data dir").count(),
        0,
        "no cluster was created"
    );
    let mut conn = app.conn().await;
    assert_eq!(casefile::models::tenants::count(&mut conn).await.expect("count"), 2);
}

/// Processes whose command line names `path` (a postmaster names its cluster folder).
fn processes_mentioning(path: &Path) -> Vec<i32> {
    let needle = path.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(&needle) && pid != std::process::id() as i32 {
            out.push(pid);
        }
    }
    out
}

#[tokio::test]
async fn migrate_on_a_fresh_data_dir_migrates_the_embedded_database_and_stops_the_cluster() {
    let dir = data_dir();
    let output = command(dir.path()).arg("migrate").output().expect("run casefile migrate");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(processes_mentioning(dir.path()).is_empty(), "migrate left postgres running");

    let cluster = casefile::db::embedded::EmbeddedPostgres::start(dir.path()).await.expect("start");
    let newest = cluster
        .psql(
            casefile::db::EMBEDDED_DATABASE,
            "SELECT max(version) FROM __diesel_schema_migrations",
        )
        .await
        .expect("query");
    assert_eq!(Some(newest.trim().to_owned()), casefile::db::migrations::latest_version());
    cluster.stop().await.expect("stop");
}
