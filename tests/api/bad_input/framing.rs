//! How a request is framed and labelled, beyond its JSON: media type
//! spellings, content codings, repeated credentials and hosts, announced
//! sizes, transfer codings, request ids. Each odd form is answered as a problem document and
//! changes nothing; the forms RFC 9110 allows are accepted.

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{charged_user, post_raw};
use crate::helpers::{assert_problem, assert_problem_for, spawn_app, TestApp};

/// Sends `request` as written on a fresh connection; returns the whole answer.
async fn send_raw(app: &TestApp, request: &str) -> String {
    let host = app.host();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    String::from_utf8_lossy(&answer).to_string()
}

#[tokio::test]
async fn media_types_as_rfc_9110_spells_them_are_json_and_content_codings_are_refused() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for content_type in [
        "application/json ; charset=utf-8",
        "APPLICATION/JSON",
        "application/merge-patch+json",
    ] {
        let response = post_raw(&app, &path, Some(&token), content_type, r#"{"amount": 1}"#).await;
        assert_eq!(response.status(), StatusCode::OK, "{content_type}");
    }
    assert_eq!(app.balance(user_id).await, 1_003);

    for encoding in ["gzip", "br", "identity, gzip"] {
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .header("content-encoding", encoding)
            .body(r#"{"amount": 1}"#)
            .send()
            .await
            .unwrap();
        assert_problem_for(encoding, response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    assert_eq!(app.balance(user_id).await, 1_003);
}

#[tokio::test]
async fn two_credentials_or_two_hosts_are_refused() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let host = app.host();
    let balance = format!("GET /api/v1/users/{user_id}/balance HTTP/1.1\r\nconnection: close\r\n");

    let answer = send_raw(
        &app,
        &format!("{balance}host: {host}\r\nauthorization: Bearer {token}\r\nauthorization: Bearer {token}\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    // None, two, or one that is no host (RFC 9112 §3.2; these were served).
    for hosts in [
        "",
        "host: a\r\nhost: b\r\n",
        "host: a b/c\r\n",
        "host: @evil\r\n",
        "host: x:abc\r\n",
    ] {
        let answer = send_raw(
            &app,
            &format!("{balance}{hosts}authorization: Bearer {token}\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{hosts:?}: {answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
    }
    // HTTP/1.0 may leave the host out.
    let answer = send_raw(&app, "GET /healthz HTTP/1.0\r\n\r\n").await;
    assert!(answer.contains(" 200 OK"), "{answer}");
    // A target's authority is held to the same (it was served).
    let answer = send_raw(
        &app,
        &format!(
            "GET http://user@{host}/healthz HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
}

/// HTTP/2's `:authority` takes the place of `Host` (RFC 9113 §8.3.1), user
/// information forbidden: it was served, where HTTP/1.1's `Host` was not.
#[tokio::test]
async fn an_http2_authority_with_user_information_is_refused() {
    use http_body_util::Empty;
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let app = spawn_app().await;
    let host = app.host().to_string();
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    for (authority, status) in [(format!("user@{host}"), 400), (host.clone(), 200)] {
        let request = hyper::Request::get(format!("http://{authority}/healthz"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let answer = sender.send_request(request).await.unwrap();
        assert_eq!(answer.status(), status, "{authority}");
    }
}

#[tokio::test]
async fn a_body_announced_too_large_is_refused_before_it_is_sent() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let host = app.host();
    // No body follows: the answer must not wait for one (nor invite it).
    let answer = send_raw(
        &app,
        &format!(
            "POST /api/v1/users/{user_id}/balance/charges HTTP/1.1\r\nhost: {host}\r\n\
             authorization: Bearer {token}\r\ncontent-type: application/json\r\n\
             content-length: 100000\r\nexpect: 100-continue\r\nconnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn an_unusable_request_id_is_replaced_and_made_up_methods_share_one_metric_label() {
    let app = spawn_app().await;
    for sent in ["x".repeat(5_000), "two words".to_string()] {
        let response = app
            .client
            .get(format!("{}/healthz", app.address))
            .header("x-request-id", &sent)
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"].to_str().unwrap();
        assert_ne!(echoed, sent);
        assert!(echoed.len() <= 200);
    }
    let kept = app
        .client
        .get(format!("{}/healthz", app.address))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-42");

    for n in 0..5 {
        let method = reqwest::Method::from_bytes(format!("MADEUP{n}").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, format!("{}/healthz", app.address))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::METHOD_NOT_ALLOWED, "bad_request").await;
    }
    let metrics = app.get_root("/metrics").await.text().await.unwrap();
    assert!(!metrics.contains("MADEUP"));
    assert!(metrics.contains(r#"method="other""#));
}

#[tokio::test]
async fn unknown_and_undecodable_paths_under_the_docs_are_problem_documents() {
    let app = spawn_app().await;
    for path in ["/docs/nonexistent", "/docs//swagger-ui.css"] {
        let response = app.get_root(path).await;
        assert_problem_for(path, response, StatusCode::NOT_FOUND, "not_found").await;
    }
    // A path that is not UTF-8 once decoded: the docs' router refuses it in
    // plain text of its own.
    for path in ["/docs/%FF", "/docs/a%C0%80b", "/docs/%ED%A0%80"] {
        let response = app.get_root(path).await;
        assert_problem_for(path, response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    assert_eq!(app.get_root("/docs/").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_in_a_transfer_coding_other_than_chunked_is_refused() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let host = app.host();
    let body = r#"{"amount": 1}"#;
    let charge = |codings: &str| {
        format!(
            "POST /api/v1/users/{user_id}/balance/charges HTTP/1.1\r\nhost: {host}\r\n\
             authorization: Bearer {token}\r\ncontent-type: application/json\r\n\
             transfer-encoding: {codings}\r\nconnection: close\r\n\r\n\
             {:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        )
    };

    for codings in ["gzip, chunked", "deflate,chunked", "chunked, chunked"] {
        let answer = send_raw(&app, &charge(codings)).await;
        assert!(answer.starts_with("HTTP/1.1 400 "), "{codings}: {answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(answer.contains("Transfer-Encoding"), "{answer}");
    }
    assert_eq!(app.balance(user_id).await, 1_000);
    let answer = send_raw(&app, &charge("chunked")).await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert_eq!(app.balance(user_id).await, 1_001);
}
