//! Paging the log backwards (`before`), as the auditors' page does for its
//! previous and newest pages, and from a position past the log's end.

use reqwest::StatusCode;

use super::audit::booking_history;
use crate::helpers::{assert_problem, spawn_app, TestApp, ADMIN_TOKEN};

async fn positions(app: &TestApp, query: &str) -> Vec<i64> {
    let page = app
        .get_json(&format!("/audit/events?{query}"), Some(ADMIN_TOKEN))
        .await;
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["position"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn the_page_before_a_position_ends_just_before_it_in_commit_order() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let all = positions(&app, "limit=1000").await;
    assert!(all.len() > 10, "{all:?}");

    let newest = positions(&app, &format!("before={}&limit=5", i64::MAX)).await;
    assert_eq!(newest, all[all.len() - 5..]);
    let before_those = positions(&app, &format!("before={}&limit=5", newest[0])).await;
    assert_eq!(before_those, all[all.len() - 10..all.len() - 5]);
    // Near the start, a shorter page; before the first, none.
    assert_eq!(positions(&app, "before=3&limit=5").await, [1, 2]);
    assert!(positions(&app, "before=1").await.is_empty());

    let both = app
        .get("/audit/events?after=1&before=5", Some(ADMIN_TOKEN))
        .await;
    assert_problem(both, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

/// An `after` past the log's end is answered with the end as `next`, so a
/// client paging on from it sees the events committed later. Before, `next`
/// repeated the made-up position, and the events up to it were skipped.
#[tokio::test]
async fn paging_from_past_the_log_s_end_goes_on_from_the_end() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let all = positions(&app, "limit=1000").await;
    let end = *all.last().unwrap();

    let page = app
        .get_json(
            &format!("/audit/events?after={}", end + 1000),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(page["events"].as_array().unwrap().len(), 0, "{page}");
    assert_eq!(page["next"], end, "{page}");
    let at_end = app
        .get_json(&format!("/audit/events?after={end}"), Some(ADMIN_TOKEN))
        .await;
    assert_eq!(at_end["next"], end, "{at_end}");

    booking_history(&app).await;
    let later = positions(&app, &format!("after={}", page["next"])).await;
    assert_eq!(later.first(), Some(&(end + 1)), "{later:?}");
}
