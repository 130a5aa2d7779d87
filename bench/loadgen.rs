//! The suite's load generator (`bench/run` runs it): N clients, each on its own kept-alive
//! HTTP/1.1 connection, POST JSON bodies in a closed loop for a fixed time, then one JSON
//! line with throughput, latency percentiles, errors and the generator's own CPU time.
//!
//! target/release/casefile-loadgen --url URL [--token T] --bodies FILE --clients N
//!     --seconds S [--warmup S] [--content-type TYPE] [--threads N]
//!
//! A binary of the release build (`cargo build --release` builds it with `casefile`, from
//! the same compiled dependencies).
//!
//! FILE holds one request body per line; client i starts at line i and walks the lines in
//! turn (a mutation mix). A response counts as an error unless its status is 200 and its
//! body has no `"errors"` member (NDJSON answers: no `"rejected":[{`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

struct Args {
    url: String,
    token: Option<String>,
    bodies: Vec<String>,
    clients: usize,
    seconds: f64,
    warmup: f64,
    content_type: String,
    threads: usize,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut url, mut token, mut file, mut clients, mut seconds, mut warmup) =
        (None, None, None, 16, 10.0, 2.0);
    let mut content_type = "application/json".to_owned();
    let mut threads = 1;
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--token" => token = Some(value()?).filter(|t| !t.is_empty()),
            "--bodies" => file = Some(value()?),
            "--clients" => clients = value()?.parse().map_err(|e| format!("--clients: {e}"))?,
            "--seconds" => seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--warmup" => warmup = value()?.parse().map_err(|e| format!("--warmup: {e}"))?,
            "--threads" => threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--content-type" => content_type = value()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let file = file.ok_or("--bodies is required")?;
    let text = std::fs::read_to_string(&file).map_err(|e| format!("{file}: {e}"))?;
    let bodies: Vec<String> = if content_type.contains("ndjson") {
        // One body: the whole file.
        vec![text]
    } else {
        text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
    };
    if bodies.is_empty() {
        return Err(format!("{file} holds no body"));
    }
    Ok(Args {
        url: url.ok_or("--url is required")?,
        token,
        bodies,
        clients,
        seconds,
        warmup,
        content_type,
        threads,
    })
}

/// User and system CPU seconds of this process so far.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args = match parse() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("loadgen: {message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .expect("a runtime");
    let out = runtime.block_on(run(args));
    println!("{out}");
}

async fn run(args: Args) -> serde_json::Value {
    let args = Arc::new(args);
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for client in 0..args.clients {
        let (args, measuring, stop) = (args.clone(), measuring.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(60))
                .build()
                .expect("a client");
            let mut latencies: Vec<u32> = Vec::new();
            let mut errors = 0_u64;
            let mut first_error: Option<String> = None;
            let mut at = client % args.bodies.len();
            while !stop.load(Ordering::Relaxed) {
                let body = args.bodies[at].clone();
                at = (at + 1) % args.bodies.len();
                let mut request = http
                    .post(&args.url)
                    .header("content-type", &args.content_type)
                    .header("accept", "application/json")
                    .body(body);
                if let Some(token) = &args.token {
                    request = request.bearer_auth(token);
                }
                let started = Instant::now();
                let outcome = match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        match response.bytes().await {
                            Ok(bytes) => {
                                let text = String::from_utf8_lossy(&bytes);
                                if status.is_success()
                                    && !text.contains("\"errors\"")
                                    && !text.contains("\"rejected\":[{")
                                {
                                    Ok(())
                                } else {
                                    Err(format!(
                                        "{status}: {}",
                                        text.chars().take(300).collect::<String>()
                                    ))
                                }
                            }
                            Err(e) => Err(e.to_string()),
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                let micros = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                if measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    latencies.push(micros);
                    if let Err(e) = outcome {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (latencies, errors, first_error)
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        if let Ok((latencies, e, first)) = task.await {
            all.extend(latencies);
            errors += e;
            if first_error.is_none() {
                first_error = first;
            }
        }
    }
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        f64::from(all[i]) / 1000.0
    };
    let round = |v: f64| (v * 100.0).round() / 100.0;
    serde_json::json!({
        "clients": args.clients,
        "seconds": round(elapsed),
        "requests": all.len(),
        "errors": errors,
        "firstError": first_error,
        "rps": round(all.len() as f64 / elapsed),
        "p50ms": round(pct(0.50)),
        "p99ms": round(pct(0.99)),
        "loadgenCpuPct": round(100.0 * cpu / elapsed),
    })
}
