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
        // The audit's page of events is a plain JSON answer.
        "GET /api/v1/audit/events?limit=1 HTTP/1.1\r\n\r\n".to_string(),
        "GET /api/v1/concerts/c/dates/d/seats/x/events HTTP/1.1\r\n\r\n".to_string(),
        "GET /api/v1/concerts/c/events HTTP/1.1\r\n\r\n".to_string(),
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
async fn a_client_that_only_stops_sending_still_gets_the_stream() {
    let (sender, frames) = futures::channel::mpsc::unbounded::<Result<Bytes, Infallible>>();
    let response = Response::new(Body::from_stream(frames));
    let (client, server) = duplex(16 * 1024);
    let (server_reader, server_writer) = tokio::io::split(server);
    let answering = tokio::spawn(answer(response, server_reader, server_writer));
    let (mut client_reader, mut client_writer) = tokio::io::split(client);

    // A half-close after the request (`shutdown(SHUT_WR)`), then an event.
    client_writer.shutdown().await.unwrap();
    tokio::time::sleep(HANG_UP_ANSWERED_WITHIN * 2).await;
    sender
        .unbounded_send(Ok(Bytes::from_static(b"data: 1\n\n")))
        .unwrap();
    drop(sender);

    let mut seen = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        client_reader.read_to_string(&mut seen),
    )
    .await
    .expect("the stream ends with its body")
    .unwrap();
    assert!(seen.contains("9\r\ndata: 1\n\n\r\n"), "{seen}");
    assert!(seen.ends_with("0\r\n\r\n"), "ended whole: {seen}");
    answering.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_stream_whose_client_stops_reading_ends_at_the_write_deadline() {
    let frames =
        futures::stream::repeat_with(|| Ok::<_, Infallible>(Bytes::from(vec![b'x'; 4096])));
    let response = Response::new(Body::from_stream(frames));
    // A client that keeps the connection open and reads nothing.
    let (_client, server) = duplex(16 * 1024);
    let (server_reader, server_writer) = tokio::io::split(server);
    let deadline = Duration::from_millis(200);

    let answered = tokio::time::timeout(
        Duration::from_secs(5),
        answer_within(response, server_reader, server_writer, deadline),
    )
    .await
    .expect("the stream ended once a write waited past its deadline");

    assert_eq!(answered.unwrap_err().kind(), io::ErrorKind::TimedOut);
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
