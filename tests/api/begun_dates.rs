//! A date that has begun sells no more seats: a hold made before it begins
//! lasts until it begins at most, and a seat of a begun date cannot be held
//! (`409 seat_unavailable`), so a hold can never be paid for after the
//! start. Both were possible: seats of a date of 2020 were held and paid.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use concert::ids::{DateId, SeatId};
use concert::projections::available_seats;

use super::audit::audit;
use crate::helpers::{
    assert_problem, json_of, spawn_app, spawn_app_with, test_config, Concert, TestApp, ADMIN_TOKEN,
};

/// A concert of one date of three seats at `starts_at`.
async fn concert_starting(app: &TestApp, starts_at: DateTime<Utc>) -> Concert {
    let body = json!({"title": "Matinee", "dates": [
        {"starts_at": starts_at.to_rfc3339(), "seats": 3, "price": 10_000}]});
    let response = app.post("/concerts", Some(ADMIN_TOKEN), body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    Concert {
        concert_id: created["concert_id"].as_str().unwrap().to_string(),
        date_ids: vec![created["dates"][0]["date_id"].as_str().unwrap().to_string()],
    }
}

#[tokio::test]
async fn a_hold_lasts_until_its_date_begins_at_most_and_then_cannot_be_paid() {
    let app = spawn_app().await;
    let starts_at = (Utc::now() + chrono::Duration::seconds(3)).trunc_subsecs(6);
    let concert = concert_starting(&app, starts_at).await;
    let user = app.active_user(&concert.concert_id).await;
    let seats = app.free_seats(&user, &concert, 0).await;
    app.fund(user.user_id, 50_000).await;

    let held = app.hold(&user, &seats[0].seat_id.to_string()).await;
    assert_eq!(held.status, 201);
    let held = json_of(&held);
    let expires_at: DateTime<Utc> = held["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires_at, starts_at, "the hold ends as its date begins");

    tokio::time::sleep((starts_at - Utc::now()).to_std().unwrap_or_default()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let paid = app
        .pay(&user, held["reservation_id"].as_str().unwrap())
        .await;
    assert_eq!(paid.status, 409, "{}", json_of(&paid));
    assert_eq!(json_of(&paid)["code"], "hold_expired");
    assert_eq!(app.balance(user.user_id).await, 50_000);

    // The audit takes a hold its date's beginning cut short as one that
    // lasted a TTL the service ran with.
    let pool = app.shutdown().await;
    concert::event_log::assign_positions(&pool).await.unwrap();
    let report = audit(&pool).await;
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
}

/// A hold its date's start cuts short is recorded as expired at that start,
/// though the scheduler's next look comes later. It was recorded at that
/// look: up to a beat (`CONCERT_SCHEDULER_INTERVAL_MS`) late, since a hold
/// made after a look can end at a start before the next one.
#[tokio::test]
async fn a_hold_its_dates_start_cuts_short_is_recorded_expired_at_the_start() {
    let mut config = test_config();
    config.scheduler_interval_ms = 5_000; // looks at 0 s (start), 5 s, 10 s
    let app = spawn_app_with(config).await;
    let starts_at = (Utc::now() + chrono::Duration::seconds(8)).trunc_subsecs(6);
    let concert = concert_starting(&app, starts_at).await;
    let user = app.active_user(&concert.concert_id).await; // at the 5 s look
    let seats = app.free_seats(&user, &concert, 0).await;
    let held = app.hold(&user, &seats[0].seat_id.to_string()).await;
    assert_eq!(held.status, 201);
    assert!(Utc::now() < starts_at, "held after the start");

    // A second after the start, before the look at 10 s.
    tokio::time::sleep((starts_at - Utc::now()).to_std().unwrap_or_default()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let expired: i64 = sqlx::query_scalar(
        "select count(*) from events where aggregate_type = 'Seat' and event_type = 'HoldExpired'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        expired, 1,
        "HoldExpired is not recorded a second after the start"
    );
}

/// The ids of a date's seats 1..=`seats`, as the service derives them.
fn seat_ids(concert: &Concert, seats: u32) -> Vec<Uuid> {
    let date_id = DateId(concert.date_ids[0].parse().unwrap());
    (1..=seats).map(|no| SeatId::of(date_id, no).0).collect()
}

#[tokio::test]
async fn a_seat_of_a_date_that_has_begun_cannot_be_held() {
    let app = spawn_app().await;
    let concert = concert_starting(&app, Utc::now() - chrono::Duration::days(1)).await;
    let user = app.active_user(&concert.concert_id).await;
    let seats = seat_ids(&concert, 3);

    let path = "/reservations";
    for seat_id in &seats {
        let body = json!({"seat_id": seat_id});
        let response = app.post(path, Some(&user.token), body).await;
        let problem: Value = {
            assert_eq!(response.status(), StatusCode::CONFLICT);
            response.json().await.unwrap()
        };
        assert_eq!(problem["code"], "seat_unavailable");
        assert!(
            problem["detail"].as_str().unwrap().contains("has begun"),
            "{problem}"
        );
    }
    // With a key too, and nothing was held.
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(&user.token)
        .header("idempotency-key", Uuid::new_v4().to_string())
        .json(&json!({"seat_id": seats[0]}))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::CONFLICT, "seat_unavailable").await;
    let held: i64 = sqlx::query_scalar("select count(*) from reservations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(held, 0);
}

/// The seat listing offers only seats that can be held: none of a date that
/// has begun (it listed all three, each then refused with `409`).
#[tokio::test]
async fn a_date_that_has_begun_lists_no_free_seats() {
    let app = spawn_app().await;
    let concert = concert_starting(&app, Utc::now() - chrono::Duration::days(1)).await;
    let user = app.active_user(&concert.concert_id).await;
    let listing = app
        .get(
            &format!(
                "/concerts/{}/dates/{}/seats",
                concert.concert_id, concert.date_ids[0]
            ),
            Some(&user.token),
        )
        .await;
    assert_eq!(listing.status(), StatusCode::OK);
    let page: Value = listing.json().await.unwrap();
    assert_eq!(page, json!({"seats": [], "next_after_seat_no": null}));
}

/// The listing read from the database (when the live feed is behind) agrees:
/// the same date lists its seats until it begins and none from then on.
#[tokio::test]
async fn the_database_s_listing_ends_as_the_date_begins() {
    let app = spawn_app().await;
    let starts_at = (Utc::now() + chrono::Duration::hours(1)).trunc_subsecs(6);
    let concert = concert_starting(&app, starts_at).await;
    let user = app.active_user(&concert.concert_id).await;
    let ticket_id: Uuid =
        sqlx::query_scalar("select ticket_id from queue_tickets where user_id = $1")
            .bind(user.user_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let (concert_id, date_id) = (
        concert.concert_id.parse().unwrap(),
        concert.date_ids[0].parse().unwrap(),
    );
    let list_at = |now: DateTime<Utc>| {
        available_seats::free_seats_for_ticket(
            &app.pool, ticket_id, concert_id, date_id, 0, 10, now,
        )
    };
    let before = list_at(starts_at - chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(before.unwrap().seats.map(|seats| seats.len()), Some(3));
    for now in [starts_at, starts_at + chrono::Duration::days(1)] {
        let after = list_at(now).await.unwrap().unwrap();
        assert_eq!(after.seats.map(|seats| seats.len()), Some(0), "at {now}");
    }
}
