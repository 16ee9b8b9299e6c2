//! Bad input of every kind: malformed bodies, out-of-range values, missing,
//! forged or misplaced tokens, unknown ids and odd paging. Each is refused with
//! the documented status and problem `code`, never a 5xx, and a refused write
//! leaves nothing changed behind it. This file holds what the themes share.

mod amounts;
mod bodies;
mod framing;
mod idempotency_keys;
mod keep_alive;
mod not_found;
mod paging;
mod paths;
mod sizes;
mod sql_and_nul;
mod tokens;

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{Concert, TestApp, User};

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

/// A user id whose wallet holds `amount`.
async fn charged_user(app: &TestApp, amount: i64) -> Uuid {
    let user_id = Uuid::new_v4();
    let response = app.charge(user_id, amount).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(app.balance(user_id).await, amount);
    user_id
}

/// The number of free seats on the first page of a date.
async fn free_seat_count(app: &TestApp, user: &User, concert: &Concert, date: usize) -> usize {
    app.free_seats(user, concert, date).await.len()
}

/// The seats path of a concert's date.
fn seats_path(concert: &Concert, date: usize) -> String {
    format!(
        "/concerts/{}/dates/{}/seats",
        concert.concert_id, concert.date_ids[date]
    )
}

/// The dates path of a concert.
fn dates_path(concert: &Concert) -> String {
    format!("/concerts/{}/dates", concert.concert_id)
}

/// The concerts of the catalog.
async fn catalog(app: &TestApp) -> Vec<Value> {
    let response = app.get("/concerts", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["concerts"].as_array().expect("a concert list").clone()
}

/// One date of a concert-creation body, a month from now.
fn date(seats: Value, price: Value) -> Value {
    let starts_at = chrono::Utc::now() + chrono::Duration::days(30);
    json!({"starts_at": starts_at, "seats": seats, "price": price})
}
