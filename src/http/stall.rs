//! Cutting clients that stop reading: every accepted connection is wrapped so that a write
//! the socket cannot take for the idle timeout (`CASEFILE_FILE_IDLE_TIMEOUT_SECS`) fails.
//!
//! This has to live at the connection: when a client stops reading, the socket's send
//! buffer fills, hyper stops polling the response body and only waits for the socket to
//! take more, so nothing the body does can end the response. The failed write makes hyper
//! drop the connection, which drops the response body (the download's file reader, the
//! export's producer see it and stop) and resets the socket, so the kernel frees what it
//! still held for the client at once. Only a write that waits counts: a connection that
//! sends nothing (keep-alive, a subscription between events) is never cut, and a slow
//! reader that keeps taking bytes is never cut either.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::serve::{Listener, ListenerExt as _, TapIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// `listener`'s connections, each cut when a write waits longer than `idle`. Serve it with
/// `axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())`.
pub fn listener(
    listener: TcpListener,
    idle: Duration,
) -> TapIo<StallGuard, fn(&mut GuardedStream)> {
    // `tap_io` (a no-op here) gives the wrapped listener axum's `SocketAddr` connect info.
    StallGuard { inner: listener, idle }.tap_io(untouched as fn(&mut GuardedStream))
}

fn untouched(_: &mut GuardedStream) {}

/// A TCP listener whose connections are [`GuardedStream`]s.
pub struct StallGuard {
    inner: TcpListener,
    idle: Duration,
}

impl Listener for StallGuard {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.inner).await;
        (GuardedStream { inner: stream, idle: self.idle, deadline: None }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A TCP connection whose writes fail once one has waited for the idle timeout.
pub struct GuardedStream {
    inner: TcpStream,
    idle: Duration,
    /// Set while a write waits for the socket.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl GuardedStream {
    /// Maps a write's readiness: progress clears the deadline; waiting arms it, and fails
    /// the write (resetting the connection) when it passes.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match poll {
            Poll::Ready(result) => {
                self.deadline = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let idle = self.idle;
                let deadline =
                    self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                ready!(deadline.as_mut().poll(cx));
                tracing::info!(
                    idle_secs = idle.as_secs(),
                    "client read nothing for the idle timeout: connection cut"
                );
                // Unsent bytes are dropped and the peer gets a reset instead of waiting
                // behind them for a FIN that a client that does not read would never see.
                if let Err(error) =
                    socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO))
                {
                    tracing::debug!(%error, "setting SO_LINGER on a cut connection");
                }
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client read nothing for the idle timeout",
                )))
            }
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // A TCP socket has nothing to flush; only writes arm the deadline.
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
