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

fn is_event_stream(path: &str) -> bool {
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    path.starts_with("/api/v1/") && path.ends_with("/events")
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

/// Writes `response`: a body of known length at once, any other chunk by
/// chunk as it comes until it ends or the client goes away.
async fn answer(
    response: Response<Body>,
    mut reader: impl AsyncRead + Unpin,
    mut writer: impl AsyncWrite + Unpin,
) -> io::Result<()> {
    let (parts, mut body) = response.into_parts();
    if let Some(length) = body.size_hint().exact() {
        let bytes = body.collect().await.map_err(io::Error::other)?.to_bytes();
        let mut message = head(parts.status, &parts.headers, Some(length));
        message.put(bytes);
        return writer.write_all_buf(&mut message).await;
    }
    writer
        .write_all_buf(&mut head(parts.status, &parts.headers, None))
        .await?;
    // The client sends nothing more; a read returns only when it hangs up.
    let mut hang_up = [0u8; 64];
    loop {
        tokio::select! {
            frame = body.frame() => match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        write_chunk(&mut writer, data).await?;
                    }
                }
                // Without the last chunk the client sees the stream cut off.
                Some(Err(error)) => return Err(io::Error::other(error)),
                None => return writer.write_all(b"0\r\n\r\n").await,
            },
            read = reader.read(&mut hang_up) => if read? == 0 {
                return Ok(());
            },
        }
    }
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
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use futures::StreamExt;
    use tokio::io::{duplex, AsyncReadExt};

    use super::*;

    const SEATS: &str = "/api/v1/concerts/c/dates/d/seats/events";

    fn opening_of(head: &str) -> Option<Opening> {
        parse(head.as_bytes())
    }

    #[test]
    fn a_get_of_an_event_stream_is_taken_with_its_headers_and_length() {
        let head = format!(
            "GET {SEATS}?changes=compact HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nLast-Event-ID: 7\r\n\r\n"
        );
        let opening = opening_of(&format!("{head}ignored")).expect("taken");
        assert_eq!(opening.head_length, head.len());
        assert_eq!(opening.request.method(), Method::GET);
        assert_eq!(
            opening.request.uri(),
            &format!("{SEATS}?changes=compact")[..]
        );
        assert_eq!(opening.request.headers()["authorization"], "Bearer t");
        assert_eq!(opening.request.headers()["last-event-id"], "7");
        let standing = "GET /api/v1/queue/tokens/current/events HTTP/1.1\r\n\r\n";
        assert!(opening_of(standing).is_some());
    }

    #[test]
    fn anything_else_is_left_to_hyper() {
        for head in [
            "GET /api/v1/concerts HTTP/1.1\r\n\r\n".to_string(),
            "GET /events HTTP/1.1\r\n\r\n".to_string(),
            format!("POST {SEATS} HTTP/1.1\r\n\r\n"),
            format!("GET {SEATS} HTTP/1.0\r\n\r\n"),
            format!("GET {SEATS} HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"),
            format!("GET {SEATS} HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            format!("GET {SEATS} HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"),
            // Not all there yet.
            format!("GET {SEATS} HTTP/1.1\r\nAuthorization: Bea"),
            format!(
                "GET {SEATS} HTTP/1.1\r\n{}\r\n",
                "X-A: 1\r\n".repeat(HEADERS_MOST + 1)
            ),
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_string(),
        ] {
            assert!(opening_of(&head).is_none(), "{head:?}");
        }
    }

    /// What `answer` writes for `response`, the client hanging up when
    /// nothing came for a while.
    async fn written(response: Response<Body>) -> String {
        let (client, server) = duplex(64 * 1024);
        let (server_reader, server_writer) = tokio::io::split(server);
        let answering = tokio::spawn(answer(response, server_reader, server_writer));
        let (mut client_reader, client_writer) = tokio::io::split(client);
        let mut seen = Vec::new();
        let mut buffer = [0u8; 1024];
        while let Ok(Ok(read)) =
            tokio::time::timeout(Duration::from_millis(300), client_reader.read(&mut buffer)).await
        {
            if read == 0 {
                break;
            }
            seen.extend_from_slice(&buffer[..read]);
        }
        drop((client_reader, client_writer));
        tokio::time::timeout(Duration::from_secs(5), answering)
            .await
            .expect("the answer ends once the client hangs up")
            .unwrap()
            .unwrap();
        String::from_utf8(seen).unwrap()
    }

    #[tokio::test]
    async fn a_body_of_known_length_is_sent_whole_and_the_connection_closes() {
        let response = Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("content-type", "application/problem+json")
            .body(Body::from("{\"status\":401}"))
            .unwrap();
        let text = written(response).await;
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
        assert!(text.contains("\r\ncontent-type: application/problem+json\r\n"));
        assert!(text.contains("\r\ncontent-length: 14\r\n"));
        assert!(text.contains("\r\nconnection: close\r\n"));
        assert!(text.ends_with("\r\n\r\n{\"status\":401}"), "{text}");
    }

    #[tokio::test]
    async fn a_stream_is_sent_chunk_by_chunk_and_ended() {
        let frames = futures::stream::iter(["data: 1\n\n", "", "data: 22\n\n"])
            .map(|frame| Ok::<_, Infallible>(Bytes::from(frame)));
        let response = Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(frames))
            .unwrap();
        let text = written(response).await;
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("\r\ntransfer-encoding: chunked"), "{head}");
        assert!(!head.contains("content-length"), "{head}");
        assert_eq!(body, "9\r\ndata: 1\n\n\r\na\r\ndata: 22\n\n\r\n0\r\n\r\n");
    }

    #[tokio::test]
    async fn a_stream_stops_when_its_client_hangs_up() {
        let never_ending = futures::stream::pending::<Result<Bytes, Infallible>>();
        let first = futures::stream::once(async { Ok(Bytes::from_static(b"data: 1\n\n")) });
        let response = Response::new(Body::from_stream(first.chain(never_ending)));
        let text = written(response).await;
        assert!(text.ends_with("9\r\ndata: 1\n\n\r\n"), "{text}");
    }

    #[tokio::test]
    async fn a_crowd_of_openings_goes_through_the_router_a_few_at_a_time() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;

        const CROWD: usize = 3 * OPENINGS_AT_ONCE;
        let (inside, most_inside) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let counting = (inside.clone(), most_inside.clone());
        // Each request stays in the router a while, as one waiting for its
        // token's check does.
        let router = Router::new().route(
            SEATS,
            axum::routing::get(move || {
                let (inside, most_inside) = counting.clone();
                async move {
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most_inside.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    "answered"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let openings = Arc::new(Semaphore::new(OPENINGS_AT_ONCE));
        let server = tokio::spawn(async move {
            let mut served = tokio::task::JoinSet::new();
            for _ in 0..CROWD {
                let (stream, _) = listener.accept().await.unwrap();
                let (router, openings) = (router.clone(), openings.clone());
                served.spawn(async move {
                    let opening = opening(&stream).await.expect("an event-stream request");
                    serve(stream, opening, router, &openings, Duration::from_secs(30)).await;
                });
            }
            served.join_all().await;
        });
        let clients = (0..CROWD).map(|_| async move {
            let mut client = TcpStream::connect(address).await.unwrap();
            client
                .write_all(format!("GET {SEATS} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut answer = String::new();
            client.read_to_string(&mut answer).await.unwrap();
            answer
        });
        let answers = futures::future::join_all(clients).await;
        server.await.unwrap();
        assert!(
            answers.iter().all(|answer| answer.ends_with("answered")),
            "{answers:?}"
        );
        let most = most_inside.load(Ordering::SeqCst);
        assert!(
            (2..=OPENINGS_AT_ONCE).contains(&most),
            "{most} requests were in the router at once"
        );
    }

    /// Accepts one connection on `listener` and answers its event-stream request.
    async fn serve_one(
        listener: &tokio::net::TcpListener,
        router: Router,
        openings: &Semaphore,
        wait_most: Duration,
    ) {
        let (stream, _) = listener.accept().await.unwrap();
        let opening = opening(&stream).await.expect("an event-stream request");
        serve(stream, opening, router, openings, wait_most).await;
    }

    #[tokio::test]
    async fn a_long_wait_for_a_turn_goes_on_and_a_client_that_left_waits_no_more() {
        let router = Router::new().route(SEATS, axum::routing::get(|| async { "answered" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        // No turn ever comes free.
        let openings = std::sync::Arc::new(Semaphore::new(0));
        let request = format!("GET {SEATS} HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut client = TcpStream::connect(address).await.unwrap();
        client.write_all(request.as_bytes()).await.unwrap();
        let waited = tokio::time::timeout(
            Duration::from_secs(5),
            serve_one(
                &listener,
                router.clone(),
                &openings,
                Duration::from_millis(100),
            ),
        );
        waited.await.expect("served once the wait was over");
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.ends_with("answered"), "{answer}");

        let mut client = TcpStream::connect(address).await.unwrap();
        client.write_all(request.as_bytes()).await.unwrap();
        let serving = tokio::spawn(async move {
            serve_one(&listener, router, &openings, Duration::from_secs(3600)).await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(client);
        tokio::time::timeout(Duration::from_secs(5), serving)
            .await
            .expect("the wait ended when the client left")
            .unwrap();
    }
}
