//! Server-Sent Event streams on connections of their own, written without
//! hyper. hyper keeps an 8 KiB read buffer and an 8 KiB header buffer for
//! every HTTP/1 connection for as long as a response streams (its
//! `INIT_BUFFER_SIZE` is fixed), which is most of what a subscriber would
//! cost: a date watched by 10,000 people is 10,000 such connections.
//!
//! A connection that opens with a `GET` of an event stream is answered here
//! instead. The request goes through the same router and layers as any
//! other; its response is written with chunked transfer coding straight to
//! the socket, and the connection closes when the stream ends. Anything
//! else, and every request after the first on a kept-alive connection, is
//! hyper's.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, Response, StatusCode, Version};
use axum::Router;
use bytes::{Buf, BufMut, BytesMut};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// The longest request head answered here; a longer one is left to hyper.
const HEAD_MOST: usize = 4096;
/// The most header lines of a request answered here.
const HEADERS_MOST: usize = 32;
/// Event streams opened at once; the rest wait their turn (`serve`).
pub const OPENINGS_AT_ONCE: usize = 64;

/// An event-stream request a connection opened with; its head is still
/// unread on the socket.
pub struct Opening {
    head_length: usize,
    request: Request<Body>,
}

/// The event-stream request `stream` opens with, if it does; waits for its
/// first bytes and reads nothing, so that any other connection is handed to
/// hyper untouched.
pub async fn opening(stream: &TcpStream) -> Option<Opening> {
    stream.readable().await.ok()?;
    let mut bytes = vec![0; HEAD_MOST];
    let read = stream.peek(&mut bytes).await.ok()?;
    parse(&bytes[..read])
}

/// The request when `bytes` begin with the whole head of a bodiless HTTP/1.1
/// `GET` of an event stream; anything else (a head not all there yet
/// included) is left to hyper.
fn parse(bytes: &[u8]) -> Option<Opening> {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MOST];
    let mut head = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(head_length) = head.parse(bytes).ok()? else {
        return None;
    };
    let path = head.path?;
    if head.method != Some("GET") || head.version != Some(1) || !is_event_stream(path) {
        return None;
    }
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .version(Version::HTTP_11);
    for line in head.headers.iter() {
        let name = header::HeaderName::from_bytes(line.name.as_bytes()).ok()?;
        // A body or a change of protocol is hyper's to handle.
        if [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::UPGRADE,
            header::EXPECT,
        ]
        .contains(&name)
        {
            return None;
        }
        request = request.header(name, line.value);
    }
    let request = request.body(Body::empty()).ok()?;
    Some(Opening {
        head_length,
        request,
    })
}

impl Opening {
    /// The request as sent by `remote`, for `ConnectInfo`.
    pub fn sent_by(mut self, remote: SocketAddr) -> Self {
        self.request.extensions_mut().insert(ConnectInfo(remote));
        self
    }
}

/// Whether `path` is one of the two live streams' routes (`api::live`):
/// matched whole, since other routes end in `/events` too (the audit's
/// page of the log, whose connection must stay open for the next page).
fn is_event_stream(path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let segments: Vec<&str> = path.split('/').collect();
    matches!(
        segments[..],
        ["", "api", "v1", "queue", "tokens", "current", "events"]
            | [
                "",
                "api",
                "v1",
                "concerts",
                _,
                "dates",
                _,
                "seats",
                "events"
            ]
    )
}

/// Answers `opening` with `router` on `stream`, then closes the connection.
///
/// At most `openings` permits' worth of streams are being opened (their
/// request going through the router) at once. A request in the router holds
/// every layer's future, about 20 KiB, while it waits for its token's check:
/// ten thousand subscribers connecting together held all of it at once, and
/// the heap it grew to stayed with the streams (15-19 KiB a subscriber
/// instead of 7-8). Waiting here, a connection holds its parsed head alone.
/// It waits `wait_most` at most, then goes through the router anyway (whose
/// time limit answers it), and gives its place up at once if the client
/// hangs up: a stalled database must not leave crowds of waiters, each on
/// one of the server's connection places, with nothing to end their wait.
pub async fn serve(
    mut stream: TcpStream,
    opening: Opening,
    router: Router,
    openings: &Semaphore,
    wait_most: Duration,
) {
    let mut head = vec![0; opening.head_length];
    if stream.read_exact(&mut head).await.is_err() {
        return;
    }
    drop(head);
    let opening_permit = tokio::select! {
        permit = openings.acquire() => permit.ok(),
        _ = tokio::time::sleep(wait_most) => None,
        _ = hung_up(&stream) => return,
    };
    let Ok(response) = router.oneshot(opening.request).await;
    drop(opening_permit);
    let (reader, writer) = stream.split();
    if let Err(error) = answer(response, reader, writer).await {
        tracing::trace!(%error, "event stream ended with a socket error");
        if error.kind() == io::ErrorKind::TimedOut {
            // Reset rather than closed: a close keeps what the client never
            // read queued in the kernel, megabytes a stream, for minutes.
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
    }
}

/// Resolves once the client has closed its side of `stream`; never if it
/// sends more instead (nothing more is read from an event stream's client).
async fn hung_up(stream: &TcpStream) {
    let mut byte = [0u8; 1];
    match stream.peek(&mut byte).await {
        Ok(0) | Err(_) => {}
        Ok(_) => std::future::pending().await,
    }
}

/// How long one write to a stream's client may wait for room: a client
/// that stopped reading (its receive window shut) otherwise held its
/// connection's place and its token's stream for good, its stream no longer
/// polled to see the token lapse or the service stop.
pub(super) const WRITE_DEADLINE: Duration = Duration::from_secs(30);

/// Writes `response`: a body of known length at once, any other chunk by
/// chunk as it comes until it ends or the client goes away.
async fn answer(
    response: Response<Body>,
    reader: impl AsyncRead + Unpin,
    writer: impl AsyncWrite + Unpin,
) -> io::Result<()> {
    answer_within(response, reader, writer, WRITE_DEADLINE).await
}

/// [`answer`], each write given up after `deadline`.
async fn answer_within(
    response: Response<Body>,
    mut reader: impl AsyncRead + Unpin,
    mut writer: impl AsyncWrite + Unpin,
    deadline: Duration,
) -> io::Result<()> {
    let (parts, mut body) = response.into_parts();
    if let Some(length) = body.size_hint().exact() {
        let bytes = body.collect().await.map_err(io::Error::other)?.to_bytes();
        let mut message = head(parts.status, &parts.headers, Some(length));
        message.put(bytes);
        return within(deadline, writer.write_all_buf(&mut message)).await;
    }
    let mut message = head(parts.status, &parts.headers, None);
    within(deadline, writer.write_all_buf(&mut message)).await?;
    // The client sends nothing more; a read returns only when it hangs up,
    // or when it only shut its sending side (a half-close, as HTTP/1.1
    // allows), after which nothing is read.
    let mut hang_up = [0u8; 64];
    let mut half_closed = false;
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        within(deadline, write_chunk(&mut writer, data)).await?;
                    }
                }
                // Without the last chunk the client sees the stream cut off.
                Some(Err(error)) => return Err(io::Error::other(error)),
                None => return within(deadline, writer.write_all(b"0\r\n\r\n")).await,
            },
            read = reader.read(&mut hang_up), if !half_closed => if read? == 0 {
                if !still_listening(&mut writer, deadline).await {
                    return Ok(());
                }
                half_closed = true;
            },
        }
    }
}

/// How long after a first comment a client that hung up has answered it
/// with a reset, on any network a stream is watched across.
const HANG_UP_ANSWERED_WITHIN: Duration = Duration::from_millis(200);

/// Whether a client whose sending side ended still takes the stream: two
/// comments `HANG_UP_ANSWERED_WITHIN` apart, as a client that closed its
/// connection answers the first with a reset and the second then fails. A
/// client that half-closed after its request lost its stream at once.
async fn still_listening(writer: &mut (impl AsyncWrite + Unpin), deadline: Duration) -> bool {
    for pause in [Duration::ZERO, HANG_UP_ANSWERED_WITHIN] {
        tokio::time::sleep(pause).await;
        let comment = Bytes::from_static(b":\n\n");
        if within(deadline, write_chunk(writer, comment))
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}

/// `write`, failed with `TimedOut` once `deadline` has passed.
async fn within(deadline: Duration, write: impl Future<Output = io::Result<()>>) -> io::Result<()> {
    tokio::time::timeout(deadline, write)
        .await
        .unwrap_or_else(|_| Err(io::ErrorKind::TimedOut.into()))
}

/// The status line and headers, framed by `content_length` or else chunked;
/// the connection closes after this response.
fn head(status: StatusCode, headers: &HeaderMap, content_length: Option<u64>) -> BytesMut {
    let mut head = BytesMut::with_capacity(256);
    head.put_slice(b"HTTP/1.1 ");
    head.put_slice(status.as_str().as_bytes());
    head.put_u8(b' ');
    head.put_slice(status.canonical_reason().unwrap_or("").as_bytes());
    head.put_slice(b"\r\n");
    for (name, value) in headers {
        if name != header::CONTENT_LENGTH
            && name != header::TRANSFER_ENCODING
            && name != header::CONNECTION
        {
            put_header(&mut head, name.as_str(), value.as_bytes());
        }
    }
    match content_length {
        Some(length) => put_header(
            &mut head,
            header::CONTENT_LENGTH.as_str(),
            length.to_string().as_bytes(),
        ),
        None => put_header(&mut head, header::TRANSFER_ENCODING.as_str(), b"chunked"),
    }
    put_header(&mut head, header::CONNECTION.as_str(), b"close");
    // `Date` is among `headers`: the router dates every answer.
    head.put_slice(b"\r\n");
    head
}

fn put_header(head: &mut BytesMut, name: &str, value: &[u8]) {
    head.put_slice(name.as_bytes());
    head.put_slice(b": ");
    head.put_slice(value);
    head.put_slice(b"\r\n");
}

/// One chunk of the body, in one vectored write that does not copy `data`.
async fn write_chunk(writer: &mut (impl AsyncWrite + Unpin), data: Bytes) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let size = Bytes::from(format!("{:x}\r\n", data.len()));
    let mut chunk = size.chain(data).chain(&b"\r\n"[..]);
    writer.write_all_buf(&mut chunk).await
}

#[cfg(test)]
mod tests;
