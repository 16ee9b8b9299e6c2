//! Connections hyper serves given up when their client stops reading, as
//! `event_streams` gives up its own writes after `WRITE_DEADLINE`:
//! - an event stream's body (one asked for down a kept-alive connection, or
//!   whose request head came in pieces) that hyper has not asked for more
//!   for longer than `KEEP_ALIVE` and the deadline: hyper asks a body only
//!   while it has room to write, and a stream has a comment to send at
//!   least every `KEEP_ALIVE`. Such a stream held its connection, a place
//!   under its token's stream limit and megabytes of kernel buffers for
//!   good, and outlived its token, whose lapse its body was never asked to
//!   tell. An HTTP/2 answer's body is watched the same way: hyper asks it
//!   only while its stream's flow-control window has room, and one its
//!   client never opens held the whole answer for good;
//! - any write of the connection that has waited for room longer than the
//!   deadline: answers to pipelined requests that the client never reads
//!   held their connection and 4 MB of kernel buffers for good.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::event_streams::WRITE_DEADLINE;
use crate::api::live::KEEP_ALIVE;

/// The longest an open stream's body may go unasked before its connection is dropped.
const UNASKED_MOST: Duration = KEEP_ALIVE.saturating_add(WRITE_DEADLINE);

/// The event streams open on one connection, each with when hyper last
/// asked its body for more.
#[derive(Debug, Clone, Default)]
pub struct StreamWatch(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    streams: Mutex<Streams>,
    /// Since when a write has waited for room in the socket, while one does:
    /// microseconds after `since_base()`, 0 while none waits. Every write
    /// looks at it, so it is an atomic rather than under the lock.
    write_waiting_since: AtomicU64,
}

#[derive(Debug, Default)]
struct Streams {
    next: u64,
    last_asked: HashMap<u64, Instant>,
    /// Whether one was found stalled: the connection is then reset.
    stalled: bool,
}

impl StreamWatch {
    /// `body`, watched while it is open.
    pub fn watch(&self, body: Body) -> Body {
        let mut streams = self.0.streams.lock().expect("not poisoned");
        let id = streams.next;
        streams.next += 1;
        streams.last_asked.insert(id, Instant::now());
        Body::new(Watched {
            body,
            id,
            watch: self.clone(),
        })
    }

    /// The connection's socket, reset when dropped once a stream on it stalled.
    pub fn resettable(&self, stream: TcpStream) -> Resettable {
        Resettable {
            stream,
            watch: self.clone(),
        }
    }

    /// Resolves once an open stream's body has gone unasked for
    /// `UNASKED_MOST`, or a write has waited for room for `WRITE_DEADLINE`.
    pub async fn stalled(&self) {
        self.stalled_after(UNASKED_MOST, WRITE_DEADLINE).await;
        self.0.streams.lock().expect("not poisoned").stalled = true;
    }

    async fn stalled_after(&self, unasked_most: Duration, waiting_most: Duration) {
        loop {
            let oldest_asked = (self.0.streams.lock().expect("not poisoned"))
                .last_asked
                .values()
                .min()
                .copied();
            let waiting_since = match self.0.write_waiting_since.load(Ordering::Relaxed) {
                0 => None,
                micros => Some(since_base() + Duration::from_micros(micros)),
            };
            let due = [
                oldest_asked.map(|asked| asked + unasked_most),
                waiting_since.map(|since| since + waiting_most),
            ]
            .into_iter()
            .flatten()
            .min();
            match due {
                Some(due) if Instant::now() >= due => return,
                Some(due) => tokio::time::sleep_until(due).await,
                // Looked at again when a stream may have opened, or a write begun to wait.
                None => tokio::time::sleep(unasked_most.min(waiting_most)).await,
            }
        }
    }

    /// Notes how a write went: one that found no room starts (or goes on)
    /// waiting, one that wrote ends the wait.
    fn wrote<T>(&self, outcome: &Poll<io::Result<T>>) {
        let waiting_since = &self.0.write_waiting_since;
        match outcome {
            Poll::Pending => {
                let now = (since_base().elapsed().as_micros() as u64).max(1);
                let _ =
                    waiting_since.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            }
            Poll::Ready(_) => {
                if waiting_since.load(Ordering::Relaxed) != 0 {
                    waiting_since.store(0, Ordering::Relaxed);
                }
            }
        }
    }

    fn asked(&self, id: u64) {
        if let Some(asked) = self
            .0
            .streams
            .lock()
            .expect("not poisoned")
            .last_asked
            .get_mut(&id)
        {
            *asked = Instant::now();
        }
    }
}

/// The instant the waits of writes are counted from.
fn since_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

/// A connection's socket, reset rather than closed when dropped once its
/// watch found a stream stalled: a close keeps what the client never read
/// queued in the kernel, megabytes a stream, for minutes.
pub struct Resettable {
    stream: TcpStream,
    watch: StreamWatch,
}

impl Drop for Resettable {
    fn drop(&mut self) {
        if self.watch.0.streams.lock().expect("not poisoned").stalled {
            let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for Resettable {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Resettable {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let outcome = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch.wrote(&outcome);
        outcome
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let outcome = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch.wrote(&outcome);
        outcome
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A stream's body that tells its watch each time it is asked for more.
struct Watched {
    body: Body,
    id: u64,
    watch: StreamWatch,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        self.watch.asked(self.id);
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let mut streams = self.watch.0.streams.lock().expect("not poisoned");
        streams.last_asked.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_stream_not_asked_for_more_is_stalled_and_one_asked_is_not() {
        const MOST: Duration = Duration::from_millis(300);
        let watch = StreamWatch::default();
        let (mut sender, receiver) = futures::channel::mpsc::channel(1);
        let mut body = watch.watch(Body::new(http_body_util::StreamBody::new(receiver)));

        // Asked for more every 100 ms: never stalled.
        for _ in 0..6 {
            let comment: Result<Frame<Bytes>, axum::Error> =
                Ok(Frame::data(Bytes::from_static(b":\n")));
            futures::SinkExt::send(&mut sender, comment).await.unwrap();
            body.frame().await.unwrap().unwrap();
            let stalled = tokio::time::timeout(MOST / 3, watch.stalled_after(MOST, MOST)).await;
            assert!(stalled.is_err());
        }
        // Left unasked: stalled once MOST has passed since it was last asked.
        let started = Instant::now();
        watch.stalled_after(MOST, MOST).await;
        let waited = started.elapsed();
        assert!(
            waited >= MOST - MOST / 3 - Duration::from_millis(20),
            "{waited:?}"
        );
        assert!(waited < MOST, "{waited:?}");
        drop(body);
        assert!(watch.0.streams.lock().unwrap().last_asked.is_empty());
    }

    #[tokio::test]
    async fn a_write_waiting_for_room_too_long_is_stalled_and_one_that_wrote_is_not() {
        const MOST: Duration = Duration::from_millis(300);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let watch = StreamWatch::default();
        let mut served = watch.resettable(listener.accept().await.unwrap().0);

        // The client reads nothing: writes fill the socket's buffers, then wait.
        let chunk = vec![0u8; 64 * 1024];
        while tokio::time::timeout(
            Duration::from_millis(100),
            tokio::io::AsyncWriteExt::write(&mut served, &chunk),
        )
        .await
        .is_ok()
        {}
        let started = Instant::now();
        watch.stalled_after(Duration::MAX, MOST).await;
        assert!(started.elapsed() < MOST + Duration::from_millis(200));

        // Once the client reads, a write goes through and the wait is over.
        let mut sink = vec![0u8; 1024 * 1024];
        let read = tokio::io::AsyncReadExt::read(&mut client, &mut sink).await;
        assert!(read.unwrap() > 0);
        loop {
            let wrote = tokio::time::timeout(
                Duration::from_millis(100),
                tokio::io::AsyncWriteExt::write(&mut served, &chunk[..1]),
            )
            .await;
            if wrote.is_ok() {
                break;
            }
            let _ = tokio::io::AsyncReadExt::read(&mut client, &mut sink).await;
        }
        let stalled =
            tokio::time::timeout(MOST * 2, watch.stalled_after(Duration::MAX, MOST)).await;
        assert!(stalled.is_err(), "a connection whose writes go through");
    }
}
