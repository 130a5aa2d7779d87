//! The delivery foundation (`casefile::delivery`): a durable cursor per channel over the
//! change record, worked by a recording handler written here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use casefile::delivery::{self, Attempt, Config, Handler, Outcome};
use casefile::models::delivery as cursors;
use casefile::models::events::Event;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde_json::json;
use tokio::sync::watch;

use crate::common::TestApp;

/// Records every call; fails the events listed in `failures` that many times first.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(String, i64, u32)>>,
    failures: Mutex<HashMap<i64, u32>>,
    pause_at: Mutex<Option<i64>>,
}

impl Recorder {
    fn seen(&self, channel: &str) -> Vec<(i64, u32)> {
        let seen = self.seen.lock().expect("lock");
        seen.iter().filter(|(c, _, _)| c == channel).map(|(_, s, a)| (*s, *a)).collect()
    }
}

struct Test(Arc<Recorder>);

impl Handler for Test {
    fn kind(&self) -> &'static str {
        "test"
    }

    fn handle<'a>(&'a self, attempt: Attempt<'a>, event: &'a Event) -> BoxFuture<'a, Outcome> {
        async move {
            let recorder = &self.0;
            recorder.seen.lock().expect("lock").push((
                attempt.channel.to_owned(),
                event.sequence,
                attempt.number,
            ));
            if *recorder.pause_at.lock().expect("lock") == Some(event.sequence) {
                return Outcome::Pause { reason: "told to".to_owned() };
            }
            let mut failures = recorder.failures.lock().expect("lock");
            if let Some(left) = failures.get_mut(&event.sequence).filter(|left| **left > 0) {
                *left -= 1;
                return Outcome::Retry { error: "receiver down".to_owned(), after: None };
            }
            Outcome::Done
        }
        .boxed()
    }

    fn backoff(&self, failures: u32) -> Duration {
        delivery::backoff(Duration::from_millis(20), Duration::from_millis(200), failures)
    }
}

struct Running {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(true);
        self.task.await.expect("the worker ends cleanly");
    }
}

fn start(app: &TestApp, recorder: &Arc<Recorder>) -> Running {
    let (stop, stop_rx) = watch::channel(false);
    let config = Config { poll: Duration::from_millis(500), ..Config::default() };
    let handlers: Vec<Arc<dyn Handler>> = vec![Arc::new(Test(recorder.clone()))];
    let task = delivery::spawn(app.db.clone(), app.events.wakeups(), handlers, config, stop_rx)
        .expect("a worker");
    Running { stop, task }
}

async fn open(app: &TestApp, channel: &str) {
    let mut conn = app.conn().await;
    cursors::open(&mut conn, app.tenant_id, channel).await.expect("open");
}

async fn head(app: &TestApp) -> i64 {
    let mut conn = app.conn().await;
    casefile::models::events::head(&mut conn, app.tenant_id).await.expect("head").last_sequence
}

async fn cases(app: &TestApp, prefix: &str, count: usize) {
    for n in 0..count {
        app.create_case(&app.admin_token, json!({ "name": format!("{prefix} {n}") })).await;
    }
}

/// Polls (every 20 ms, up to 30 s) until `done` holds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn cursor(app: &TestApp, channel: &str) -> cursors::Cursor {
    let mut conn = app.conn().await;
    cursors::find(&mut conn, app.tenant_id, channel).await.expect("query").expect("a cursor")
}

#[tokio::test]
async fn a_new_channel_starts_at_the_head_and_gets_every_later_event_once_in_order() {
    let app = TestApp::new().await;
    cases(&app, "before", 2).await;
    let start_head = head(&app).await;
    open(&app, "test").await;
    assert_eq!(cursor(&app, "test").await.sequence, start_head, "no history is replayed");
    let recorder = Arc::new(Recorder::default());
    let worker = start(&app, &recorder);
    cases(&app, "after", 5).await;
    let end = head(&app).await;
    until("every event", || recorder.seen("test").last().is_some_and(|s| s.0 == end)).await;
    let expected: Vec<(i64, u32)> = (start_head + 1..=end).map(|s| (s, 1)).collect();
    assert_eq!(recorder.seen("test"), expected);
    worker.stop().await;
    assert_eq!(cursor(&app, "test").await.sequence, end);
}

#[tokio::test]
async fn a_failing_event_is_retried_with_backoff_before_any_later_one() {
    let app = TestApp::new().await;
    open(&app, "test").await;
    let first = head(&app).await + 1;
    let recorder = Arc::new(Recorder::default());
    recorder.failures.lock().expect("lock").insert(first + 1, 3);
    let worker = start(&app, &recorder);
    cases(&app, "retried", 4).await;
    let end = head(&app).await;
    until("every event", || recorder.seen("test").last().is_some_and(|s| s.0 == end)).await;
    let mut expected = vec![(first, 1)];
    expected.extend((1..=4).map(|attempt| (first + 1, attempt)));
    expected.extend((first + 2..=end).map(|s| (s, 1)));
    assert_eq!(recorder.seen("test"), expected);
    worker.stop().await;
    let stored = cursor(&app, "test").await;
    assert_eq!((stored.sequence, stored.attempts, stored.last_error), (end, 0, None));
}

#[tokio::test]
async fn a_restart_skips_nothing_and_repeats_nothing_that_was_done() {
    let app = TestApp::new().await;
    open(&app, "test").await;
    let first = head(&app).await + 1;
    let recorder = Arc::new(Recorder::default());
    let worker = start(&app, &recorder);
    cases(&app, "one", 3).await;
    let middle = head(&app).await;
    until("the first events", || recorder.seen("test").last().is_some_and(|s| s.0 == middle)).await;
    worker.stop().await;
    // Changes while no worker runs wait in the log.
    cases(&app, "two", 3).await;
    let end = head(&app).await;
    assert_eq!(recorder.seen("test").len() as i64, middle - first + 1);
    let worker = start(&app, &recorder);
    until("every event", || recorder.seen("test").last().is_some_and(|s| s.0 == end)).await;
    let expected: Vec<(i64, u32)> = (first..=end).map(|s| (s, 1)).collect();
    assert_eq!(recorder.seen("test"), expected);
    worker.stop().await;
}

#[tokio::test]
async fn two_servers_on_one_database_work_each_channel_once_in_order() {
    let app = TestApp::new().await;
    let channels = ["test:a", "test:b", "test:c"];
    for channel in channels {
        open(&app, channel).await;
    }
    let first = head(&app).await + 1;
    let recorder = Arc::new(Recorder::default());
    let one = start(&app, &recorder);
    let two = start(&app, &recorder);
    cases(&app, "shared", 10).await;
    let end = head(&app).await;
    for channel in channels {
        until("every channel", || recorder.seen(channel).last().is_some_and(|s| s.0 == end)).await;
        let expected: Vec<(i64, u32)> = (first..=end).map(|s| (s, 1)).collect();
        assert_eq!(recorder.seen(channel), expected, "{channel}: once each, in order");
    }
    one.stop().await;
    two.stop().await;
}

#[tokio::test]
async fn a_paused_channel_waits_and_resumes_where_it_stopped() {
    let app = TestApp::new().await;
    open(&app, "test").await;
    let first = head(&app).await + 1;
    let recorder = Arc::new(Recorder::default());
    *recorder.pause_at.lock().expect("lock") = Some(first + 1);
    let worker = start(&app, &recorder);
    cases(&app, "paused", 3).await;
    let end = head(&app).await;
    until("the pause", || recorder.seen("test").len() == 2).await;
    let mut stored = cursor(&app, "test").await;
    for _ in 0..100 {
        if stored.paused_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        stored = cursor(&app, "test").await;
    }
    assert!(stored.paused_at.is_some(), "paused");
    assert_eq!(stored.sequence, first, "the cursor stays on the event it paused on");
    *recorder.pause_at.lock().expect("lock") = None;
    {
        let mut conn = app.conn().await;
        cursors::resume(&mut conn, app.tenant_id, "test").await.expect("resume");
    }
    // A change wakes the worker (the poll would too).
    cases(&app, "resumed", 1).await;
    let end = end + (head(&app).await - end);
    until("every event", || recorder.seen("test").last().is_some_and(|s| s.0 == end)).await;
    let mut expected = vec![(first, 1), (first + 1, 1)];
    expected.extend((first + 1..=end).map(|s| (s, 1)));
    assert_eq!(recorder.seen("test"), expected);
    worker.stop().await;
}
