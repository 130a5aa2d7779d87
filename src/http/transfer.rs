//! Streams of the file routes: a source that must keep moving (`idle_timeout`), and a
//! download counted in `casefile_file_transfers_*` as it ends (`tracked`).

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::http::metrics::TransferGuard;

/// Ends the stream with an error when no chunk arrives within `idle`.
pub fn idle_timeout<S, E>(
    stream: S,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: std::fmt::Display,
{
    futures_util::stream::unfold(Some(stream), move |stream| async move {
        let mut stream = stream?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(stream))),
            Ok(Some(Err(e))) => Some((Err(std::io::Error::other(e.to_string())), None)),
            Ok(None) => None,
            Err(_) => {
                Some((Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "idle timeout")), None))
            }
        }
    })
    .boxed()
}

/// `stream` of `length` bytes, counted by `transfer`: `complete` once its last byte is
/// handed to hyper (which stops polling a body of known length there), `failed` at an
/// error, `cut` when the response is dropped before (the client left or stopped reading).
pub fn tracked(
    stream: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
    length: u64,
    mut transfer: TransferGuard,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    if length == 0 {
        transfer.complete();
    }
    futures_util::stream::unfold(Some((stream, transfer, 0_u64)), move |state| async move {
        let (mut stream, mut transfer, mut sent) = state?;
        match stream.next().await {
            Some(Ok(chunk)) => {
                sent += chunk.len() as u64;
                if sent >= length {
                    transfer.complete();
                }
                Some((Ok(chunk), Some((stream, transfer, sent))))
            }
            Some(Err(error)) => {
                transfer.failed();
                Some((Err(error), None))
            }
            None => {
                // The store ended before the length it announced.
                if sent < length {
                    transfer.failed();
                }
                None
            }
        }
    })
}
