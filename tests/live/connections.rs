//! Event streams as raw HTTP/1.1 on the wire: on a connection of their own
//! (answered without hyper) and after another request on a kept-alive one
//! (answered by hyper), framed the same for a client.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::harness::*;

/// A client on one TCP connection, keeping what it read.
struct Wire {
    stream: TcpStream,
    seen: String,
}

impl Wire {
    async fn open(instance: &Instance) -> Self {
        let address = instance.base.trim_start_matches("http://");
        Wire {
            stream: TcpStream::connect(address).await.unwrap(),
            seen: String::new(),
        }
    }

    async fn get(&mut self, path: &str, token: &str) {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        );
        self.stream.write_all(request.as_bytes()).await.unwrap();
    }

    /// Reads until `what` has been seen; false when the connection closed first.
    async fn read_until(&mut self, what: &str) -> bool {
        let mut buffer = [0u8; 4096];
        while !self.seen.contains(what) {
            let read = tokio::time::timeout(PUSH_WAIT, self.stream.read(&mut buffer))
                .await
                .expect("bytes in time")
                .unwrap();
            if read == 0 {
                return false;
            }
            self.seen
                .push_str(std::str::from_utf8(&buffer[..read]).unwrap());
        }
        true
    }

    /// Reads until the server closes the connection.
    async fn read_to_end(&mut self) {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), self.stream.read_to_end(&mut rest))
            .await
            .expect("the server closes the connection")
            .unwrap();
        self.seen.push_str(std::str::from_utf8(&rest).unwrap());
    }

    /// The head of the response that starts at `from`, lowercased.
    fn head_from(&self, from: usize) -> String {
        let response = &self.seen[from..];
        response[..response.find("\r\n\r\n").expect("a whole head")].to_lowercase()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_on_a_connection_of_its_own_is_chunked_and_ends_with_the_service() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(3).await;
    let token = service.active_token(&concert_id).await;
    let mut wire = Wire::open(&service).await;
    wire.get(
        &format!("/api/v1{}", seats_path(&concert_id, &date_id)),
        &token,
    )
    .await;

    assert!(wire.read_until("event: snapshot").await);
    let head = wire.head_from(0);
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    for line in [
        "content-type: text/event-stream",
        "transfer-encoding: chunked",
        "connection: close",
        "x-request-id: ",
        "date: ",
    ] {
        assert!(head.contains(&format!("\r\n{line}")), "{line} in {head}");
    }
    service.hold(&token, &concert_id, &date_id, 2).await;
    assert!(wire.read_until("\"status\":\"held\"").await);

    service.stop().await;
    wire.read_to_end().await;
    assert!(
        wire.seen.ends_with("\r\n0\r\n\r\n"),
        "the last chunk ends the stream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_stream_on_a_connection_of_its_own_is_a_problem_document() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(1).await;
    let mut wire = Wire::open(&service).await;
    wire.get(
        &format!("/api/v1{}", seats_path(&concert_id, &date_id)),
        "forged",
    )
    .await;

    wire.read_to_end().await;
    let head = wire.head_from(0);
    assert!(head.starts_with("http/1.1 401 unauthorized\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-type: application/problem+json"));
    let body = &wire.seen[wire.seen.find("\r\n\r\n").unwrap() + 4..];
    assert!(
        head.contains(&format!("\r\ncontent-length: {}", body.len())),
        "{head}"
    );
    assert!(body.contains("\"code\":\"token_invalid\""), "{body}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_asked_for_after_another_request_on_the_connection_is_served_too() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(2).await;
    let token = service.active_token(&concert_id).await;
    let mut wire = Wire::open(&service).await;
    wire.get("/healthz", "none").await;
    assert!(wire.read_until("{\"status\":\"ok\"}").await);
    let second = wire.seen.len();
    wire.get(
        &format!("/api/v1{}", seats_path(&concert_id, &date_id)),
        &token,
    )
    .await;

    assert!(wire.read_until("event: snapshot").await);
    let head = wire.head_from(second);
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    assert!(head.contains("\r\ncontent-type: text/event-stream"));
    assert!(head.contains("\r\ntransfer-encoding: chunked"));
    service.hold(&token, &concert_id, &date_id, 1).await;
    assert!(wire.read_until("\"status\":\"held\"").await);
    drop(wire);
    service.stop().await;
}
