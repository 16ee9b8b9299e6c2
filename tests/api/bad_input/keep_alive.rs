//! A request refused before its body is read (a credential or a media type
//! refused first) leaves a connection that closes once the answer is
//! written; the answer says so with `Connection: close`, so that a client
//! does not send its next request down it. Before, it closed unannounced.
//! A request whose body was read keeps its connection for the next one, and
//! a client that half-closes after its request still gets the answer.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::charged_user;
use crate::helpers::spawn_app;

#[tokio::test]
async fn a_request_refused_before_its_body_is_read_says_its_connection_closes() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let charge = |credential: &str, content_type: &str| {
        let body = r#"{"amount": 1}"#;
        format!(
            "POST /api/v1/users/{user_id}/balance/charges HTTP/1.1\r\nhost: concert\r\n\
             authorization: Bearer {credential}\r\ncontent-type: {content_type}\r\n\
             content-length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let health = "GET /healthz HTTP/1.1\r\nhost: concert\r\n\r\n";

    // Read: the connection carries the next request.
    let mut stream = TcpStream::connect(app.host()).await.unwrap();
    let first = exchange(&mut stream, &charge(&token, "application/json")).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(!closes(&first), "{first}");
    let second = exchange(&mut stream, health).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");

    for (credential, content_type, status) in [
        ("forged", "application/json", "401"),
        (token.as_str(), "text/plain", "400"),
    ] {
        let mut stream = TcpStream::connect(app.host()).await.unwrap();
        let answer = exchange(&mut stream, &charge(credential, content_type)).await;
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(closes(&answer), "{answer}");
        let mut rest = Vec::new();
        let ended = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest));
        assert!(ended.await.is_ok(), "the connection stayed open");
    }
    assert_eq!(app.balance(user_id).await, 1_001);
}

/// Sends `request` and reads its answer's head and body (by its length).
async fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("a content-length");
            if answer.len() >= end + 4 + length {
                return text;
            }
        }
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk))
            .await
            .expect("an answer within 5 s")
            .unwrap();
        assert!(read > 0, "the connection closed mid-answer: {text}");
        answer.extend_from_slice(&chunk[..read]);
    }
}

/// Whether the answer's head says the connection closes.
fn closes(answer: &str) -> bool {
    let head = answer.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("connection") && value.trim().eq_ignore_ascii_case("close")
        })
    })
}

/// A client that shuts its sending side once its request is sent (a
/// half-close, which HTTP/1.1 allows) still gets the answer.
#[tokio::test]
async fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let app = spawn_app().await;
    let mut stream = TcpStream::connect(app.host()).await.unwrap();
    stream
        .write_all(b"GET /api/v1/concerts HTTP/1.1\r\nhost: concert\r\n\r\n")
        .await
        .unwrap();
    stream.shutdown().await.unwrap();

    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer));
    read.await.expect("the connection ends").unwrap();

    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

/// The audit's page of the log ends in `/events` like the live streams, but
/// is a plain answer: first on its connection, it keeps the connection for
/// the next page. It was taken for a stream, answered `Connection: close`,
/// and a page asked for behind it was never answered.
#[tokio::test]
async fn the_audits_page_of_events_keeps_its_connection_for_the_next_page() {
    let app = spawn_app().await;
    charged_user(&app, 1_000).await;
    charged_user(&app, 2_000).await;
    let page = |after: i64| {
        format!(
            "GET /api/v1/audit/events?after={after}&limit=1 HTTP/1.1\r\nhost: concert\r\n\
             authorization: Bearer {}\r\n\r\n",
            crate::helpers::ADMIN_TOKEN
        )
    };
    let next_of = |answer: &str| {
        let body = answer.split_once("\r\n\r\n").expect("a body").1;
        let page: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(page["events"].as_array().map(Vec::len), Some(1), "{body}");
        page["next"].as_i64().expect("a next position")
    };

    let mut stream = TcpStream::connect(app.host()).await.unwrap();
    let first = exchange(&mut stream, &page(0)).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    assert!(!closes(&first), "{first}");
    let next = next_of(&first);
    let second = exchange(&mut stream, &page(next)).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(next_of(&second) > next, "{second}");
}
