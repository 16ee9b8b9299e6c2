//! Every body field, path segment, query parameter and `Idempotency-Key` fed
//! SQL metacharacters, NUL, lone surrogates and numbers no `i64` holds.

use serde_json::json;
use uuid::Uuid;

use super::bodies::{body_template, fill, NASTY_JSON};
use super::fixture::{fixture, hostile_config, Tok};
use super::generators::{percent_encode, NASTY_SEGMENTS};
use super::judging::{check_problem, still_sound};
use super::sending::{send, Case, Reply};
use crate::helpers::{spawn_app_with, ADMIN_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_survives_sql_metacharacters_and_huge_numbers() {
    let app = spawn_app_with(hostile_config()).await;
    let fx = fixture(&app).await;
    let client = reqwest::Client::new();
    let holder_balance = app.balance(fx.holder.user_id).await;
    let mut tried = 0;
    let mut failures = Vec::new();
    let mut record = |what: String, reply: Option<Reply>| {
        tried += 1;
        if let Some(reply) = reply {
            if let Err(error) = check_problem(&reply) {
                failures.push(format!("{what}: {error}"));
            } else if reply.status < 300 && what.contains("/payments") {
                failures.push(format!("{what}: a payment went through: {}", reply.body));
            }
        }
    };
    // Every body field of every endpoint, with the right token for it: a
    // stranger's wallet is charged with their own user token.
    let stranger = Uuid::new_v4();
    let stranger_token = Tok::Raw(app.user_token(stranger).await);
    let endpoints = [
        ("/api/v1/users/{u}/balance/charges", stranger_token, 0),
        ("/api/v1/queue/tokens", Tok::VisitorUser, 1),
        ("/api/v1/reservations", Tok::Holder, 2),
        ("/api/v1/payments", Tok::Holder, 3),
        ("/api/v1/concerts", Tok::Admin, 4),
        ("/api/v1/users/{u}/tokens", Tok::Admin, 5),
    ];
    let templates = body_template(&fx);
    for (path, token, template) in &endpoints {
        let (text, fields) = &templates[*template];
        let path = path.replace("{u}", &stranger.to_string());
        for field in 0..fields.len() {
            for nasty in NASTY_JSON {
                let mut replacements = vec![None; fields.len()];
                replacements[field] = Some(nasty.to_string());
                let body = fill(text, fields, &replacements).into_bytes();
                let case = Case::json("POST", &path, token.clone(), Some(body));
                let reply = send(&client, &app.address, &fx, &case).await;
                record(format!("POST {path} {}={nasty}", fields[field].0), reply);
            }
        }
    }
    // Every path segment, query parameter and the Idempotency-Key.
    let paths = [
        "/api/v1/users/@/balance",
        "/api/v1/users/@/balance/charges",
        "/api/v1/users/@/tokens",
        "/api/v1/reservations/@",
        "/api/v1/concerts/@/dates",
        "/api/v1/concerts/{c}/dates/@/seats",
        "/api/v1/concerts/{c}/dates/{d}/seats?limit=@",
        "/api/v1/concerts/{c}/dates/{d}/seats?after_seat_no=@",
        "/api/v1/audit/events?after=@",
        "/api/v1/audit/events?limit=@",
        "/api/v1/audit/streams/@/{u}",
        "/api/v1/audit/streams/Wallet/@",
    ];
    let nasty_texts: Vec<String> = NASTY_SEGMENTS
        .iter()
        .map(|s| s.to_string())
        .chain(NASTY_JSON.iter().map(|s| s.trim_matches('"').to_string()))
        .collect();
    for template in paths {
        for nasty in &nasty_texts {
            let path = template
                .replace("{c}", &fx.concert_a)
                .replace("{d}", &fx.date_a)
                .replace("{u}", &fx.holder.user_id.to_string())
                .replace('@', &percent_encode(nasty));
            // A wallet's right token is the user token of the user the path
            // names, when it names one; else the holder's, refused with 403.
            let wallet_token = match Uuid::parse_str(nasty) {
                Ok(user) => Tok::Raw(app.user_token(user).await),
                Err(_) => Tok::HolderUser,
            };
            let (method, token, body) = if template.ends_with("charges") {
                ("POST", wallet_token, Some(b"{\"amount\": 5}".to_vec()))
            } else if template.ends_with("balance") {
                ("GET", wallet_token, None)
            } else if template.ends_with("tokens") {
                ("POST", Tok::Admin, Some(b"{}".to_vec()))
            } else if template.contains("audit") {
                ("GET", Tok::Admin, None)
            } else {
                ("GET", Tok::Holder, None)
            };
            let case = Case::json(method, &path, token, body);
            let reply = send(&client, &app.address, &fx, &case).await;
            record(format!("{method} {path}"), reply);
        }
    }
    let charges = format!("/api/v1/users/{}/balance/charges", fx.holder.user_id);
    for nasty in &nasty_texts {
        let case = Case {
            idempotency_key: Some(nasty.as_bytes().to_vec()),
            ..Case::json(
                "POST",
                &charges,
                Tok::HolderUser,
                Some(b"{\"amount\": 1}".to_vec()),
            )
        };
        let reply = send(&client, &app.address, &fx, &case).await;
        record(format!("POST {charges} idempotency-key {nasty:?}"), reply);
    }
    assert!(
        failures.is_empty(),
        "{} of {tried} failed: {failures:#?}",
        failures.len()
    );
    println!("FIGURES hostile_sql_and_numbers: {tried} requests");
    // SQL arrived as data: the tables are whole, and a title is kept verbatim.
    let sneaky = "Robert'); drop table events; --";
    let created = app
        .post(
            "/concerts",
            Some(ADMIN_TOKEN),
            json!({"title": sneaky, "dates": [{"starts_at": chrono::Utc::now() + chrono::Duration::days(9), "seats": 1, "price": 1}]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let titles: Vec<String> = sqlx::query_scalar("select title from concerts")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(titles.iter().any(|t| t == sneaky), "{titles:?}");
    // Only the idempotency-key charges of 1 won (at most one per accepted key) reached the holder.
    let balance = app.balance(fx.holder.user_id).await;
    assert!(
        balance - holder_balance <= nasty_texts.len() as i64,
        "balance {balance}"
    );
    still_sound(&app).await;
}
