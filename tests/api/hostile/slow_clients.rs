//! Slow clients (slowloris): headers and bodies trickled a byte at a time must
//! not starve the others, nor hold up a graceful stop.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use crate::helpers::{spawn_app_with, test_config};

/// Opens a connection and sends `head` one byte every `pause`, until `stop`.
async fn trickle(address: String, head: Vec<u8>, pause: Duration, stop: Instant) -> bool {
    let Ok(mut stream) = TcpStream::connect(&address).await else {
        return false;
    };
    for byte in head.iter().cycle() {
        if Instant::now() > stop {
            return true; // still open: the server did not cut it off
        }
        if stream.write_all(&[*byte]).await.is_err() {
            return false;
        }
        tokio::time::sleep(pause).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_starve_the_others() {
    let mut config = test_config();
    config.request_timeout_secs = 2;
    let app = spawn_app_with(config).await;
    let address = app.host().to_string();
    let user = Uuid::new_v4();
    let token = app.user_token(user).await;
    let stop = Instant::now() + Duration::from_secs(5);
    // Forty clients sending their headers a byte every 100 ms, forever.
    let head = format!(
        "POST /api/v1/users/{user}/balance/charges HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-pad: "
    )
    .into_bytes();
    let slow_heads: Vec<_> = (0..40)
        .map(|_| {
            tokio::spawn(trickle(
                address.clone(),
                head.clone(),
                Duration::from_millis(100),
                stop,
            ))
        })
        .collect();
    // Ten clients with whole headers and a body that trickles: the request
    // timeout answers them.
    let slow_bodies: Vec<_> = (0..10)
        .map(|_| {
            let (address, token) = (address.clone(), token.clone());
            tokio::spawn(async move {
                let mut stream = TcpStream::connect(&address).await.unwrap();
                // Signed in, so that the body is what the server waits for.
                let head = format!(
                    "POST /api/v1/users/{user}/balance/charges HTTP/1.1\r\nhost: x\r\n\
                     authorization: Bearer {token}\r\n\
                     content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"amount\": "
                );
                stream.write_all(head.as_bytes()).await.unwrap();
                let started = Instant::now();
                let mut answer = Vec::new();
                let mut buffer = [0u8; 1024];
                loop {
                    tokio::select! {
                        read = stream.read(&mut buffer) => match read {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                answer.extend_from_slice(&buffer[..n]);
                                if answer.windows(4).any(|w| w == b"\r\n\r\n") { break; }
                            }
                        },
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {
                            if started.elapsed() > Duration::from_secs(8) { break; }
                            let _ = stream.write_all(b"1").await;
                        }
                    }
                }
                (
                    started.elapsed(),
                    String::from_utf8_lossy(&answer).to_string(),
                )
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Meanwhile a normal client is served promptly.
    let mut slowest = Duration::ZERO;
    let mut served = 0;
    while Instant::now() < stop - Duration::from_millis(500) {
        // A fresh user each time, signed in before the clock starts.
        let fresh = Uuid::new_v4();
        app.user_token(fresh).await;
        let started = Instant::now();
        let response = app.charge(fresh, 10).await;
        assert_eq!(response.status, 200);
        let response = app
            .get(&format!("/users/{user}/balance"), Some(&token))
            .await;
        assert_eq!(response.status(), 200);
        slowest = slowest.max(started.elapsed());
        served += 2;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served >= 20, "only {served} requests served");
    assert!(
        slowest < Duration::from_secs(1),
        "a request took {slowest:?}"
    );
    let mut still_open = 0;
    for task in slow_heads {
        if task.await.unwrap() {
            still_open += 1;
        }
    }
    // The head must arrive within the request timeout (2 s) too.
    assert_eq!(
        still_open, 0,
        "header tricklers outlived the request timeout"
    );
    let mut answers = Vec::new();
    for task in slow_bodies {
        answers.push(task.await.unwrap());
    }
    println!(
        "FIGURES hostile_slowloris: {served} normal requests, slowest {slowest:?}; \
         {still_open} of 40 header tricklers still connected after 5 s"
    );
    // A graceful stop is not held up by a client that never finishes its headers.
    let lingering = tokio::spawn(trickle(
        address.clone(),
        head.clone(),
        Duration::from_millis(100),
        Instant::now() + Duration::from_secs(20),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = Instant::now();
    let stopped = tokio::time::timeout(Duration::from_secs(10), app.shutdown()).await;
    let stop_took = stopping.elapsed();
    lingering.abort();
    println!(
        "FIGURES hostile_slowloris_shutdown: stopped {} after {stop_took:?}",
        stopped.is_ok()
    );
    // The request timeout (2 s) answers a body that never finishes.
    for (took, answer) in &answers {
        assert!(
            *took < Duration::from_secs(4),
            "a trickled body held its request for {took:?}: {answer:?}"
        );
        let status_line = answer.lines().next().unwrap_or_default();
        // The client's own slowness: not a 503 that blames the database.
        assert!(status_line.contains(" 408 "), "{answer:?}");
        // Answered with a correlation id, as every answer is.
        assert!(
            answer.to_ascii_lowercase().contains("x-correlation-id: "),
            "{answer:?}"
        );
    }
    // Its answer is a problem document like every other error.
    let bare: Vec<&String> = answers
        .iter()
        .map(|(_, answer)| answer)
        .filter(|answer| {
            !answer
                .to_ascii_lowercase()
                .contains("content-type: application/problem+json")
        })
        .collect();
    assert!(
        bare.is_empty(),
        "{} of {} timed-out requests were answered without a problem document: {:?}",
        bare.len(),
        answers.len(),
        bare.first()
    );
    assert!(
        stopped.is_ok(),
        "a graceful stop waited {stop_took:?} for a client that never finishes its headers \
         (no header read timeout)"
    );
}

/// Whether the server closes `stream` within `limit` (reads until EOF).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed_after_the_request_timeout() {
    let mut config = test_config();
    config.request_timeout_secs = 1;
    let app = spawn_app_with(config).await;
    let address = app.host().to_string();

    // Silent from the start, silent after an answer, and half a head.
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let mut kept_alive = TcpStream::connect(&address).await.unwrap();
    kept_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut half = TcpStream::connect(&address).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();

    let started = Instant::now();
    for stream in [&mut silent, &mut kept_alive, &mut half] {
        assert!(closed_within(stream, Duration::from_secs(5)).await);
    }
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Meanwhile, and after, others are served.
    assert_eq!(app.get_root("/healthz").await.status(), 200);
}

#[tokio::test]
async fn beyond_the_most_connections_a_client_waits_until_one_closes() {
    let mut config = test_config();
    config.max_connections = 3;
    let app = spawn_app_with(config).await;
    let address = app.host().to_string();

    // Three connections take every place (each an open file for the server).
    let mut taken = Vec::new();
    for _ in 0..3 {
        taken.push(TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Timed from here, before the task runs: a task that started a moment
    // late measured 699.7 ms for a wait of at least 700.
    let started = Instant::now();
    let waiting = tokio::spawn({
        let url = format!("{}/healthz", app.address);
        async move {
            let answer = reqwest::get(url).await.unwrap();
            (answer.status(), started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "answered beyond the most connections"
    );

    // One closes: the waiting client is accepted and answered.
    drop(taken.pop());
    let (status, waited) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("answered once a place was free")
        .unwrap();
    assert_eq!(status, 200);
    assert!(waited >= Duration::from_millis(700), "{waited:?}");
}

#[tokio::test]
async fn an_http2_connection_that_asks_nothing_more_is_closed_after_the_request_timeout() {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let mut config = test_config();
    config.request_timeout_secs = 1;
    let app = spawn_app_with(config).await;
    let address = app.host().to_string();

    // HTTP/2 with prior knowledge; the client answers the server's pings.
    let stream = TcpStream::connect(&address).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(format!("http://{address}/healthz"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let answer = sender.send_request(request).await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.into_body().collect().await.unwrap();

    // Then nothing: the server ends the connection (it never did before).
    let started = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), connection)
        .await
        .expect("the idle connection is closed")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(800));
}

/// An HTTP/2 client that never opens its streams' flow-control windows
/// gets its answers' heads, never their bodies, which the server held for
/// good (6 MB a connection of 16 listings). A body not asked for as long
/// as a stalled event stream's gets the connection a GOAWAY and then
/// dropped; it stayed open (and its answers in memory) before.
#[tokio::test]
async fn an_http2_client_that_never_opens_its_windows_is_cut_off() {
    use http_body_util::Empty;
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let app = spawn_app_with(test_config()).await;
    app.create_concert(1, 10, 1_000).await;
    let address = app.host().to_string();
    let stream = TcpStream::connect(&address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(0)
        .handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    let mut answers = Vec::new();
    for _ in 0..4 {
        let request = hyper::Request::get(format!("http://{address}/api/v1/concerts"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let answer = sender.send_request(request).await.unwrap();
        assert_eq!(answer.status(), 200);
        // Held, unread: the window stays shut.
        answers.push(answer);
    }

    let started = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(100), connection).await;
    assert!(ended.is_ok(), "the connection was still open after 100 s");
    // Not before a stalled stream would be: 40 s unasked.
    assert!(
        started.elapsed() >= Duration::from_secs(35),
        "{:?}",
        started.elapsed()
    );
    drop(answers);
}
