//! Requests hyper cannot parse (a broken head, a head over 32 KiB) are
//! answered before the router sees them; the answer is still a problem
//! document, as every error is, and the connection is closed.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app_with, test_config};

/// Sends `raw` on a new connection and reads until the server closes it (a
/// reset after the answer, for the part of a request never read, ends it too).
async fn exchange(address: &str, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(raw).await.unwrap();
    read_until_closed(&mut stream).await
}

/// Sends `GET /healthz` on a new connection, reads its answer, then sends
/// `raw` on the same connection: what follows the first answer, read until
/// the server closes the connection.
async fn exchange_after_an_answer(address: &str, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let first = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(first).await.unwrap();
    let mut answered = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answered).contains(r#"{"status":"ok"}"#) {
        let read = stream.read(&mut chunk).await.unwrap();
        assert!(read > 0, "closed before the first answer");
        answered.extend_from_slice(&chunk[..read]);
    }
    stream.write_all(raw).await.unwrap();
    read_until_closed(&mut stream).await
}

async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(read @ 1..) = stream.read(&mut chunk).await {
            answer.extend_from_slice(&chunk[..read]);
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the connection was not closed after the answer"
    );
    String::from_utf8(answer).unwrap()
}

/// Splits the last answer of `answers`, an error, into its head and its problem document.
fn last_problem(answers: &str) -> (String, serde_json::Value) {
    let start = answers
        .rfind("HTTP/1.1 4")
        .or_else(|| answers.rfind("HTTP/1.0 4"))
        .expect("an error answer");
    let (head, body) = answers[start..].split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(
        head.contains(&format!("content-length: {}", body.len())),
        "{head}"
    );
    (head, serde_json::from_str(body).unwrap())
}

#[tokio::test]
async fn a_broken_head_gets_a_problem_document() {
    let app = spawn_app_with(test_config()).await;
    for broken in [
        &b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n"[..],
        b"G\x01T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
    ] {
        let answer = exchange(app.host(), broken).await;
        let (head, problem) = last_problem(&answer);
        assert!(head.starts_with("http/1.1 400 "), "{head}");
        assert_eq!(problem["status"], 400);
        assert_eq!(problem["code"], "bad_request");
    }
}

#[tokio::test]
async fn a_request_head_beyond_32_kib_is_refused_at_once_with_a_problem_document() {
    let app = spawn_app_with(test_config()).await;
    // A head that grows past the limit is cut off when it gets there, not
    // kept (hyper's own default was ~400 KiB a connection for the timeout).
    let padding = "a".repeat(40 * 1024);
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}\r\n\r\n");
    let answer = exchange(app.host(), big.as_bytes()).await;
    let (head, problem) = last_problem(&answer);
    assert!(head.starts_with("http/1.1 431 "), "{head}");
    assert_eq!(problem["status"], 431);
    assert_eq!(problem["code"], "bad_request");
    // A head of ordinary size (a JWT, a few headers) is served.
    let ordinary = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-padding", "a".repeat(8 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(ordinary.status(), 200);
}

#[tokio::test]
async fn a_request_head_beyond_32_kib_is_refused_after_an_answer_on_the_same_connection_too() {
    let app = spawn_app_with(test_config()).await;
    // hyper's buffer, grown by then, took heads of up to 64 KiB whole.
    let padding = "a".repeat(40 * 1024);
    let big = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: {padding}\r\n\r\n");
    let answer = exchange_after_an_answer(app.host(), big.as_bytes()).await;
    let (head, problem) = last_problem(&answer);
    assert!(head.starts_with("http/1.1 431 "), "{head}");
    assert_eq!(problem["code"], "bad_request");
    assert_eq!(problem["type"], "/problems/request-header-fields-too-large");
}

#[tokio::test]
async fn a_broken_request_after_an_answer_to_http_1_0_gets_a_problem_document_too() {
    let app = spawn_app_with(test_config()).await;
    let kept_alive = b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /healthz HTTP/1.0\r\nno colon\r\n\r\n";
    let answers = exchange(app.host(), kept_alive).await;
    assert!(answers.starts_with("HTTP/1.0 200 OK\r\n"), "{answers}");
    let (head, problem) = last_problem(&answers);
    assert!(head.starts_with("http/1.0 400 "), "{head}");
    assert_eq!(problem["code"], "bad_request");
}

#[tokio::test]
async fn an_answer_before_a_broken_request_on_the_same_connection_is_kept_whole() {
    let app = spawn_app_with(test_config()).await;
    let pipelined = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n";
    let answers = exchange(app.host(), pipelined).await;
    assert!(answers.starts_with("HTTP/1.1 200 OK\r\n"), "{answers}");
    let first_body = r#"{"status":"ok"}"#;
    let second = answers.find(&format!("{first_body}HTTP/1.1 400 "));
    assert!(second.is_some(), "{answers}");
    let (_, problem) = last_problem(&answers);
    assert_eq!(problem["code"], "bad_request");
}

#[tokio::test]
async fn the_http_2_preface_after_an_http_1_request_gets_a_problem_document() {
    let app = spawn_app_with(test_config()).await;
    // Read on its own, it once passed for the start of an HTTP/2 connection.
    let answer = exchange_after_an_answer(app.host(), b"PRI * HTTP/2.0\r\nHost: x\r\n\r\n").await;
    let (head, problem) = last_problem(&answer);
    assert!(head.starts_with("http/1.1 400 "), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert_eq!(problem["code"], "bad_request");
}

#[tokio::test]
async fn more_than_a_hundred_header_lines_are_named_as_the_cause() {
    let app = spawn_app_with(test_config()).await;
    let headers: String = (0..101).map(|n| format!("X-{n}: v\r\n")).collect();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    let answer = exchange(app.host(), request.as_bytes()).await;
    let (head, problem) = last_problem(&answer);
    assert!(head.starts_with("http/1.1 431 "), "{head}");
    assert_eq!(problem["type"], "/problems/request-header-fields-too-large");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("more than 100 header lines"), "{detail}");
}

#[tokio::test]
async fn an_answer_before_routing_has_a_request_id_of_its_own_and_is_counted() {
    let app = spawn_app_with(test_config()).await;
    let broken = b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n";
    let mut request_ids = std::collections::HashSet::new();
    for _ in 0..2 {
        let (head, _) = last_problem(&exchange(app.host(), broken).await);
        let request_id = head
            .lines()
            .find_map(|line| line.strip_prefix("x-request-id: "))
            .unwrap_or_else(|| panic!("no x-request-id: {head}"));
        request_ids.insert(uuid::Uuid::parse_str(request_id).expect("a UUID"));
    }
    assert_eq!(request_ids.len(), 2, "each answer has an id of its own");

    let metrics = app.get_root("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("concert_http_requests_total{")
                && line.contains(r#"route="unparsed""#)
                && line.contains(r#"status="400""#)),
        "{metrics}"
    );
}
