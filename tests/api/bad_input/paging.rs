//! Seat paging: limits and cursors out of range or unparsable, and walking
//! every free seat exactly once.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::seats_path;
use crate::helpers::{assert_problem_for, spawn_app, Concert, TestApp, User};

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
        // Beyond every integer type: out of range too, not malformed.
        "limit=99999999999999999999",
        "limit=-99999999999999999999",
        "after_seat_no=99999999999999999999",
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
async fn a_start_beyond_every_seat_is_an_empty_last_page_and_blank_values_mean_the_defaults() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let path = seats_path(&concert, 0);
    for query in ["after_seat_no=3000000000", "after_seat_no=99999999999"] {
        let page = app
            .get_json(&format!("{path}?{query}"), Some(&user.token))
            .await;
        assert_eq!(
            page,
            json!({"seats": [], "next_after_seat_no": null}),
            "{query}"
        );
    }
    // The contract's own template, `?after_seat_no=&limit=`, is the first page.
    let blank = app
        .get_json(&format!("{path}?after_seat_no=&limit="), Some(&user.token))
        .await;
    let plain = app.get_json(&path, Some(&user.token)).await;
    assert_eq!(blank["seats"].as_array().map(Vec::len), Some(5), "{blank}");
    assert_eq!(blank, plain);
}

#[tokio::test]
async fn an_unparsable_seat_page_is_a_bad_request() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 10_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let path = seats_path(&concert, 0);
    for query in ["limit=abc", "limit=1.5", "after_seat_no=x"] {
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
        let seat = seats.iter().find(|s| s.seat_no == seat_no).unwrap();
        let response = app.hold(&user, &seat.seat_id.to_string()).await;
        assert_eq!(response.status, StatusCode::CREATED);
    }
    let pages = walk_seats(&app, &user, &concert, 10).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![10, 10, 1]
    );
    let expected: Vec<i64> = (1..=25).filter(|n| ![1, 10, 11, 25].contains(n)).collect();
    assert_eq!(pages.concat(), expected);
}
