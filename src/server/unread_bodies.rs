//! A request answered before its body was read to the end (a credential or
//! a media type refused before the body is parsed, a body over the limit)
//! leaves its connection unable to carry another request: hyper closes it
//! once the answer is written. The answer says so (`Connection: close`), so
//! that a client does not send its next request down a connection that is
//! closing and see it fail.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, Version};
use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;

/// Whether a request's body has been read to its end.
#[derive(Clone, Default)]
pub struct BodyRead(Arc<AtomicBool>);

/// `request` with its body watched, and the watch; none for a request with
/// nothing to read, or over HTTP/2, whose streams close on their own.
pub fn watch(request: Request<Incoming>) -> (Request<Body>, Option<BodyRead>) {
    if request.body().is_end_stream() || request.version() > Version::HTTP_11 {
        return (request.map(Body::new), None);
    }
    let read = BodyRead::default();
    let watched = request.map(|body| {
        Body::new(ReadToEnd {
            body,
            read: read.clone(),
        })
    });
    (watched, Some(read))
}

/// Marks `response` as its connection's last when the body was left unread.
pub fn close_if_unread<B>(response: &mut Response<B>, read: Option<BodyRead>) {
    if read.is_some_and(|read| !read.0.load(Ordering::Relaxed)) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}

/// A request body that notes when it has been read to its end.
struct ReadToEnd {
    body: Incoming,
    read: BodyRead,
}

impl http_body::Body for ReadToEnd {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            self.read.0.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
