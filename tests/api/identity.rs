//! Who is calling: every route refuses every credential that is not the one it
//! needs, with its exact status and code, and nothing in the log changes; a
//! stranger who knows a user's id can neither take their queue token nor touch
//! their wallet. The service is its own issuer here (no JWKS file).

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_problem, eventually, json_of, problem_code, spawn_app, TestApp, ADMIN_TOKEN,
};

/// The service's own signing key, read from its database as an insider
/// would, to make tokens that are genuine but expired or not yet valid.
pub(crate) async fn own_signing_key(app: &TestApp) -> Vec<u8> {
    sqlx::query_scalar("select secret from server_secrets where name = 'user_tokens'")
        .fetch_one(&app.pool)
        .await
        .expect("the user-token key exists once the service runs")
}

pub(crate) fn sign(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .unwrap()
}

pub(crate) fn claims(user: Uuid, exp_from_now: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": user.to_string(), "iss": "concert", "iat": now, "exp": now + exp_from_now})
}

fn base64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An unsigned token (`alg: none`) naming `user`.
fn alg_none(user: Uuid) -> String {
    let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let body = base64url(claims(user, 3600).to_string().as_bytes());
    format!("{header}.{body}.")
}

/// `token` with one character of its signature changed to another value in
/// both base64url and hex (not the last, whose low bits may be padding, and
/// never just its case, which hex ignores).
fn tampered(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let at = chars.len() - 5;
    chars[at] = if chars[at] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

/// The number of events, the highest position and the sum of sequences: the
/// log's fingerprint, once every committed event has its position (they are
/// handed out just after the commit).
pub(crate) async fn log_fingerprint(app: &TestApp) -> (i64, i64, i64) {
    eventually("every event has its position", || async {
        sqlx::query_scalar::<_, i64>("select count(*) from events where position is null")
            .fetch_one(&app.pool)
            .await
            .unwrap()
            == 0
    })
    .await;
    sqlx::query_as(
        "select count(*), coalesce(max(position), 0), coalesce(sum(sequence), 0)::bigint from events",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// What a route needs.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Needs {
    /// The user token of the user the request acts for.
    User,
    Queue,
    Admin,
}

struct Route {
    method: &'static str,
    path: String,
    body: Option<Value>,
    needs: Needs,
}

async fn send(app: &TestApp, route: &Route, bearer: Option<&str>) -> reqwest::Response {
    let url = format!("{}{}", app.address, route.path);
    let mut request = match route.method {
        "GET" => app.client.get(url),
        _ => app.client.post(url),
    };
    if let Some(body) = &route.body {
        request = request.json(body);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_every_wrong_credential_and_the_log_is_unchanged() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 10, 1000).await;
    let victim = app.active_user(&concert.concert_id).await;
    let seats = app.free_seats(&victim, &concert, 0).await;
    let held: Value = json_of(&app.hold(&victim, &seats[0].seat_id.to_string()).await);
    let reservation = held["reservation_id"].as_str().unwrap().to_string();
    assert_eq!(app.charge(victim.user_id, 50_000).await.status, 200);
    let stranger = Uuid::new_v4();
    let stranger_token = app.user_token(stranger).await;
    let victim_user_token = app.user_token(victim.user_id).await;
    let key = own_signing_key(&app).await;
    let expired = sign(&claims(victim.user_id, -3600), &key);
    let not_yet = {
        let mut claims = claims(victim.user_id, 7200);
        claims["nbf"] = json!(chrono::Utc::now().timestamp() + 3600);
        sign(&claims, &key)
    };
    let (c, d, v) = (&concert.concert_id, &concert.date_ids[0], victim.user_id);
    let route = |method, path: String, body: Option<Value>, needs| Route {
        method,
        path: format!("/api/v1{path}"),
        body,
        needs,
    };
    let routes = [
        route(
            "POST",
            "/queue/tokens".into(),
            Some(json!({"concert_id": c, "user_id": v})),
            Needs::User,
        ),
        route("GET", format!("/users/{v}/balance"), None, Needs::User),
        route(
            "POST",
            format!("/users/{v}/balance/charges"),
            Some(json!({"amount": 1000})),
            Needs::User,
        ),
        route("GET", "/queue/tokens/current".into(), None, Needs::Queue),
        route("GET", format!("/concerts/{c}/dates"), None, Needs::Queue),
        route(
            "GET",
            format!("/concerts/{c}/dates/{d}/seats"),
            None,
            Needs::Queue,
        ),
        route(
            "POST",
            "/reservations".into(),
            Some(json!({"seat_id": seats[1].seat_id})),
            Needs::Queue,
        ),
        route(
            "GET",
            format!("/reservations/{reservation}"),
            None,
            Needs::Queue,
        ),
        route(
            "POST",
            "/payments".into(),
            Some(json!({"reservation_id": reservation})),
            Needs::Queue,
        ),
        route(
            "POST",
            "/concerts".into(),
            Some(
                json!({"title": "x", "dates": [{"starts_at": "2030-01-01T00:00:00Z", "seats": 1, "price": 1}]}),
            ),
            Needs::Admin,
        ),
        route(
            "POST",
            format!("/users/{v}/tokens"),
            Some(json!({})),
            Needs::Admin,
        ),
        route("GET", "/audit/events".into(), None, Needs::Admin),
        route(
            "GET",
            format!("/audit/streams/Wallet/{v}"),
            None,
            Needs::Admin,
        ),
    ];
    // (what, the bearer sent, the kind of credential it is)
    let credentials: Vec<(&str, Option<String>, Option<Needs>)> = vec![
        ("no token", None, None),
        (
            "a tampered user token",
            Some(tampered(&victim_user_token)),
            None,
        ),
        ("alg none", Some(alg_none(v)), None),
        ("an expired user token", Some(expired), None),
        ("a user token not valid yet", Some(not_yet), None),
        ("a malformed token", Some("not.a.jwt".into()), None),
        (
            "the user's own user token",
            Some(victim_user_token.clone()),
            Some(Needs::User),
        ),
        (
            "another user's user token",
            Some(stranger_token.clone()),
            Some(Needs::User),
        ),
        (
            "the user's queue token",
            Some(victim.token.clone()),
            Some(Needs::Queue),
        ),
        (
            "a tampered queue token",
            Some(tampered(&victim.token)),
            None,
        ),
        (
            "the admin token",
            Some(ADMIN_TOKEN.into()),
            Some(Needs::Admin),
        ),
    ];
    let before = log_fingerprint(&app).await;
    let mut tried = 0;
    let mut wrong = Vec::new();
    for route in &routes {
        for (what, bearer, kind) in &credentials {
            if *kind == Some(route.needs) && *what != "another user's user token" {
                continue; // the right credential: not a refusal case
            }
            let expected = if *what == "another user's user token" && route.needs == Needs::User {
                (StatusCode::FORBIDDEN, "forbidden")
            } else {
                (StatusCode::UNAUTHORIZED, "token_invalid")
            };
            let response = send(&app, route, bearer.as_deref()).await;
            tried += 1;
            // RFC 6750 §3: the scheme, and the error once a token was sent.
            let challenge = match bearer {
                None => "Bearer",
                Some(_) => "Bearer error=\"invalid_token\"",
            };
            let sent = response.headers().get("www-authenticate");
            if response.status() == StatusCode::UNAUTHORIZED
                && sent.and_then(|value| value.to_str().ok()) != Some(challenge)
            {
                let (method, path) = (route.method, &route.path);
                wrong.push(format!("{method} {path} with {what}: challenge {sent:?}"));
            }
            if response.status().is_success() {
                wrong.push(format!(
                    "{} {} with {what}: expected {expected:?}, got {}",
                    route.method,
                    route.path,
                    response.status()
                ));
                continue;
            }
            let (status, code) = problem_code(response).await;
            if (status, code.as_str()) != expected {
                wrong.push(format!(
                    "{} {} with {what}: expected {expected:?}, got {status} {code}",
                    route.method, route.path
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {tried} wrong: {wrong:#?}",
        wrong.len()
    );
    assert_eq!(log_fingerprint(&app).await, before, "the log changed");
    assert_eq!(app.balance(v).await, 50_000);
    println!("FIGURES identity_wrong_credentials: {tried} refusals");
}

#[tokio::test]
async fn a_stranger_who_knows_a_users_id_cannot_act_as_that_user() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let victim = Uuid::new_v4();
    assert_eq!(app.charge(victim, 50_000).await.status, 200);
    let stranger = Uuid::new_v4();
    let stranger_token = app.user_token(stranger).await;
    let before = log_fingerprint(&app).await;

    // Revision 1's attack: the victim's id in the body, with no token or the stranger's own.
    let body = json!({"user_id": victim, "concert_id": concert.concert_id});
    let anonymous = app.post("/queue/tokens", None, body.clone()).await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let as_stranger = app.post("/queue/tokens", Some(&stranger_token), body).await;
    assert_problem(as_stranger, StatusCode::FORBIDDEN, "forbidden").await;
    // The wallet: neither read nor charged.
    let read = app
        .get(&format!("/users/{victim}/balance"), Some(&stranger_token))
        .await;
    assert_problem(read, StatusCode::FORBIDDEN, "forbidden").await;
    let charge = app
        .post(
            &format!("/users/{victim}/balance/charges"),
            Some(&stranger_token),
            json!({"amount": 1}),
        )
        .await;
    assert_problem(charge, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(log_fingerprint(&app).await, before, "the log changed");
    assert_eq!(app.balance(victim).await, 50_000);
    let victims_tickets: i64 = sqlx::query_scalar(
        "select count(*) from events where aggregate_type = 'QueueTicket' and payload::text like '%' || $1 || '%'",
    )
    .bind(victim.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        victims_tickets, 0,
        "a ticket was issued in the victim's name"
    );

    // The stranger entering as themselves gets a token of their own.
    let (status, own) = app.enter_queue(stranger, &concert.concert_id).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(own["user_id"], stranger.to_string());
}

#[tokio::test]
async fn queue_entry_takes_the_user_from_the_token() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = Uuid::new_v4();
    let token = app.user_token(user).await;
    let entered = app
        .post(
            "/queue/tokens",
            Some(&token),
            json!({"concert_id": concert.concert_id}),
        )
        .await;
    assert_eq!(entered.status(), StatusCode::CREATED);
    let entered: Value = entered.json().await.unwrap();
    assert_eq!(entered["user_id"], user.to_string());
    // The same user naming themselves gets the same live token back.
    let again = app
        .post(
            "/queue/tokens",
            Some(&token),
            json!({"concert_id": concert.concert_id, "user_id": user}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["token"], entered["token"]);
}
