//! Each wrong token on every guarded route, refused with its exact code, and
//! nothing moved afterwards.

use serde_json::{json, Value};

use super::fixture::{fixture, hostile_config, Fixture, Tok};
use super::judging::check_problem;
use super::sending::{send, Case};
use crate::helpers::spawn_app_with;

/// Sends `(method, path, body)` with `token`; a line to report unless the
/// answer is the problem document `expected` (status, code).
async fn mismatch(
    client: &reqwest::Client,
    address: &str,
    fx: &Fixture,
    token: &Tok,
    (method, path, body): (&str, &str, Option<&Value>),
    expected: (u16, &str),
) -> Option<String> {
    let body = body.map(|b| b.to_string().into_bytes());
    let case = Case::json(method, path, token.clone(), body);
    let reply = send(client, address, fx, &case).await.unwrap();
    let code = serde_json::from_str::<Value>(&reply.body).unwrap_or_default()["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ((reply.status, code.as_str()) != expected || check_problem(&reply).is_err()).then(|| {
        format!(
            "{token:?} {method} {path}: expected {expected:?}, got {} {}",
            reply.status, reply.body
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_wrong_token_is_refused_with_its_code_on_every_guarded_route() {
    let app = spawn_app_with(hostile_config()).await;
    let fx = fixture(&app).await;
    let client = reqwest::Client::new();
    let seats_a = format!(
        "/api/v1/concerts/{}/dates/{}/seats",
        fx.concert_a, fx.date_a
    );
    let dates_a = format!("/api/v1/concerts/{}/dates", fx.concert_a);
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", dates_a.clone(), None),
        ("GET", seats_a.clone(), None),
        (
            "POST",
            "/api/v1/reservations".into(),
            Some(json!({"seat_id": fx.seat_a})),
        ),
        (
            "GET",
            format!("/api/v1/reservations/{}", fx.reservation),
            None,
        ),
        (
            "POST",
            "/api/v1/payments".into(),
            Some(json!({"reservation_id": fx.reservation})),
        ),
    ];
    // (token, expected status and code on concert A's guarded routes)
    let tokens = [
        (Tok::None, 401, "token_invalid"),
        (Tok::Forged, 401, "token_invalid"),
        (Tok::Tampered, 401, "token_invalid"),
        (Tok::Admin, 401, "token_invalid"),
        (Tok::Expired, 401, "token_invalid"),
        (Tok::Waiting, 403, "token_not_active"),
        (Tok::Visitor, 403, "token_not_active"),
        // A user token says who the caller is, not their place in a queue.
        (Tok::HolderUser, 401, "token_invalid"),
        (Tok::VisitorUser, 401, "token_invalid"),
        (Tok::TamperedUser, 401, "token_invalid"),
    ];
    let mut tried = 0;
    let mut wrong = Vec::new();
    for (token, status, code) in &tokens {
        for (method, path, body) in &routes {
            let mut expected = (*status, *code);
            // Any token the server issued names its user, who may read their own
            // reservations even once the token is spent: another user's is not found.
            if path.starts_with("/api/v1/reservations/")
                && matches!(token, Tok::Visitor | Tok::Waiting | Tok::Expired)
            {
                expected = (404, "not_found");
            }
            if *method == "POST" && path == "/api/v1/payments" && matches!(token, Tok::Visitor) {
                expected = (404, "not_found");
            }
            let request = (*method, path.as_str(), body.as_ref());
            tried += 1;
            wrong.extend(mismatch(&client, &app.address, &fx, token, request, expected).await);
        }
    }
    // The admin routes refuse every queue token and every user token, and the
    // admin token is no queue token.
    let mint = format!("/api/v1/users/{}/tokens", fx.holder.user_id);
    for token in [
        Tok::Holder,
        Tok::Visitor,
        Tok::Waiting,
        Tok::Expired,
        Tok::HolderUser,
        Tok::VisitorUser,
        Tok::TamperedUser,
        Tok::Forged,
        Tok::None,
    ] {
        for (method, path) in [
            ("GET", "/api/v1/audit/events"),
            ("POST", "/api/v1/concerts"),
            ("POST", mint.as_str()),
        ] {
            let body = (method == "POST").then(|| b"{\"title\": \"x\", \"dates\": []}".to_vec());
            let case = Case::json(method, path, token.clone(), body);
            let reply = send(&client, &app.address, &fx, &case).await.unwrap();
            tried += 1;
            if reply.status != 401 || !reply.body.contains("token_invalid") {
                wrong.push(format!(
                    "{token:?} {method} {path}: {} {}",
                    reply.status, reply.body
                ));
            }
        }
    }
    // The user-token routes of the holder refuse every other credential: no
    // token, a queue or admin token, a spoiled user token (401), and another
    // user's genuine user token (403).
    let entered = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from events where event_type = 'QueueEntered'",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    let (holder_balance, entered_before) = (app.balance(fx.holder.user_id).await, entered().await);
    let holder = fx.holder.user_id;
    let user_routes: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/api/v1/queue/tokens".into(),
            Some(json!({"user_id": holder, "concert_id": fx.concert_b})),
        ),
        ("GET", format!("/api/v1/users/{holder}/balance"), None),
        (
            "POST",
            format!("/api/v1/users/{holder}/balance/charges"),
            Some(json!({"amount": 1000})),
        ),
    ];
    for (token, status, code) in [
        (Tok::None, 401, "token_invalid"),
        (Tok::Forged, 401, "token_invalid"),
        (Tok::Tampered, 401, "token_invalid"),
        (Tok::TamperedUser, 401, "token_invalid"),
        (Tok::Admin, 401, "token_invalid"),
        (Tok::Holder, 401, "token_invalid"),
        (Tok::Visitor, 401, "token_invalid"),
        (Tok::Waiting, 401, "token_invalid"),
        (Tok::Expired, 401, "token_invalid"),
        (Tok::VisitorUser, 403, "forbidden"),
    ] {
        for (method, path, body) in &user_routes {
            let request = (*method, path.as_str(), body.as_ref());
            tried += 1;
            wrong.extend(
                mismatch(&client, &app.address, &fx, &token, request, (status, code)).await,
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {tried} wrong: {wrong:#?}",
        wrong.len()
    );
    println!("FIGURES hostile_tokens: {tried} requests");
    // Nobody entered a queue or touched the holder's wallet.
    assert_eq!(entered().await, entered_before);
    assert_eq!(app.balance(fx.holder.user_id).await, holder_balance);
    // Nothing moved: the seat is free, the reservation unpaid.
    let seats = app
        .get_json(
            &format!("/concerts/{}/dates/{}/seats", fx.concert_a, fx.date_a),
            Some(&fx.holder.token),
        )
        .await;
    assert!(seats["seats"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["seat_id"] == fx.seat_a.as_str()));
    let reservation = app
        .get_json(
            &format!("/reservations/{}", fx.reservation),
            Some(&fx.holder.token),
        )
        .await;
    assert_eq!(reservation["status"], "held");
}
