//! The body of a response made by a task of its own (the case export): the task writes
//! into a [`PipeWriter`], which hands chunks of [`CHUNK`] bytes to the response through a
//! channel of [`DEPTH`] chunks, so memory stays constant however large the response.
//!
//! The response side hashes and counts every chunk as it hands it to hyper, on the
//! connection's task: the SHA-256 of what was sent is computed on the other core while
//! the writer's task makes the next chunks, and it is reported only when the body has
//! ended whole ([`PipeWriter::finish`] then the channel drained).
//!
//! A writer that waits longer than the idle timeout for room (the client stopped reading)
//! fails, and so does one whose response is gone (the client disconnected): the task
//! stops there. A writer dropped without `finish` (the task failed) ends the body with an
//! error, so hyper cuts the connection instead of closing a truncated body as if whole.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Sleep;
use tokio_util::sync::PollSender;

/// Bytes of one chunk handed to the response.
pub const CHUNK: usize = 256 * 1024;
/// Chunks waiting for the response at most.
const DEPTH: usize = 4;

/// What the response sent, once it ended whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// SHA-256 (lowercase hex) of the body.
    pub sha256: String,
    pub size: u64,
}

/// A writer, the response body it feeds, and the report of what was sent (an error when
/// the body did not end whole).
pub fn pipe(idle: Duration) -> (PipeWriter, Body, oneshot::Receiver<Sent>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    let (report, sent) = oneshot::channel();
    let finished = Arc::new(AtomicBool::new(false));
    let writer = PipeWriter {
        buffer: BytesMut::new(),
        tx: PollSender::new(tx),
        idle,
        deadline: None,
        finished: finished.clone(),
    };
    let stream = PipeStream { rx, hasher: Sha256::new(), size: 0, finished, report: Some(report) };
    (writer, Body::from_stream(stream), sent)
}

/// The writing end; see the module.
pub struct PipeWriter {
    buffer: BytesMut,
    tx: PollSender<Bytes>,
    idle: Duration,
    /// Set while waiting for room in the channel.
    deadline: Option<Pin<Box<Sleep>>>,
    finished: Arc<AtomicBool>,
}

impl PipeWriter {
    /// Sends what is buffered and marks the body whole.
    pub async fn finish(mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_send(cx)).await?;
        self.finished.store(true, Ordering::Release);
        Ok(())
    }

    /// Hands the buffered bytes to the response as one chunk.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffer.is_empty() {
            return Poll::Ready(Ok(()));
        }
        match self.tx.poll_reserve(cx) {
            Poll::Ready(Ok(())) => {
                self.deadline = None;
                let chunk = self.buffer.split().freeze();
                self.tx.send_item(chunk).map_err(|_| gone())?;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(_)) => Poll::Ready(Err(gone())),
            Poll::Pending => {
                let idle = self.idle;
                let deadline =
                    self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(deadline.as_mut().poll(cx));
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client read nothing for the idle timeout",
                )))
            }
        }
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the client went away")
}

impl AsyncWrite for PipeWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.buffer.len() >= CHUNK {
            ready!(this.poll_send(cx))?;
        }
        if this.buffer.capacity() == 0 {
            this.buffer.reserve(CHUNK);
        }
        let n = buf.len().min(CHUNK - this.buffer.len());
        this.buffer.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_send(cx)
    }
}

/// The response side: chunks as they come, hashed and counted.
struct PipeStream {
    rx: mpsc::Receiver<Bytes>,
    hasher: Sha256,
    size: u64,
    finished: Arc<AtomicBool>,
    report: Option<oneshot::Sender<Sent>>,
}

impl Stream for PipeStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match ready!(this.rx.poll_recv(cx)) {
            Some(chunk) => {
                this.hasher.update(&chunk);
                this.size += chunk.len() as u64;
                Poll::Ready(Some(Ok(chunk)))
            }
            None => {
                let Some(report) = this.report.take() else { return Poll::Ready(None) };
                if !this.finished.load(Ordering::Acquire) {
                    return Poll::Ready(Some(Err(io::Error::other(
                        "the response stopped before its end",
                    ))));
                }
                let sha256 =
                    crate::export::package::hex(&std::mem::take(&mut this.hasher).finalize());
                // The writer's task may be gone; nothing then waits for the report.
                let _ = report.send(Sent { sha256, size: this.size });
                Poll::Ready(None)
            }
        }
    }
}
