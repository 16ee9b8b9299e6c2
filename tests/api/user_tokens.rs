//! The service's own user tokens: minting checks its admin token, its body
//! and its lifetime, a minted token lives as asked (its `expires_at` is its
//! `exp`), the leeway and the subject's form are held to, and the command
//! line mints tokens the service accepts.

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_problem, assert_problem_for, database_url_of, spawn_app, ADMIN_TOKEN};
use crate::identity::{claims, own_signing_key, sign};

#[tokio::test]
async fn minting_checks_its_admin_token_and_ttl_and_the_token_lives_as_asked() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let path = format!("/users/{user}/tokens");
    for ttl in [0, 59, 86_401, -1] {
        let response = app
            .post(&path, Some(ADMIN_TOKEN), json!({"ttl_secs": ttl}))
            .await;
        assert_problem_for(
            format!("ttl {ttl}"),
            response,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    let response = app
        .post(&path, Some(ADMIN_TOKEN), json!({"ttl_secs": 120}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], user.to_string());
    let expires_at: chrono::DateTime<chrono::Utc> =
        body["expires_at"].as_str().unwrap().parse().unwrap();
    let lifetime = expires_at - chrono::Utc::now();
    assert!(
        (100..=121).contains(&lifetime.num_seconds()),
        "{lifetime:?}"
    );
    let token = body["token"].as_str().unwrap();
    let balance = app
        .get(&format!("/users/{user}/balance"), Some(token))
        .await;
    assert_eq!(balance.status(), StatusCode::OK);
    // No body at all: the default lifetime of an hour.
    let bare = app
        .client
        .post(app.url(&path))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::CREATED);
    let bare: Value = bare.json().await.unwrap();
    let expires_at: chrono::DateTime<chrono::Utc> =
        bare["expires_at"].as_str().unwrap().parse().unwrap();
    assert!((expires_at - chrono::Utc::now()).num_seconds() > 3500);
    let bad_path = app
        .post("/users/nope/tokens", Some(ADMIN_TOKEN), json!({}))
        .await;
    assert_problem(bad_path, StatusCode::BAD_REQUEST, "bad_request").await;
}

#[tokio::test]
async fn a_minting_body_is_held_to_the_rules_of_every_body_and_expires_at_is_the_exp_claim() {
    let app = spawn_app().await;
    let path = format!("/users/{}/tokens", Uuid::new_v4());
    let send = |body: Vec<u8>| {
        app.client
            .post(app.url(&path))
            .bearer_auth(ADMIN_TOKEN)
            .body(body)
            .send()
    };

    let untyped = send(br#"{"ttl_secs": 5}"#.to_vec()).await.unwrap();
    let oversized = send(vec![b' '; 70 * 1024]).await.unwrap();
    let minted: Value = app
        .post(&path, Some(ADMIN_TOKEN), json!({"ttl_secs": 600}))
        .await
        .json()
        .await
        .unwrap();

    assert_problem(untyped, StatusCode::BAD_REQUEST, "bad_request").await;
    assert_problem(
        oversized,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let token = minted["token"].as_str().unwrap();
    let claims = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    let expires_at: chrono::DateTime<chrono::Utc> =
        minted["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        Some(expires_at.timestamp()),
        claims["exp"].as_i64(),
        "{minted}"
    );
    assert_eq!(expires_at.timestamp_subsec_nanos(), 0, "{minted}");
}

#[tokio::test]
async fn a_token_within_the_leeway_is_accepted_and_the_subject_must_be_a_user_id() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let key = own_signing_key(&app).await;
    let path = format!("/users/{user}/balance");
    let lately_expired = sign(&claims(user, -30), &key);
    assert_eq!(app.get(&path, Some(&lately_expired)).await.status(), 200);
    let mut not_a_user = claims(user, 3600);
    not_a_user["sub"] = json!("admin");
    let refused = app.get(&path, Some(&sign(&not_a_user, &key))).await;
    assert_problem(refused, StatusCode::UNAUTHORIZED, "token_invalid").await;
    let mut no_exp = claims(user, 3600);
    no_exp.as_object_mut().unwrap().remove("exp");
    let refused = app.get(&path, Some(&sign(&no_exp, &key))).await;
    assert_eq!(refused.status(), 401);
    let mut other_issuer = claims(user, 3600);
    other_issuer["iss"] = json!("someone-else");
    let refused = app.get(&path, Some(&sign(&other_issuer, &key))).await;
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn the_user_token_command_prints_a_token_the_service_accepts() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_concert"))
        .args(["user-token", &user.to_string(), "--ttl-secs", "600"])
        .env("DATABASE_URL", database_url_of(&app.pool))
        .env("CONCERT_LOG_FORMAT", "json")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let balance = app
        .get(&format!("/users/{user}/balance"), Some(&token))
        .await;
    assert_eq!(balance.status(), StatusCode::OK);
    let other = app
        .get(&format!("/users/{}/balance", Uuid::new_v4()), Some(&token))
        .await;
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
}
