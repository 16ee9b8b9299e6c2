//! SQL metacharacters and NUL characters in text: stored verbatim or refused,
//! never executed and never a server error.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{catalog, date};
use crate::helpers::{spawn_app, ADMIN_TOKEN};

#[tokio::test]
async fn sql_metacharacters_are_stored_verbatim_and_harmless() {
    let app = spawn_app().await;
    let titles = [
        "'; drop table events; --",
        "Robert'); DELETE FROM concerts; --",
        r#"" OR ""=""#,
        "back\\slash $1 %s %%",
        // A direction mark is kept; an override (U+202E) is refused as a
        // title's (it shows the text reversed), see the concert's title rules.
        "콘서트 🎸 \u{200f}",
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
