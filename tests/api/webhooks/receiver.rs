//! The test's webhook receiver: a loopback axum listener that records every POST and
//! answers the status it is told to, and the signature check written with `ring`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::Value;

/// One POST as the receiver saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: String,
    pub json: Value,
    pub answered: u16,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
pub struct Receiver {
    got: Mutex<Vec<Received>>,
    status: AtomicU16,
}

impl Receiver {
    pub fn got(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    /// What was accepted (answered 2xx), in arrival order.
    pub fn accepted(&self) -> Vec<Received> {
        self.got().into_iter().filter(|r| r.answered < 300).collect()
    }

    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let answered = receiver.status.load(Ordering::SeqCst);
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let json = serde_json::from_str(&body).unwrap_or(Value::Null);
    receiver.got.lock().expect("lock").push(Received {
        headers,
        body,
        json,
        answered,
        at: Utc::now(),
    });
    StatusCode::from_u16(answered).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A receiver on a loopback port answering `status`; its URL.
pub async fn receiver(status: u16) -> (Arc<Receiver>, String) {
    let state = Arc::new(Receiver::default());
    state.answer(status);
    let router =
        axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (state, url)
}

pub fn hex(bytes: &str) -> Vec<u8> {
    (0..bytes.len() / 2)
        .map(|i| u8::from_str_radix(&bytes[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Verifies `X-Casefile-Signature` with ring's HMAC; the signed timestamp.
pub fn verify(received: &Received, secret: &str) -> i64 {
    let header = &received.headers["x-casefile-signature"];
    let (t, v1) = header.split_once(",v1=").expect("t=…,v1=…");
    let t = t.strip_prefix("t=").expect("t=");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, format!("{t}.{}", received.body).as_bytes(), &hex(v1))
        .expect("the signature verifies");
    t.parse().expect("unix seconds")
}
