//! Lists as long as a wallet's history or the whole catalogue are read and
//! sent a page at a time, and arrive whole and in order.

use futures::{stream, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp, ADMIN_TOKEN};

/// Events and concerts the service reads per page (`STREAM_PAGE`,
/// `CATALOGUE_PAGE`).
const STREAM_PAGE: usize = 1_000;
const CATALOGUE_PAGE: usize = 5_000;

/// The answer to an admin GET, and whether it was sent in chunks (its
/// length not known when it started).
async fn get_paged(app: &TestApp, path: &str) -> (Value, bool) {
    let response = app.get(path, Some(ADMIN_TOKEN)).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let chunked = response.content_length().is_none();
    let body = response.bytes().await.expect("the whole body");
    let value = serde_json::from_slice(&body).expect("the answer is whole JSON");
    (value, chunked)
}

#[tokio::test]
async fn a_wallet_s_history_longer_than_a_page_arrives_whole_in_sequence_order() {
    let app = spawn_app().await;
    let (short, long) = (Uuid::new_v4(), Uuid::new_v4());
    app.fund(short, 5).await;
    let charges = 2 * STREAM_PAGE + 37;
    stream::iter(0..charges)
        .for_each_concurrent(16, |_| async {
            assert_eq!(app.charge(long, 3).await.status, 200);
        })
        .await;

    let (history, chunked) = get_paged(&app, &format!("/audit/streams/Wallet/{long}")).await;
    let (short_history, short_chunked) =
        get_paged(&app, &format!("/audit/streams/Wallet/{short}")).await;

    let events = history["events"].as_array().expect("events");
    let sequences: Vec<i64> = events
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, (1..=charges as i64).collect::<Vec<_>>());
    assert!(events.iter().all(|e| e["aggregate_id"] == long.to_string()));
    assert_eq!(
        events.last().unwrap()["payload"]["Charged"]["balance"],
        3 * charges as i64
    );
    assert!(chunked, "a long history is sent as it is read");
    assert_eq!(short_history["events"].as_array().map(Vec::len), Some(1));
    assert!(!short_chunked, "a short one is answered whole");
}

#[tokio::test]
async fn a_catalogue_longer_than_a_page_lists_every_concert_once_newest_first() {
    let app = spawn_app().await;
    let scheduled: Vec<String> = stream::iter(0..CATALOGUE_PAGE + 3)
        .map(|_| async { app.create_concert(1, 1, 10).await.concert_id })
        .buffer_unordered(16)
        .collect()
        .await;

    let response = app.get("/concerts", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.content_length().is_none(), "sent as it is read");
    let body: Value = response.json().await.expect("whole JSON");

    let listed: Vec<String> = body["concerts"]
        .as_array()
        .expect("concerts")
        .iter()
        .map(|concert| concert["concert_id"].as_str().unwrap().to_string())
        .collect();
    let mut newest_first = scheduled.clone();
    newest_first.sort_by_key(|id| std::cmp::Reverse(Uuid::parse_str(id).unwrap()));
    assert_eq!(listed, newest_first);
}

#[tokio::test]
async fn a_row_below_sequence_1_is_shown_in_its_stream_s_history() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    app.fund(user, 5).await;
    // Only a forgery writes one; the schema allows it, the audit names it,
    // and the history must not hide it from an auditor.
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select aggregate_type, aggregate_id, 0, event_type, event_version, payload, metadata
         from events where aggregate_type = 'Wallet' and aggregate_id = $1",
    )
    .bind(user.to_string())
    .execute(&app.pool)
    .await
    .unwrap();

    let (history, _) = get_paged(&app, &format!("/audit/streams/Wallet/{user}")).await;

    let sequences: Vec<i64> = history["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(sequences, [0, 1]);
}
