//! Event streams that hyper writes (one asked for down a kept-alive
//! connection, or whose request head came in pieces) given up when their
//! client stops reading, as `event_streams` gives up its own writes after
//! `WRITE_DEADLINE`. hyper asks a response body for more only while it has
//! room to write, and a stream's body has a comment to send at least every
//! `KEEP_ALIVE`: one not asked for longer than both is stuck behind a client
//! that reads nothing. Such a stream held its connection, a place under its
//! token's stream limit and megabytes of kernel buffers for good, and
//! outlived its token, whose lapse its body was never asked to tell.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
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
pub struct StreamWatch(Arc<Mutex<Streams>>);

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
        let mut streams = self.0.lock().expect("not poisoned");
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

    /// Resolves once an open stream's body has gone unasked for `UNASKED_MOST`.
    pub async fn stalled(&self) {
        self.unasked_for(UNASKED_MOST).await;
        self.0.lock().expect("not poisoned").stalled = true;
    }

    async fn unasked_for(&self, most: Duration) {
        loop {
            let oldest = self
                .0
                .lock()
                .expect("not poisoned")
                .last_asked
                .values()
                .min()
                .copied();
            match oldest {
                Some(asked) if asked.elapsed() >= most => return,
                Some(asked) => tokio::time::sleep_until(asked + most).await,
                // Looked at again when one may have opened.
                None => tokio::time::sleep(most).await,
            }
        }
    }

    fn asked(&self, id: u64) {
        if let Some(asked) = self.0.lock().expect("not poisoned").last_asked.get_mut(&id) {
            *asked = Instant::now();
        }
    }
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
        if self.watch.0.lock().expect("not poisoned").stalled {
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
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
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
        let mut streams = self.watch.0.lock().expect("not poisoned");
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
            let stalled = tokio::time::timeout(MOST / 3, watch.unasked_for(MOST)).await;
            assert!(stalled.is_err());
        }
        // Left unasked: stalled once MOST has passed since it was last asked.
        let started = Instant::now();
        watch.unasked_for(MOST).await;
        let waited = started.elapsed();
        assert!(
            waited >= MOST - MOST / 3 - Duration::from_millis(20),
            "{waited:?}"
        );
        assert!(waited < MOST, "{waited:?}");
        drop(body);
        assert!(watch.0.lock().unwrap().last_asked.is_empty());
    }
}
