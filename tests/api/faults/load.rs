//! The real `casefile serve` under a write load while the database fails: writers that
//! count every acknowledged `postMessage`, a `/readyz` watcher, a live subscription that
//! collects what it is sent, and the timings of the outage.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::common::ws;

/// `CASEFILE_POOL_WAIT_MS` of the servers these tests start: a failure must come well
/// before it.
pub const POOL_WAIT: Duration = Duration::from_secs(5);

/// A running `casefile serve` (killed when dropped).
pub struct Casefile {
    child: tokio::process::Child,
    pub address: String,
    pub token: String,
    /// What the server has logged so far (stderr).
    pub log: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::Client,
}

impl Casefile {
    /// Starts the binary with these variables on `data_dir` and waits until it answers.
    pub async fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_casefile"));
        command
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env("CASEFILE_DATA_DIR", data_dir)
            .env("CASEFILE_LISTEN", "127.0.0.1:0")
            .env("CASEFILE_POOL_WAIT_MS", POOL_WAIT.as_millis().to_string())
            .env("CASEFILE_JOBS_INTERVAL_SECS", "0")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn casefile serve");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let lines = log.clone();
        tokio::spawn(async move {
            let mut stderr = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = stderr.next_line().await {
                lines.lock().expect("log").push(line);
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut address, mut token) = (None, None);
        let started = tokio::time::timeout(Duration::from_secs(90), async {
            while let Ok(Some(line)) = stdout.next_line().await {
                if let Some(rest) = line.split("GraphiQL at http://").nth(1) {
                    address = Some(rest.trim_end_matches('/').to_owned());
                }
                if let Some(rest) = line.split("admin API token (shown once): ").nth(1) {
                    token = Some(rest.trim().to_owned());
                }
                if line.contains("token is also in") {
                    return;
                }
            }
        })
        .await;
        let log_text = || log.lock().expect("log").join("\n");
        assert!(started.is_ok(), "casefile serve did not start in 90 s:\n{}", log_text());
        tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
        let server = Casefile {
            child,
            address: address.unwrap_or_else(|| panic!("no address printed:\n{}", log_text())),
            token: token.unwrap_or_else(|| panic!("no token printed:\n{}", log_text())),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("client"),
        };
        server.wait_ready(Duration::from_secs(60)).await;
        server
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The status of `GET /readyz` (0 when it does not answer).
    pub async fn readyz(&self) -> u16 {
        match self.http.get(self.url("/readyz")).send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Polls `/readyz` until it answers 200; returns how long that took.
    pub async fn wait_ready(&self, limit: Duration) -> Duration {
        let began = Instant::now();
        while self.readyz().await != 200 {
            assert!(
                began.elapsed() < limit,
                "/readyz not 200 within {limit:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        began.elapsed()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().expect("log").join("\n")
    }

    /// Runs one GraphQL operation as the admin: the status and the body.
    pub async fn graphql(&self, query: &str, variables: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/graphql"))
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("a GraphQL answer");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A new case's global id.
    pub async fn create_case(&self, name: &str) -> String {
        let query = "mutation($i: CreateCaseInput!) { createCase(input: $i) { case { id } } }";
        let (status, body) = self.graphql(query, json!({ "i": { "name": name } })).await;
        assert_eq!(status, 200, "{body}");
        body["data"]["createCase"]["case"]["id"].as_str().expect("case id").to_owned()
    }

    /// SIGTERM, and the exit status within 60 s.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("running") as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM)
            .expect("SIGTERM");
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("casefile exits within 60 s of SIGTERM")
            .expect("exit status")
    }
}

const POST: &str = "mutation($i: PostMessageInput!) { postMessage(input: $i) { message { id } } }";
const CASE_EVENTS: &str =
    "subscription($caseId: ID!) { caseEvents(caseId: $caseId) { kind message { body } } }";

/// One failed write: when it ended, how long it took, its status and code.
#[derive(Debug, Clone)]
pub struct Failure {
    pub at: Instant,
    pub took: Duration,
    pub status: u16,
    pub code: String,
}

/// Writers posting numbered messages to one case, a `/readyz` watcher and a subscriber.
pub struct Load {
    pub acknowledged: Arc<Mutex<Vec<(String, Instant)>>>,
    pub failures: Arc<Mutex<Vec<Failure>>>,
    pub readyz: Arc<Mutex<Vec<(Instant, u16)>>>,
    pub received: Arc<Mutex<BTreeSet<String>>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Subscribes to the case's events (and waits until a first message arrives through
    /// the subscription), then starts `writers` writers and the watcher.
    pub async fn start(server: &Casefile, case: &str, writers: usize) -> Self {
        let (stop, stopped) = watch::channel(false);
        let received = Arc::new(Mutex::new(BTreeSet::new()));
        let mut socket =
            ws::open_url(&format!("ws://{}/graphql/ws", server.address), &server.token).await;
        ws::subscribe(&mut socket, "live", CASE_EVENTS, json!({ "caseId": case })).await;
        // The subscription follows once a message written after it arrives.
        let first = "subscribed";
        let mut tasks = vec![tokio::spawn(collect(socket, received.clone()))];
        let began = Instant::now();
        while !received.lock().expect("received").contains(first) {
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "the subscription sent nothing in 30 s"
            );
            let (status, body) =
                server.graphql(POST, json!({ "i": { "caseId": case, "body": first } })).await;
            assert_eq!(status, 200, "{body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut load = Load {
            acknowledged: Arc::default(),
            failures: Arc::default(),
            readyz: Arc::default(),
            received,
            stop,
            tasks: Vec::new(),
        };
        for writer in 0..writers {
            let acknowledged = load.acknowledged.clone();
            tasks.push(tokio::spawn(write(
                server.url("/graphql"),
                server.token.clone(),
                case.to_owned(),
                writer,
                acknowledged,
                load.failures.clone(),
                stopped.clone(),
            )));
        }
        tasks.push(tokio::spawn(watch_readyz(server.url("/readyz"), load.readyz.clone(), stopped)));
        load.tasks = tasks;
        load
    }

    /// Writes acknowledged so far.
    pub fn acknowledged_count(&self) -> usize {
        self.acknowledged.lock().expect("acknowledged").len()
    }

    /// Waits until `n` more writes are acknowledged than now (at most `limit`).
    pub async fn until_more_acknowledged(&self, n: usize, limit: Duration) {
        let target = self.acknowledged_count() + n;
        let began = Instant::now();
        while self.acknowledged_count() < target {
            assert!(began.elapsed() < limit, "fewer than {n} writes acknowledged in {limit:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a write has failed after `since` (at most `limit`).
    pub async fn until_failure_after(&self, since: Instant, limit: Duration) {
        let began = Instant::now();
        while !self.failures.lock().expect("failures").iter().any(|f| f.at >= since) {
            assert!(began.elapsed() < limit, "no write failed within {limit:?} of the fault");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `/readyz` has answered `status` after `since` (at most `limit`).
    pub async fn until_readyz_after(&self, status: u16, since: Instant, limit: Duration) {
        let began = Instant::now();
        while !self
            .readyz
            .lock()
            .expect("readyz")
            .iter()
            .any(|(at, s)| *at >= since && *s == status)
        {
            assert!(began.elapsed() < limit, "/readyz did not answer {status} within {limit:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the writers and the watcher; the subscriber keeps collecting until
    /// [`Load::check_received`] is done.
    pub async fn stop_writers(&mut self) {
        self.stop.send_replace(true);
        for task in self.tasks.drain(1..) {
            task.await.expect("a writer ends cleanly");
        }
    }

    /// The first write acknowledged at or after `since`, and the first failure at or after it.
    pub fn first_after(&self, since: Instant) -> (Option<Instant>, Option<Instant>) {
        let ack = self
            .acknowledged
            .lock()
            .expect("ack")
            .iter()
            .map(|(_, at)| *at)
            .filter(|at| *at >= since)
            .min();
        let failure = self
            .failures
            .lock()
            .expect("failures")
            .iter()
            .map(|f| f.at)
            .filter(|at| *at >= since)
            .min();
        (ack, failure)
    }

    /// Every failure so far was `UNAVAILABLE` with HTTP 503 and came well before the
    /// pool's wait, writes already in flight at `fault` (sent before it) included: their
    /// session ended under the statement (PostgreSQL stopping ends each with FATAL 57P01,
    /// which diesel reports without a kind), and the operation, its connection back
    /// broken, says `UNAVAILABLE` rather than `INTERNAL`. Returns how many failed, the
    /// slowest, and how many of the failures were writes in flight.
    pub fn check_failures(&self, fault: Instant) -> (usize, Duration, usize) {
        let failures = self.failures.lock().expect("failures").clone();
        let mut in_flight = 0;
        for failure in &failures {
            let sent = failure.at.checked_sub(failure.took).unwrap_or(failure.at);
            if sent < fault {
                in_flight += 1;
            }
            assert_eq!(
                (failure.status, failure.code.as_str()),
                (503, "UNAVAILABLE"),
                "{failure:?} (sent {} before the fault)",
                if sent < fault { "" } else { "not" }
            );
            assert!(
                failure.took < POOL_WAIT / 2,
                "a failure took {:?}, not well under the pool wait",
                failure.took
            );
        }
        if in_flight > 0 {
            println!("{in_flight} writes in flight at the fault failed UNAVAILABLE");
        }
        let slowest = failures.iter().map(|f| f.took).max().unwrap_or_default();
        (failures.len(), slowest, in_flight)
    }

    /// Every acknowledged body is in `stored` and, within `limit`, among what the
    /// subscription received. Returns how many were acknowledged.
    pub async fn check_nothing_lost(&self, stored: &BTreeSet<String>, limit: Duration) -> usize {
        let acknowledged: Vec<String> =
            self.acknowledged.lock().expect("ack").iter().map(|(body, _)| body.clone()).collect();
        let missing: Vec<&String> = acknowledged.iter().filter(|b| !stored.contains(*b)).collect();
        assert!(missing.is_empty(), "acknowledged writes not in the database: {missing:?}");
        let began = Instant::now();
        loop {
            let unsent: Vec<String> = {
                let received = self.received.lock().expect("received");
                acknowledged.iter().filter(|b| !received.contains(*b)).cloned().collect()
            };
            if unsent.is_empty() {
                break;
            }
            assert!(
                began.elapsed() < limit,
                "{} acknowledged writes never reached the subscription: {:?}",
                unsent.len(),
                &unsent[..unsent.len().min(10)]
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        acknowledged.len()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn write(
    url: String,
    token: String,
    case: String,
    writer: usize,
    acknowledged: Arc<Mutex<Vec<(String, Instant)>>>,
    failures: Arc<Mutex<Vec<Failure>>>,
    stop: watch::Receiver<bool>,
) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
    for n in 0.. {
        if *stop.borrow() {
            return;
        }
        let body = format!("w{writer}-{n}");
        let began = Instant::now();
        let variables = json!({ "i": { "caseId": case, "body": body } });
        let response = http
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "query": POST, "variables": variables }))
            .send()
            .await;
        let (status, answer) = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(error) => (0, json!({ "transport": error.to_string() })),
        };
        if status == 200 && answer["data"]["postMessage"]["message"]["id"].is_string() {
            acknowledged.lock().expect("ack").push((body, Instant::now()));
            tokio::time::sleep(Duration::from_millis(10)).await;
        } else {
            let code =
                answer["errors"][0]["extensions"]["code"].as_str().unwrap_or("none").to_owned();
            let code = if code == "none" { answer.to_string() } else { code };
            failures.lock().expect("failures").push(Failure {
                at: Instant::now(),
                took: began.elapsed(),
                status,
                code,
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn watch_readyz(
    url: String,
    seen: Arc<Mutex<Vec<(Instant, u16)>>>,
    stop: watch::Receiver<bool>,
) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    while !*stop.borrow() {
        let status = match http.get(&url).send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        seen.lock().expect("readyz").push((Instant::now(), status));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Collects the bodies of the messages a subscription is sent (until the load is dropped).
async fn collect(mut socket: ws::Socket, received: Arc<Mutex<BTreeSet<String>>>) {
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else { continue };
        let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
        if value["type"] != "next" {
            // A subscription that errored or completed would deliver nothing more.
            eprintln!("subscription message: {text}");
            continue;
        }
        if let Some(body) = value["payload"]["data"]["caseEvents"]["message"]["body"].as_str() {
            received.lock().expect("received").insert(body.to_owned());
        } else {
            // An event without its message is not a delivery: shown, so a failure says why.
            eprintln!("an event arrived without its message: {text}");
        }
    }
}
