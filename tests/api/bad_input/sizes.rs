//! Sizes and limits: a body above 64 KiB, however it is sent, and a concert
//! outside the limits on dates, seats, prices and titles.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{catalog, charged_user, date, post_raw};
use crate::helpers::{assert_problem, assert_problem_for, spawn_app, TestApp, ADMIN_TOKEN};

/// Posts `body` as JSON with chunked transfer encoding over a plain
/// connection, signed in with `token`; returns the status and the whole answer.
async fn post_chunked(app: &TestApp, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.host();
    let mut stream = tokio::net::TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "POST /api/v1{path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n\
         authorization: Bearer {token}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.chunks(4096) {
        let sent = async {
            stream
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            stream.write_all(chunk).await?;
            stream.write_all(b"\r\n").await
        };
        // The server may answer and stop reading before the whole body is sent.
        if sent.await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

#[tokio::test]
async fn a_body_above_64_kib_is_too_large_and_charges_nothing() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    let padding = "x".repeat(70 * 1024);
    let response = app
        .post(
            &path,
            Some(&token),
            json!({"amount": 10, "padding": padding}),
        )
        .await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Just over the limit, sent chunked, without a length to refuse it by.
    let body = format!(
        r#"{{"amount": 10, "padding": "{}"}}"#,
        "y".repeat(64 * 1024)
    );
    let (status, answer) = post_chunked(&app, &path, &token, body.as_bytes()).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");
    assert_eq!(app.balance(user_id).await, 1_000);

    // A request just under the limit is served.
    let body = format!(
        r#"{{"amount": 10, "padding": "{}"}}"#,
        "z".repeat(60 * 1024)
    );
    let response = post_raw(&app, &path, Some(&token), "application/json", body).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.balance(user_id).await, 1_010);
}

#[tokio::test]
async fn concerts_outside_the_limits_fail_validation_and_are_not_stored() {
    let app = spawn_app().await;
    let many_dates: Vec<Value> = (0..101)
        .map(|n| json!({"starts_at": chrono::Utc::now() + chrono::Duration::days(30 + n), "seats": 1, "price": 1_000}))
        .collect();
    let too_many_seats: Vec<Value> = (0..21)
        .map(|n| json!({"starts_at": chrono::Utc::now() + chrono::Duration::days(30 + n), "seats": 50_000, "price": 1_000}))
        .collect();
    let cases = [
        ("no dates", json!({"title": "T", "dates": []})),
        ("101 dates", json!({"title": "T", "dates": many_dates})),
        (
            "0 seats",
            json!({"title": "T", "dates": [date(json!(0), json!(1_000))]}),
        ),
        (
            "50001 seats",
            json!({"title": "T", "dates": [date(json!(50_001), json!(1_000))]}),
        ),
        (
            "negative seats",
            json!({"title": "T", "dates": [date(json!(-1), json!(1_000))]}),
        ),
        (
            "over a million seats",
            json!({"title": "T", "dates": too_many_seats}),
        ),
        (
            "price 0",
            json!({"title": "T", "dates": [date(json!(10), json!(0))]}),
        ),
        (
            "negative price",
            json!({"title": "T", "dates": [date(json!(10), json!(-5))]}),
        ),
        (
            "price above 10^9",
            json!({"title": "T", "dates": [date(json!(10), json!(1_000_000_001))]}),
        ),
        (
            "fractional price",
            json!({"title": "T", "dates": [date(json!(10), json!(1000.5))]}),
        ),
        (
            "empty title",
            json!({"title": "", "dates": [date(json!(10), json!(1_000))]}),
        ),
        (
            "blank title",
            json!({"title": "   ", "dates": [date(json!(10), json!(1_000))]}),
        ),
        (
            "bad start",
            json!({"title": "T", "dates": [{"starts_at": "christmas", "seats": 10, "price": 1_000}]}),
        ),
        (
            "dates not a list",
            json!({"title": "T", "dates": {"seats": 10}}),
        ),
        (
            "a leap second",
            json!({"title": "T", "dates": [{"starts_at": "2030-06-30T23:59:60Z", "seats": 10, "price": 1_000}]}),
        ),
        (
            "a start before PostgreSQL's first timestamp (4713 BC)",
            json!({"title": "T", "dates": [{"starts_at": "-4713-11-23T23:59:59Z", "seats": 10, "price": 1_000}]}),
        ),
        (
            "a start before 1970",
            json!({"title": "T", "dates": [{"starts_at": "1969-12-31T23:59:59Z", "seats": 10, "price": 1_000}]}),
        ),
        (
            "a start after 9999",
            json!({"title": "T", "dates": [{"starts_at": "+10000-01-01T00:00:00Z", "seats": 10, "price": 1_000}]}),
        ),
    ];
    for (case, body) in cases {
        let response = app.post("/concerts", Some(ADMIN_TOKEN), body).await;
        assert_problem_for(
            case,
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    assert!(catalog(&app).await.is_empty());

    // A refused date is named by its place in the request, not by a date id
    // the service made and the client never saw.
    for (starts_at, why) in [
        ("1969-12-31T23:00:00Z", "years 1970 to 9999"),
        ("2030-06-30T23:59:60Z", "leap second"),
    ] {
        let body = json!({"title": "T", "dates": [date(json!(10), json!(1_000)), {"starts_at": starts_at, "seats": 10, "price": 1_000}]});
        let response = app.post("/concerts", Some(ADMIN_TOKEN), body).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let detail = response.json::<serde_json::Value>().await.unwrap()["detail"].to_string();
        assert!(
            detail.contains("dates[1].starts_at") && detail.contains(why),
            "{detail}"
        );
    }

    // The limits themselves are allowed.
    let body = json!({"title": "Edge", "dates": [date(json!(1), json!(1)), {"starts_at": chrono::Utc::now() + chrono::Duration::days(40), "seats": 2, "price": 1_000_000_000}]});
    let response = app.post("/concerts", Some(ADMIN_TOKEN), body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(catalog(&app).await.len(), 1);
}

/// A start PostgreSQL cannot store failed the commit of every concert
/// created with it at once: valid ones were answered 503 with it. Now it is
/// refused before its batch, and the batch stores the rest.
#[tokio::test]
async fn concerts_created_at_once_are_stored_whatever_the_others_among_them_hold() {
    let app = spawn_app().await;
    let bodies = (0..40).map(|at| {
        let starts_at = if at % 10 == 0 {
            "-5000-01-01T00:00:00Z"
        } else {
            "2031-01-01T19:00:00Z"
        };
        json!({"title": format!("At once {at}"), "dates": [{"starts_at": starts_at, "seats": 5, "price": 1_000}]})
    });
    let answers = futures::future::join_all(
        bodies.map(|body| app.post("/concerts", Some(ADMIN_TOKEN), body)),
    )
    .await;
    let statuses: Vec<u16> = answers
        .iter()
        .map(|answer| answer.status().as_u16())
        .collect();
    let expected: Vec<u16> = (0..40)
        .map(|at| if at % 10 == 0 { 422 } else { 201 })
        .collect();
    assert_eq!(statuses, expected);
    assert_eq!(catalog(&app).await.len(), 36);
}
