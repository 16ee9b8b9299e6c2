//! hyper answers a request it cannot parse (a broken head, a head over
//! the 32 KiB limit, an overlong URI) by itself, before the router sees it,
//! with a bare `400`/`414`/`431` and no body. The contract wants every error
//! as an `application/problem+json` document, so a connection's writes pass
//! through `ProblemsForParseErrors`, which replaces that bare answer, the
//! last thing hyper writes before it closes the connection, with one, which
//! has a request id, a log line and a count of its own as any answer has.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::api::error::Problem;

/// A connection whose writes are passed on unchanged, except hyper's own
/// answer to an unparsable request.
pub struct ProblemsForParseErrors<S> {
    inner: S,
    /// The answer written in place of hyper's, while it is being written.
    replacing: Option<Replacement>,
    /// An HTTP/2 connection (its first bytes are the HTTP/2 preface):
    /// hyper answers no parse error there in HTTP/1 text, so nothing is looked at.
    http2: bool,
    /// Whether the connection's first bytes have been read: the preface
    /// later on, after an HTTP/1 request, is an unparsable request.
    started: bool,
}

struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    /// The length of hyper's answer, reported as written once ours is.
    stands_for: usize,
}

impl<S> ProblemsForParseErrors<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            replacing: None,
            http2: false,
            started: false,
        }
    }
}

impl<S: AsyncWrite + Unpin> ProblemsForParseErrors<S> {
    /// Writes the rest of the replacement; ready with the length of the
    /// answer it replaces once it is all written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let replacement = self.replacing.as_mut().expect("replacing");
        while replacement.written < replacement.bytes.len() {
            let rest = &replacement.bytes[replacement.written..];
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, rest))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            replacement.written += written;
        }
        let stands_for = replacement.stands_for;
        self.replacing = None;
        Poll::Ready(Ok(stands_for))
    }

    fn replace(
        &mut self,
        bare: Bare,
        stands_for: usize,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        let request_id = uuid::Uuid::new_v4();
        log_and_count(bare.status, request_id);
        self.replacing = Some(Replacement {
            bytes: problem_answer(bare.status, bare.version, request_id),
            written: 0,
            stands_for,
        });
        self.poll_replacement(cx)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemsForParseErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let read = &buf.filled()[before..];
        if !self.started && !read.is_empty() {
            self.started = true;
            self.http2 = read.starts_with(b"PRI * HTTP/2");
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemsForParseErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_some() {
            return self.poll_replacement(cx);
        }
        if self.http2 {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        }
        match bare_error_answer(buf) {
            None => Pin::new(&mut self.inner).poll_write(cx, buf),
            // What comes before it (a pipelined answer) goes first, whole.
            Some(bare) if bare.start > 0 => {
                Pin::new(&mut self.inner).poll_write(cx, &buf[..bare.start])
            }
            Some(bare) => self.replace(bare, buf.len(), cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_some() {
            return self.poll_replacement(cx);
        }
        if self.http2 {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        }
        let Some(last) = bufs.iter().rposition(|buf| !buf.is_empty()) else {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        };
        match bare_error_answer(&bufs[last]) {
            None => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
            Some(_) if bufs[..last].iter().any(|buf| !buf.is_empty()) => {
                Pin::new(&mut self.inner).poll_write_vectored(cx, &bufs[..last])
            }
            Some(bare) if bare.start > 0 => {
                Pin::new(&mut self.inner).poll_write(cx, &bufs[last][..bare.start])
            }
            Some(bare) => self.replace(bare, bufs[last].len(), cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// hyper's bare answer to an unparsable request, found at the end of what
/// it writes: where it starts, its status and its HTTP version.
#[derive(Debug, PartialEq)]
struct Bare {
    start: usize,
    status: StatusCode,
    version: &'static str,
}

/// hyper's bare answer, when `bytes` ends with one. hyper writes it as
/// `HTTP/1.1 431 Request Header Fields Too Large`, then `connection: close`
/// (not to an HTTP/1.0 client), `content-length: 0` and `date`; the
/// router's answers always carry a body when they are errors, so no answer
/// of the service's own looks like it.
fn bare_error_answer(bytes: &[u8]) -> Option<Bare> {
    if !bytes.ends_with(b"\r\n\r\n") {
        return None;
    }
    let start = bytes
        .windows(9)
        .rposition(|window| window == b"HTTP/1.1 " || window == b"HTTP/1.0 ")?;
    let head = std::str::from_utf8(&bytes[start..]).ok()?;
    let version = if head.starts_with("HTTP/1.1") {
        "HTTP/1.1"
    } else {
        "HTTP/1.0"
    };
    let mut lines = head.split("\r\n").peekable();
    let status: StatusCode = lines.next()?.get(9..12)?.parse().ok()?;
    let expected = [
        StatusCode::BAD_REQUEST,
        StatusCode::URI_TOO_LONG,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
    ];
    lines.next_if_eq(&"connection: close");
    let bare = expected.contains(&status)
        && lines.next()? == "content-length: 0"
        && lines.next()?.starts_with("date: ")
        && lines.next()?.is_empty()
        && lines.next()?.is_empty()
        && lines.next().is_none();
    bare.then_some(Bare {
        start,
        status,
        version,
    })
}

/// An answer given before routing is one request's answer all the same: it
/// has its log line and its count, as the router's answers have, under the
/// route `unparsed`.
fn log_and_count(status: StatusCode, request_id: uuid::Uuid) {
    tracing::info!(
        target: "concert::request",
        status = status.as_u16(),
        route = "unparsed",
        %request_id,
        "request not parsed: answered before routing"
    );
    crate::api::middleware::count_unparsed(status);
}

/// The answer written instead: the same status, with a problem document
/// (a type of its own for each status, as the title differs) and a request
/// id of its own, which its log line carries too.
fn problem_answer(status: StatusCode, version: &str, request_id: uuid::Uuid) -> Vec<u8> {
    let (kind, detail) = match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "request-header-fields-too-large",
            "the request's head (its line and headers) is larger than 32 KiB, \
             or has more than 100 header lines",
        ),
        StatusCode::URI_TOO_LONG => ("uri-too-long", "the request's URI is too long"),
        _ => (
            "bad-request",
            "the request is not well-formed HTTP/1.1 or HTTP/1.0 (its line or a header)",
        ),
    };
    let problem = Problem {
        kind: format!("/problems/{kind}"),
        title: crate::api::problem_types::title_of(kind).to_string(),
        status: status.as_u16(),
        detail: detail.to_string(),
        code: "bad_request".to_string(),
    };
    let body = serde_json::to_vec(&problem).expect("a problem serializes");
    let mut answer = format!(
        "{version} {status}\r\nconnection: close\r\ncontent-type: application/problem+json\r\ncache-control: no-store\r\nx-content-type-options: nosniff\r\nx-request-id: {request_id}\r\ncontent-length: {}\r\ndate: {}\r\n\r\n",
        body.len(),
        crate::clock::http_date(),
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    const BARE_431: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 23:00:31 GMT\r\n\r\n";

    const BARE_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 23:00:31 GMT\r\n\r\n";

    const BARE_400_TO_HTTP_1_0: &[u8] = b"HTTP/1.0 400 Bad Request\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 23:00:31 GMT\r\n\r\n";

    fn bare(start: usize, status: StatusCode, version: &'static str) -> Option<Bare> {
        Some(Bare {
            start,
            status,
            version,
        })
    }

    #[test]
    fn hyper_s_bare_answers_are_recognised_after_whatever_precedes_them() {
        assert_eq!(
            bare_error_answer(BARE_431),
            bare(0, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "HTTP/1.1")
        );
        let answered = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let pipelined = [&answered[..], BARE_400].concat();
        assert_eq!(
            bare_error_answer(&pipelined),
            bare(answered.len(), StatusCode::BAD_REQUEST, "HTTP/1.1")
        );
        // To an HTTP/1.0 client kept alive, without `connection: close`.
        assert_eq!(
            bare_error_answer(BARE_400_TO_HTTP_1_0),
            bare(0, StatusCode::BAD_REQUEST, "HTTP/1.0")
        );
    }

    #[test]
    fn the_service_s_own_answers_are_left_alone() {
        let own_error = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 90\r\n\r\n";
        assert_eq!(bare_error_answer(own_error), None);
        let empty_ok = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 23:00:31 GMT\r\n\r\n";
        assert_eq!(bare_error_answer(empty_ok), None);
        assert_eq!(bare_error_answer(&BARE_431[..BARE_431.len() - 2]), None);
    }

    #[test]
    fn the_replacement_is_a_problem_document_of_the_same_status_and_version() {
        let answer = problem_answer(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "HTTP/1.0",
            uuid::Uuid::nil(),
        );
        let answer = String::from_utf8(answer).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.0 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("connection: close\r\n"));
        assert!(head.contains("x-content-type-options: nosniff\r\n"));
        assert!(head.contains("cache-control: no-store\r\n"));
        assert!(head.contains(&format!("x-request-id: {}\r\n", uuid::Uuid::nil())));
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 431);
        assert_eq!(problem["code"], "bad_request");
        assert_eq!(problem["type"], "/problems/request-header-fields-too-large");
        // Each replacement's type is documented with its title and status.
        for status in [
            StatusCode::BAD_REQUEST,
            StatusCode::URI_TOO_LONG,
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ] {
            let answer =
                String::from_utf8(problem_answer(status, "HTTP/1.1", uuid::Uuid::nil())).unwrap();
            let (_, body) = answer.split_once("\r\n\r\n").unwrap();
            let problem: serde_json::Value = serde_json::from_str(body).unwrap();
            let documented = crate::api::problem_types::PROBLEM_TYPES
                .iter()
                .find(|kind| problem["type"] == format!("/problems/{}", kind.name))
                .expect("a documented type");
            assert_eq!(problem["title"], documented.title);
            assert_eq!(problem["status"], documented.status);
        }
    }
}
