//! Makes DataLoader batches follow the shape of the query instead of the clock.
//!
//! async-graphql's DataLoader starts a fetch task (through the spawner it is given) at an
//! operation's first key; the task takes the keys collected when it runs. Resolving the
//! fields of a 100-item page takes several polls (async-graphql's lists yield every 32
//! items), and on a multi-thread runtime the task would run meanwhile: the later items'
//! keys would go into a second statement. A [`Gate`] holds those fetch tasks until the
//! operation is quiet: its future returned `Pending` and nothing woke it meanwhile, so
//! every resolver that could run has asked for its keys and the operation waits on the
//! database alone. The schema's operation extension runs every execution, on every
//! transport, through a gate of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::future::BoxFuture;

/// How many polls in a row may end busy while fetches are held. A future that wakes
/// itself at every poll would otherwise hold them (and itself) forever. Real operations
/// end busy many polls in a row (async-graphql's lists and field sets yield as they go):
/// up to 81 in the test suite, which at 64 split a page into two statements now and
/// then. The query cost limit bounds how much an operation resolves; this bound sits far
/// above it and still releases a self-waking future within a few milliseconds.
const MAX_BUSY_POLLS: u32 = 4096;

/// Holds the fetch tasks of one operation's loaders during a resolution pass.
#[derive(Default)]
pub struct Gate {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    polling: bool,
    /// Something woke the operation since its last poll began: it has more to do.
    woken: bool,
    /// Polls in a row that ended busy with tasks held.
    busy_polls: u32,
    /// The operation's own statements in flight (see [`Gate::hold`]).
    direct: usize,
    held: Vec<BoxFuture<'static, ()>>,
}

impl Gate {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The loaders' spawner: holds the task while the operation is busy, runs it at once
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

    /// Marks a statement of the operation's own (a list, not a loader's batch) as in flight
    /// until the mark is dropped. Held fetches wait for it: the rows it brings may ask for
    /// more keys of the same loaders, which then join the same batch.
    pub fn hold(self: &Arc<Self>) -> Hold {
        self.state().direct += 1;
        Hold(Arc::downgrade(self))
    }

    /// Runs `future` (an operation's execution) with this gate.
    pub fn run<F: Future>(self: Arc<Self>, future: F) -> Gated<F> {
        Gated { inner: Box::pin(future), gate: self }
    }

    /// Ends a poll; starts the held tasks when the operation is quiet (it waits on them
    /// alone), done, or has been busy for too many polls in a row.
    fn end_poll(&self, done: bool) {
        let held = {
            let mut state = self.state();
            state.polling = false;
            if !done && !state.held.is_empty() {
                if state.woken {
                    state.busy_polls += 1;
                    if state.busy_polls < MAX_BUSY_POLLS {
                        return;
                    }
                } else if state.direct > 0 {
                    // Its own statements wake it when they end.
                    return;
                }
            }
            state.busy_polls = 0;
            std::mem::take(&mut state.held)
        };
        for task in held {
            tokio::spawn(task);
        }
    }
}

/// A statement of the operation's own in flight; see [`Gate::hold`].
pub struct Hold(Weak<Gate>);

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(gate) = self.0.upgrade() {
            let mut state = gate.state();
            state.direct = state.direct.saturating_sub(1);
        }
    }
}

/// The waker the operation's resolvers see: it records the wake, then wakes the operation.
/// It holds the gate weakly: the held tasks can own this waker (through the loader's
/// pending answers), and a strong reference would make a cycle.
struct Recording {
    gate: Weak<Gate>,
    waker: Waker,
}

impl Wake for Recording {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(gate) = self.gate.upgrade() {
            gate.state().woken = true;
        }
        self.waker.wake_by_ref();
    }
}

/// An operation's execution whose loader fetches start when it is quiet.
pub struct Gated<F: Future> {
    inner: Pin<Box<F>>,
    gate: Arc<Gate>,
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let waker = Waker::from(Arc::new(Recording {
            gate: Arc::downgrade(&self.gate),
            waker: cx.waker().clone(),
        }));
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

impl<F: Future> Drop for Gated<F> {
    /// An operation dropped before its end (a closed connection) leaves no task behind.
    fn drop(&mut self) {
        let held = std::mem::take(&mut self.gate.state().held);
        drop(held);
    }
}

/// A DataLoader spawner through the gate; straight to tokio once the gate is gone.
pub fn spawner(gate: &Arc<Gate>) -> impl Fn(BoxFuture<'static, ()>) + Send + Sync + 'static {
    let gate = Arc::downgrade(gate);
    move |task| match gate.upgrade() {
        Some(gate) => gate.spawn(task),
        None => {
            tokio::spawn(task);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use async_graphql::dataloader::{DataLoader, Loader};

    /// Counts the batches it is asked for.
    struct Counting(Arc<AtomicUsize>);

    impl Loader<u32> for Counting {
        type Value = u32;
        type Error = ();

        async fn load(&self, keys: &[u32]) -> Result<HashMap<u32, u32>, ()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(keys.iter().map(|k| (*k, k * 2)).collect())
        }
    }

    /// Resolves a page of 100 items the way async-graphql does (a joined list that yields
    /// every 32 items), each item working a little before it asks the loader for its key.
    async fn resolve_page(loader: &DataLoader<Counting>) -> Vec<u32> {
        let items = (0..100u32).map(|i| async move {
            std::thread::sleep(Duration::from_micros(200));
            loader.load_one(i).await.ok().flatten().unwrap_or_default()
        });
        futures_util::future::join_all(items).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_page_whose_keys_arrive_over_several_polls_is_one_batch() {
        let batches = Arc::new(AtomicUsize::new(0));
        let gate = Gate::new();
        let loader =
            DataLoader::new(Counting(batches.clone()), spawner(&gate)).delay(Duration::ZERO);
        let values = gate.run(resolve_page(&loader)).await;
        assert_eq!(values, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(batches.load(Ordering::SeqCst), 1, "one statement for the whole page");

        // The same page without a gate: the fetch starts at the first key and the page splits.
        let batches = Arc::new(AtomicUsize::new(0));
        let loader = DataLoader::new(Counting(batches.clone()), |task| {
            tokio::spawn(task);
        })
        .delay(Duration::ZERO);
        resolve_page(&loader).await;
        assert!(batches.load(Ordering::SeqCst) > 1, "the page splits without the gate");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_asked_after_a_statement_of_the_operation_s_own_join_the_same_batch() {
        let batches = Arc::new(AtomicUsize::new(0));
        let gate = Gate::new();
        let loader =
            DataLoader::new(Counting(batches.clone()), spawner(&gate)).delay(Duration::ZERO);
        let (loader, hold_gate) = (&loader, gate.clone());
        // Two lists: one answers at once, the other after its own (slow) statement.
        let fast = async move { loader.load_many(0..10u32).await.map(|m| m.len()) };
        let slow = async move {
            let hold = hold_gate.hold();
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(hold);
            loader.load_many(10..20u32).await.map(|m| m.len())
        };
        let (fast, slow) = gate.run(futures_util::future::join(fast, slow)).await;
        assert_eq!((fast, slow), (Ok(10), Ok(10)));
        assert_eq!(batches.load(Ordering::SeqCst), 1, "the keys of both lists in one batch");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operation_that_wakes_itself_at_every_poll_still_gets_its_fetch() {
        let gate = Gate::new();
        let inner = gate.clone();
        let operation = gate.run(async move {
            let (tx, mut rx) = futures_channel::oneshot::channel();
            inner.spawn(Box::pin(async move {
                let _ = tx.send(7);
            }));
            std::future::poll_fn(move |cx| match std::pin::Pin::new(&mut rx).poll(cx) {
                Poll::Ready(value) => Poll::Ready(value.ok()),
                Poll::Pending => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
            })
            .await
        });
        let value = tokio::time::timeout(Duration::from_secs(5), operation).await;
        assert_eq!(value, Ok(Some(7)));
    }

    #[tokio::test]
    async fn a_dropped_operation_frees_its_gate_and_held_tasks() {
        let gate = Gate::new();
        let weak = Arc::downgrade(&gate);
        let inner = gate.clone();
        let mut operation = Box::pin(gate.run(async move {
            // A held task that owns the operation's waker: gate, task and waker would
            // form a cycle if the waker held the gate strongly and nothing dropped the task.
            std::future::poll_fn(move |cx| {
                let waker = cx.waker().clone();
                inner.spawn(Box::pin(async move { waker.wake() }));
                cx.waker().wake_by_ref();
                Poll::<()>::Pending
            })
            .await
        }));
        assert!(futures_util::poll!(operation.as_mut()).is_pending());
        drop(operation);
        assert!(weak.upgrade().is_none(), "no reference cycle keeps the gate alive");
    }

    #[tokio::test]
    async fn once_the_gate_is_gone_tasks_start_at_once() {
        let spawn = spawner(&Gate::new());
        let (tx, rx) = tokio::sync::oneshot::channel();
        spawn(Box::pin(async move {
            let _ = tx.send(());
        }));
        assert!(tokio::time::timeout(Duration::from_secs(1), rx).await.is_ok());
    }
}
