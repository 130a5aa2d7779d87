//! Makes DataLoader batches follow the shape of the query instead of the clock.
//!
//! async-graphql's DataLoader starts a fetch task at a request's first key and lets it
//! collect keys for 1 ms. On a busy machine, resolving the fields of a 100-item page can
//! take longer than that, and the keys of the later items then go into a second batch: a
//! second statement. A [`Gate`] holds those fetch tasks until the request is quiet: its
//! future returned `Pending` and nothing woke it meanwhile, so every resolver that could
//! run has asked for its keys and the request waits on the database alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::future::BoxFuture;

/// Holds the fetch tasks of one request's loaders during a resolution pass.
#[derive(Default)]
pub struct Gate {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    polling: bool,
    /// Something woke the request since its last poll began: it has more to do.
    woken: bool,
    held: Vec<BoxFuture<'static, ()>>,
}

impl Gate {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The loaders' spawner: holds the task while the request is busy, runs it at once
    /// otherwise.
    pub fn spawn(&self, task: BoxFuture<'static, ()>) {
        let mut state = self.state();
        if state.polling || state.woken {
            state.held.push(task);
        } else {
            drop(state);
            tokio::spawn(task);
        }
    }

    /// Runs `future` (a request's execution) with this gate.
    pub fn run<F: Future>(self: Arc<Self>, future: F) -> Gated<F> {
        Gated { inner: Box::pin(future), gate: self }
    }

    /// Ends a poll; starts the held tasks when the request is quiet (or done).
    fn end_poll(&self, done: bool) {
        let held = {
            let mut state = self.state();
            state.polling = false;
            if state.woken && !done {
                return;
            }
            std::mem::take(&mut state.held)
        };
        for task in held {
            tokio::spawn(task);
        }
    }
}

/// The waker the request's resolvers see: it records the wake, then wakes the request.
struct Recording {
    gate: Arc<Gate>,
    waker: Waker,
}

impl Wake for Recording {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.gate.state().woken = true;
        self.waker.wake_by_ref();
    }
}

/// A request's execution whose loader fetches start when it is quiet.
pub struct Gated<F: Future> {
    inner: Pin<Box<F>>,
    gate: Arc<Gate>,
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker =
            Waker::from(Arc::new(Recording { gate: self.gate.clone(), waker: cx.waker().clone() }));
        {
            let mut state = self.gate.state();
            state.polling = true;
            state.woken = false;
        }
        let result = self.inner.as_mut().poll(&mut Context::from_waker(&waker));
        self.gate.end_poll(result.is_ready());
        result
    }
}

/// A DataLoader spawner: through the gate when there is one, straight to tokio otherwise.
pub fn spawner(gate: Option<Arc<Gate>>) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static {
    move |task| match &gate {
        Some(gate) => gate.spawn(task),
        None => {
            tokio::spawn(task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn tasks_spawned_during_a_pass_start_only_when_the_pass_ends() {
        let gate = Gate::new();
        let started = Arc::new(AtomicBool::new(false));
        let (flag, inner_gate) = (started.clone(), gate.clone());
        let result = gate
            .run(async move {
                inner_gate.spawn(Box::pin(async move { flag.store(true, Ordering::SeqCst) }));
                tokio::task::yield_now().await;
                // The pass that spawned the task has ended: now it may run.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                7
            })
            .await;
        assert_eq!(result, 7);
        assert!(started.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn outside_a_request_tasks_start_at_once() {
        let gate = Gate::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        gate.spawn(Box::pin(async move {
            let _ = tx.send(());
        }));
        assert!(tokio::time::timeout(std::time::Duration::from_secs(1), rx).await.is_ok());
    }
}
