//! Bad input of every kind: malformed bodies, out-of-range values, missing,
//! forged or misplaced tokens, unknown ids and odd paging. Each is refused with
//! the documented status and problem `code`, never a 5xx, and a refused write
//! leaves nothing changed behind it.

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_problem, assert_problem_for, spawn_app, spawn_app_with, test_config, Concert, TestApp,
    User, ADMIN_TOKEN,
};

/// Posts `body` as-is with the given content type.
async fn post_raw(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> Response {
    let mut request = app
        .client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request sent")
}

/// Posts `body` as JSON with chunked transfer encoding over a plain
/// connection, signed in with `token`; returns the status and the whole answer.
async fn post_chunked(app: &TestApp, path: &str, token: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.address.trim_start_matches("http://");
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

/// A user id whose wallet holds `amount`.
async fn charged_user(app: &TestApp, amount: i64) -> Uuid {
    let user_id = Uuid::new_v4();
    let response = app.charge(user_id, amount).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.balance(user_id).await, amount);
    user_id
}

/// The number of free seats on the first page of a date.
async fn free_seat_count(app: &TestApp, user: &User, concert: &Concert, date: usize) -> usize {
    app.free_seats(user, concert, date).await.len()
}

fn seats_path(concert: &Concert, date: usize) -> String {
    format!(
        "/concerts/{}/dates/{}/seats",
        concert.concert_id, concert.date_ids[date]
    )
}

fn dates_path(concert: &Concert) -> String {
    format!("/concerts/{}/dates", concert.concert_id)
}

/// A token of the right shape, `<32 hex>.<64 hex>`, that the server never issued.
fn forged_token() -> String {
    let signature: String = (0..2)
        .map(|_| Uuid::new_v4().simple().to_string())
        .collect();
    format!("{}.{}", Uuid::new_v4().simple(), signature)
}

/// The concerts of the catalog.
async fn catalog(app: &TestApp) -> Vec<Value> {
    let response = app.get("/concerts", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["concerts"].as_array().expect("a concert list").clone()
}

fn date(seats: Value, price: Value) -> Value {
    let starts_at = chrono::Utc::now() + chrono::Duration::days(30);
    json!({"starts_at": starts_at, "seats": seats, "price": price})
}

// ---------------------------------------------------------------- bodies

#[tokio::test]
async fn malformed_json_is_a_bad_request_and_charges_nothing() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for body in [r#"{"amount": "#, "{", "", "amount=10", r#"{"amount": 10,}"#] {
        let response = post_raw(&app, &path, Some(&token), "application/json", body).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn a_body_that_is_not_declared_as_json_is_a_bad_request() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    let response = post_raw(&app, &path, Some(&token), "text/plain", r#"{"amount": 10}"#).await;
    assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    // No content type at all.
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&token)
        .body(r#"{"amount": 10}"#)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn well_formed_json_of_the_wrong_type_fails_validation() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for body in [
        json!({"amount": "ten"}),
        json!({"amount": null}),
        json!({"amount": true}),
        json!({"amount": [10]}),
        json!({"amount": {"won": 10}}),
        json!([{"amount": 10}]),
        json!("amount"),
        json!(null),
    ] {
        let response = app.post(&path, Some(&token), body.clone()).await;
        assert_problem_for(
            format!("body {body}"),
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn missing_fields_fail_validation() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let response = app
        .post(
            &format!("/users/{user_id}/balance/charges"),
            Some(&token),
            json!({}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(app.balance(user_id).await, 1_000);

    // The user is signed in and names themselves: only the concert is missing.
    let response = app
        .post("/queue/tokens", Some(&token), json!({"user_id": user_id}))
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app
        .post(
            "/concerts",
            Some(ADMIN_TOKEN),
            json!({"title": "No dates field"}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert!(catalog(&app).await.is_empty());
}

#[tokio::test]
async fn a_bad_uuid_in_a_json_body_fails_validation() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let user_token = app.user_token(user.user_id).await;
    let response = app
        .post(
            "/queue/tokens",
            Some(&user_token),
            json!({"user_id": "me", "concert_id": concert.concert_id}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app.hold(&user, "seat-1").await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app.pay(&user, "not-a-reservation").await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
}

#[tokio::test]
async fn a_bad_uuid_in_a_path_is_a_bad_request() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let user_token = app.user_token(user.user_id).await;

    // The path is checked before the token: 400 with or without one.
    for token in [None, Some(user_token.as_str())] {
        let response = app.get("/users/not-a-uuid/balance", token).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
        let response = app
            .post("/users/12345/balance/charges", token, json!({"amount": 10}))
            .await;
        assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    }
    let response = app.get("/concerts/nope/dates", Some(&user.token)).await;
    assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let path = format!("/concerts/{}/dates/nope/seats", concert.concert_id);
    let response = app.get(&path, Some(&user.token)).await;
    assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
    let response = app
        .get("/reservations/'%20or%201=1", Some(&user.token))
        .await;
    assert_problem(response, StatusCode::BAD_REQUEST, "bad_request").await;
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
async fn an_unknown_route_is_not_found() {
    let app = spawn_app().await;
    for path in [
        "/nothing-here",
        "/concerts/extra/segments/here/too",
        "/users",
    ] {
        let response = app.get(path, None).await;
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let response = app
        .client
        .get(format!("{}/nowhere", app.address))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.post("/no/such/route", None, json!({})).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn a_known_route_with_the_wrong_method_is_a_problem_not_a_crash() {
    let app = spawn_app().await;
    let response = app
        .client
        .delete(app.url("/concerts"))
        .send()
        .await
        .unwrap();
    assert_problem(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}

// ---------------------------------------------------------------- amounts

#[tokio::test]
async fn charges_outside_one_to_a_billion_fail_validation_and_leave_the_balance() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    for amount in [0, -1, -1_000, 1_000_000_001, i64::MAX, i64::MIN] {
        let response = app.charge(user_id, amount).await;
        assert_problem_for(
            format!("amount {amount}"),
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn fractional_and_huge_numbers_are_not_money() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for body in [
        r#"{"amount": 1e30}"#,
        r#"{"amount": 1.5}"#,
        r#"{"amount": 10.0}"#,
        r#"{"amount": 1e3}"#,
        r#"{"amount": 9223372036854775808}"#,
        r#"{"amount": 100000000000000000000000000000000}"#,
        r#"{"amount": -9223372036854775809}"#,
    ] {
        let response = post_raw(&app, &path, Some(&token), "application/json", body).await;
        assert_problem_for(
            format!("body {body}"),
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn a_charge_above_a_trillion_won_in_the_wallet_fails_validation() {
    let app = spawn_app().await;
    let user_id = Uuid::new_v4();
    // Exactly 10^12 is allowed.
    for _ in 0..1_000 {
        let response = app.charge(user_id, 1_000_000_000).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(app.balance(user_id).await, 1_000_000_000_000);
    for amount in [1, 1_000_000_000] {
        let response = app.charge(user_id, amount).await;
        assert_problem(
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    assert_eq!(app.balance(user_id).await, 1_000_000_000_000);
}

#[tokio::test]
async fn a_malformed_idempotency_key_is_a_bad_request_and_charges_nothing() {
    let app = spawn_app().await;
    let user_id = charged_user(&app, 1_000).await;
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for key in [String::new(), "has spaces".to_string(), "k".repeat(256)] {
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(&token)
            .header("idempotency-key", key.as_str())
            .json(&json!({"amount": 10}))
            .send()
            .await
            .unwrap();
        assert_problem_for(
            format!("key {key:?}"),
            response,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
    }
    assert_eq!(app.balance(user_id).await, 1_000);
}

#[tokio::test]
async fn sql_metacharacters_are_stored_verbatim_and_harmless() {
    let app = spawn_app().await;
    let titles = [
        "'; drop table events; --",
        "Robert'); DELETE FROM concerts; --",
        r#"" OR ""=""#,
        "back\\slash $1 %s %%",
        "콘서트 🎸 \u{202e}",
    ];
    for title in titles {
        let response = app
            .post(
                "/concerts",
                Some(ADMIN_TOKEN),
                json!({"title": title, "dates": [date(json!(3), json!(1_000))]}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "title {title:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["title"], title);
    }
    let listed: Vec<String> = catalog(&app)
        .await
        .iter()
        .map(|c| c["title"].as_str().unwrap().to_string())
        .collect();
    for title in titles {
        assert!(
            listed.iter().any(|t| t == title),
            "{title:?} not in {listed:?}"
        );
    }
    assert_eq!(listed.len(), titles.len());

    // The store still works: a concert can be booked as usual.
    let concert = app.create_concert(1, 3, 1_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seats = app.free_seats(&user, &concert, 0).await;
    assert_eq!(seats.len(), 3);

    // An idempotency key made of SQL is just a key: the retry charges once.
    let user_id = Uuid::new_v4();
    let token = app.user_token(user_id).await;
    let path = format!("/users/{user_id}/balance/charges");
    for _ in 0..2 {
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(&token)
            .header("idempotency-key", "';drop_table_events;--")
            .json(&json!({"amount": 10}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    assert_eq!(app.balance(user_id).await, 10);
}

#[tokio::test]
async fn a_title_with_a_nul_character_is_refused_without_a_server_error() {
    let app = spawn_app().await;
    let title = "before\u{0}after";
    let body = json!({"title": title, "dates": [date(json!(3), json!(1_000))]});
    let response = app.post("/concerts", Some(ADMIN_TOKEN), body).await;
    let status = response.status();
    let answer = response.text().await.unwrap();
    // Never a half-written concert: either listed with its exact title, or not stored at all.
    let listed = catalog(&app).await;
    let stored: i64 =
        sqlx::query_scalar("select count(*) from events where aggregate_type = 'Concert'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    if status == StatusCode::CREATED {
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["title"], title);
        assert_eq!(stored, 1);
    } else {
        assert!(listed.is_empty(), "{listed:?}");
        assert_eq!(stored, 0, "a refused concert left events behind");
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "NUL in a title gave {status}: {answer}"
        );
        let problem: Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(problem["code"], "validation_failed");
    }
}

// ---------------------------------------------------------------- tokens

#[tokio::test]
async fn a_request_without_a_token_is_unauthorized() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat_id = app.free_seats(&user, &concert, 0).await[0]["seat_id"]
        .as_str()
        .unwrap()
        .to_string();

    let response = app.get("/queue/tokens/current", None).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app.get(&dates_path(&concert), None).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app.get(&seats_path(&concert, 0), None).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post("/reservations", None, json!({"seat_id": seat_id}))
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .get(&format!("/reservations/{}", Uuid::new_v4()), None)
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post("/payments", None, json!({"reservation_id": Uuid::new_v4()}))
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post(
            "/concerts",
            None,
            json!({"title": "x", "dates": [date(json!(1), json!(1))]}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let stranger = Uuid::new_v4();
    let response = app
        .post(
            "/queue/tokens",
            None,
            json!({"user_id": stranger, "concert_id": concert.concert_id}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .get(&format!("/users/{}/balance", user.user_id), None)
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post(
            &format!("/users/{}/balance/charges", user.user_id),
            None,
            json!({"amount": 10}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;

    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
    assert_eq!(catalog(&app).await.len(), 1);
    assert_eq!(app.balance(user.user_id).await, 0);
    let entered: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'QueueEntered'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(entered, 1, "only the active user entered the queue");
}

#[tokio::test]
async fn a_forged_token_of_the_right_shape_is_unauthorized() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat_id = app.free_seats(&user, &concert, 0).await[0]["seat_id"]
        .as_str()
        .unwrap()
        .to_string();

    let forged = forged_token();
    assert_eq!(forged.len(), user.token.len());
    // The real ticket id with a made-up signature is no better.
    let (ticket_id, _) = user.token.split_once('.').unwrap();
    let resigned = format!("{ticket_id}.{}", forged.split_once('.').unwrap().1);
    for token in [forged, resigned] {
        let response = app.get("/queue/tokens/current", Some(&token)).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
        let response = app.get(&dates_path(&concert), Some(&token)).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
        let response = app
            .post("/reservations", Some(&token), json!({"seat_id": seat_id}))
            .await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    }
    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
}

#[tokio::test]
async fn a_garbage_token_is_unauthorized() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let tampered = format!("{}0", user.token);
    // The same token with the last signature digit changed.
    let mut flipped = user.token.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == '0' { '1' } else { '0' });
    for token in [
        "garbage",
        "",
        ".",
        "a.b",
        "🎫",
        "' or 1=1 --",
        &tampered,
        &flipped,
        &"f".repeat(10_000),
    ] {
        let response = app.get("/queue/tokens/current", Some(token)).await;
        assert_problem_for(
            format!("token {token:?}"),
            response,
            StatusCode::UNAUTHORIZED,
            "token_invalid",
        )
        .await;
    }
    // Not a bearer token at all.
    for header in ["Basic dXNlcjpwYXNz", "Bearer", user.token.as_str()] {
        let response = app
            .client
            .get(app.url("/queue/tokens/current"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_problem_for(
            format!("header {header:?}"),
            response,
            StatusCode::UNAUTHORIZED,
            "token_invalid",
        )
        .await;
    }
}

#[tokio::test]
async fn a_waiting_token_is_not_active_for_dates_seats_holds_or_payments() {
    let mut config = test_config();
    config.queue_active_max = 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let first = app.active_user(&concert.concert_id).await;
    let waiting_user = Uuid::new_v4();
    let (status, body) = app.enter_queue(waiting_user, &concert.concert_id).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["status"], "waiting");
    let waiting = User {
        user_id: waiting_user,
        token: body["token"].as_str().unwrap().to_string(),
    };
    let seat_id = app.free_seats(&first, &concert, 0).await[0]["seat_id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app.charge(waiting_user, 100_000).await;
    assert_eq!(response.status(), StatusCode::OK);

    let response = app.get(&dates_path(&concert), Some(&waiting.token)).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    let response = app
        .get(&seats_path(&concert, 0), Some(&waiting.token))
        .await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    let response = app.hold(&waiting, &seat_id).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    let response = app.pay(&waiting, &Uuid::new_v4().to_string()).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;

    assert_eq!(free_seat_count(&app, &first, &concert, 0).await, 5);
    assert_eq!(app.balance(waiting_user).await, 100_000);
    let body: Value = app
        .get("/queue/tokens/current", Some(&waiting.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "waiting");
}

#[tokio::test]
async fn a_token_of_another_concert_is_not_active_here() {
    let app = spawn_app().await;
    let here = app.create_concert(1, 5, 10_000).await;
    let elsewhere = app.create_concert(1, 5, 10_000).await;
    let local = app.active_user(&here.concert_id).await;
    let visitor = app.active_user(&elsewhere.concert_id).await;
    let seat_id = app.free_seats(&local, &here, 0).await[0]["seat_id"]
        .as_str()
        .unwrap()
        .to_string();

    let response = app.get(&dates_path(&here), Some(&visitor.token)).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    let response = app.get(&seats_path(&here, 0), Some(&visitor.token)).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    // A date of the other concert under this concert's path is no way round.
    let mixed = format!(
        "/concerts/{}/dates/{}/seats",
        here.concert_id, elsewhere.date_ids[0]
    );
    let response = app.get(&mixed, Some(&visitor.token)).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    let response = app.hold(&visitor, &seat_id).await;
    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;

    assert_eq!(free_seat_count(&app, &local, &here, 0).await, 5);
    assert_eq!(free_seat_count(&app, &visitor, &elsewhere, 0).await, 5);
}

#[tokio::test]
async fn the_admin_token_is_not_a_queue_token() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat_id = app.free_seats(&user, &concert, 0).await[0]["seat_id"]
        .as_str()
        .unwrap()
        .to_string();

    let response = app.get("/queue/tokens/current", Some(ADMIN_TOKEN)).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app.get(&dates_path(&concert), Some(ADMIN_TOKEN)).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app.get(&seats_path(&concert, 0), Some(ADMIN_TOKEN)).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post(
            "/reservations",
            Some(ADMIN_TOKEN),
            json!({"seat_id": seat_id}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let response = app
        .post(
            "/payments",
            Some(ADMIN_TOKEN),
            json!({"reservation_id": Uuid::new_v4()}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
}

#[tokio::test]
async fn a_queue_token_is_not_an_admin_token() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let body = json!({"title": "Sneaky", "dates": [date(json!(5), json!(1))]});
    let response = app.post("/concerts", Some(&user.token), body).await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    assert_eq!(catalog(&app).await.len(), 1);
}

#[tokio::test]
async fn a_wrong_admin_token_is_unauthorized() {
    let app = spawn_app().await;
    let wrong = [
        "wrong-admin-token".to_string(),
        format!("{ADMIN_TOKEN}x"),
        ADMIN_TOKEN[..ADMIN_TOKEN.len() - 1].to_string(),
        ADMIN_TOKEN.to_uppercase(),
    ];
    for token in &wrong {
        let body = json!({"title": "Nope", "dates": [date(json!(5), json!(1))]});
        let response = app.post("/concerts", Some(token), body).await;
        assert_problem_for(
            format!("token {token:?}"),
            response,
            StatusCode::UNAUTHORIZED,
            "token_invalid",
        )
        .await;
    }
    assert!(catalog(&app).await.is_empty());
}

// ---------------------------------------------------------------- not found

#[tokio::test]
async fn queueing_for_an_unknown_concert_is_not_found() {
    let app = spawn_app().await;
    app.create_concert(1, 5, 10_000).await;
    let (status, body) = app
        .enter_queue(Uuid::new_v4(), &Uuid::new_v4().to_string())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn dates_and_seats_of_an_unknown_date_are_not_found() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let path = format!(
        "/concerts/{}/dates/{}/seats",
        concert.concert_id,
        Uuid::new_v4()
    );
    let response = app.get(&path, Some(&user.token)).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

#[tokio::test]
async fn holding_an_unknown_seat_is_not_found() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let response = app.hold(&user, &Uuid::new_v4().to_string()).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    // A date id is not a seat id either.
    let response = app.hold(&user, &concert.date_ids[0]).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
}

#[tokio::test]
async fn an_unknown_reservation_is_not_found_and_paying_for_it_debits_nothing() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let response = app.charge(user.user_id, 50_000).await;
    assert_eq!(response.status(), StatusCode::OK);

    let unknown = Uuid::new_v4().to_string();
    let response = app
        .get(&format!("/reservations/{unknown}"), Some(&user.token))
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.pay(&user, &unknown).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    // A seat id is not a reservation id.
    let seat_id = app.free_seats(&user, &concert, 0).await[0]["seat_id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app.pay(&user, &seat_id).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;

    assert_eq!(app.balance(user.user_id).await, 50_000);
    assert_eq!(free_seat_count(&app, &user, &concert, 0).await, 5);
    let body: Value = app
        .get("/queue/tokens/current", Some(&user.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "active");
}

#[tokio::test]
async fn another_users_reservation_is_not_found_for_reading_or_paying() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let holder = app.active_user(&concert.concert_id).await;
    let other = app.active_user(&concert.concert_id).await;
    let response = app.charge(other.user_id, 50_000).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seat_id = app.free_seats(&holder, &concert, 0).await[0]["seat_id"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app.hold(&holder, &seat_id).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let reservation: Value = response.json().await.unwrap();
    let reservation_id = reservation["reservation_id"].as_str().unwrap().to_string();

    let response = app
        .get(
            &format!("/reservations/{reservation_id}"),
            Some(&other.token),
        )
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app.pay(&other, &reservation_id).await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;

    // Nothing moved: the other user kept their money and token, the holder their hold.
    assert_eq!(app.balance(other.user_id).await, 50_000);
    let body: Value = app
        .get("/queue/tokens/current", Some(&other.token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "active");
    let response = app
        .get(
            &format!("/reservations/{reservation_id}"),
            Some(&holder.token),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "held");
    assert_eq!(free_seat_count(&app, &other, &concert, 0).await, 4);
}

// ---------------------------------------------------------------- seat paging

#[tokio::test]
async fn a_seat_page_limit_outside_one_to_5000_fails_validation() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let path = seats_path(&concert, 0);
    for query in [
        "limit=0",
        "limit=5001",
        "limit=-1",
        "after_seat_no=-1",
        "after_seat_no=99999999999",
    ] {
        let response = app.get(&format!("{path}?{query}"), Some(&user.token)).await;
        assert_problem_for(
            format!("query {query}"),
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    for query in ["limit=5000", "limit=1", "after_seat_no=0"] {
        let response = app.get(&format!("{path}?{query}"), Some(&user.token)).await;
        assert_eq!(response.status(), StatusCode::OK, "query {query}");
    }
}

#[tokio::test]
async fn an_unparsable_seat_page_is_a_bad_request() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let path = seats_path(&concert, 0);
    for query in [
        "limit=abc",
        "limit=1.5",
        "after_seat_no=x",
        "limit=99999999999999999999",
    ] {
        let response = app.get(&format!("{path}?{query}"), Some(&user.token)).await;
        assert_problem_for(
            format!("query {query}"),
            response,
            StatusCode::BAD_REQUEST,
            "bad_request",
        )
        .await;
    }
}

/// Walks the free seats of date 0 page by page; returns the seat numbers of each page.
async fn walk_seats(app: &TestApp, user: &User, concert: &Concert, limit: usize) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let mut path = format!("{}?limit={limit}", seats_path(concert, 0));
        if let Some(after) = after {
            path.push_str(&format!("&after_seat_no={after}"));
        }
        let response = app.get(&path, Some(&user.token)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        let seats: Vec<i64> = body["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["seat_no"].as_i64().unwrap())
            .collect();
        assert!(seats.len() <= limit);
        pages.push(seats.clone());
        match &body["next_after_seat_no"] {
            Value::Null => return pages,
            next => {
                let next = next.as_i64().expect("a seat number or null");
                assert_eq!(
                    Some(&next),
                    seats.last(),
                    "the cursor is the last seat of the page"
                );
                after = Some(next);
            }
        }
        assert!(pages.len() <= 100, "paging does not end");
    }
}

#[tokio::test]
async fn paging_walks_every_free_seat_exactly_once() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 25, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let pages = walk_seats(&app, &user, &concert, 10).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![10, 10, 5]);
    let all: Vec<i64> = pages.concat();
    assert_eq!(all, (1..=25).collect::<Vec<_>>());

    // A limit that divides the seats evenly ends with a null cursor, not an empty page.
    let pages = walk_seats(&app, &user, &concert, 5).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![5; 5]);
    assert_eq!(pages.concat(), (1..=25).collect::<Vec<_>>());

    // Past the last seat there is nothing, and no cursor.
    let response = app
        .get(
            &format!("{}?after_seat_no=25", seats_path(&concert, 0)),
            Some(&user.token),
        )
        .await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["seats"], json!([]));
    assert_eq!(body["next_after_seat_no"], Value::Null);
}

#[tokio::test]
async fn paging_skips_held_seats_without_losing_free_ones() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 25, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seats = app.free_seats(&user, &concert, 0).await;
    for seat_no in [1, 10, 11, 25] {
        let seat = seats.iter().find(|s| s["seat_no"] == seat_no).unwrap();
        let response = app.hold(&user, seat["seat_id"].as_str().unwrap()).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let pages = walk_seats(&app, &user, &concert, 10).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 1]
    );
    let expected: Vec<i64> = (1..=25).filter(|n| ![1, 10, 11, 25].contains(n)).collect();
    assert_eq!(pages.concat(), expected);
}

// ---------------------------------------------------------------- concerts

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

    // The limits themselves are allowed.
    let body = json!({"title": "Edge", "dates": [date(json!(1), json!(1)), {"starts_at": chrono::Utc::now() + chrono::Duration::days(40), "seats": 2, "price": 1_000_000_000}]});
    let response = app.post("/concerts", Some(ADMIN_TOKEN), body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(catalog(&app).await.len(), 1);
}
