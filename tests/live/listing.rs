//! The seat listing answered from the live feed's memory: a client lists
//! what its own hold, sale or payment left at once, and what another
//! instance did within the feed's lag.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::harness::*;

/// How long another instance's commit may take to show in a listing.
const OTHER_INSTANCE_WAIT: Duration = Duration::from_secs(5);

pub(super) fn listing_path(concert_id: &str, date_id: &str) -> String {
    format!("/concerts/{concert_id}/dates/{date_id}/seats")
}

impl Instance {
    /// GET `path` with `token`: the status and the body.
    pub(super) async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// POST `path` with `token` and `body`: the status and the body.
    pub(super) async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// The numbers of the date's free seats.
    pub(super) async fn free_seat_numbers(
        &self,
        token: &str,
        concert_id: &str,
        date_id: &str,
    ) -> Vec<u64> {
        let (status, page) = self.get(&listing_path(concert_id, date_id), token).await;
        assert_eq!(status, 200, "{page}");
        page["seats"]
            .as_array()
            .unwrap()
            .iter()
            .map(|seat| seat["seat_no"].as_u64().unwrap())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_hold_is_gone_from_the_next_listing_at_once() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(12).await;
    let token = service.active_token(&concert_id).await;
    let mut expected: Vec<u64> = (1..=12).collect();
    assert_eq!(
        service
            .free_seat_numbers(&token, &concert_id, &date_id)
            .await,
        expected
    );

    // Each listing follows its hold's answer at once, before the feed can
    // have read the log: only the instance's own commit can have updated it.
    for seat_no in [3, 7, 1, 12, 5, 9, 2, 11, 4, 10] {
        service.hold(&token, &concert_id, &date_id, seat_no).await;
        expected.retain(|no| *no != u64::from(seat_no));
        assert_eq!(
            service
                .free_seat_numbers(&token, &concert_id, &date_id)
                .await,
            expected,
            "right after holding seat {seat_no}"
        );
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_spent_by_a_payment_lists_nothing_at_once() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(3).await;
    let token = service.active_token(&concert_id).await;
    let watcher = service.active_token(&concert_id).await;
    let reservation = service.hold(&token, &concert_id, &date_id, 2).await;
    assert_eq!(
        service
            .free_seat_numbers(&token, &concert_id, &date_id)
            .await,
        vec![1, 3]
    );

    service.pay(&token, &reservation).await;

    let (status, problem) = service
        .get(&listing_path(&concert_id, &date_id), &token)
        .await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(
        service
            .free_seat_numbers(&watcher, &concert_id, &date_id)
            .await,
        vec![1, 3],
        "the sold seat stays out of the listing"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_instances_hold_and_payment_reach_its_listing() {
    let pool = fresh_database().await;
    let first = start(&pool, config()).await;
    let second = start(&pool, config()).await;
    let (concert_id, date_id) = first.concert(4).await;
    let holder = first.active_token(&concert_id).await;
    let watcher = first.active_token(&concert_id).await;
    // The second instance has the date and both tickets in memory.
    for token in [&holder, &watcher] {
        assert_eq!(
            second.free_seat_numbers(token, &concert_id, &date_id).await,
            vec![1, 2, 3, 4]
        );
    }

    let reservation = first.hold(&holder, &concert_id, &date_id, 4).await;
    first.pay(&holder, &reservation).await;

    let started = Instant::now();
    loop {
        let seats = second
            .free_seat_numbers(&watcher, &concert_id, &date_id)
            .await;
        let (spent, _) = second
            .get(&listing_path(&concert_id, &date_id), &holder)
            .await;
        if seats == [1, 2, 3] && spent == 401 {
            break;
        }
        assert!(
            started.elapsed() < OTHER_INSTANCE_WAIT,
            "the second instance still lists {seats:?} and answers {spent} to the spent token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dates_listing_counts_each_hold_at_once() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(2).await;
    let token = service.active_token(&concert_id).await;
    let path = format!("/concerts/{concert_id}/dates");
    let available = |dates: &Value| -> Vec<(String, i64)> {
        dates["dates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|date| {
                let id = date["date_id"].as_str().unwrap().to_string();
                (id, date["available_seats"].as_i64().unwrap())
            })
            .collect()
    };
    assert_eq!(
        available(&service.send("GET", &path, &token, None).await),
        vec![(date_id.clone(), 2)]
    );

    service.hold(&token, &concert_id, &date_id, 1).await;
    assert_eq!(
        available(&service.send("GET", &path, &token, None).await),
        vec![(date_id.clone(), 1)]
    );
    service.hold(&token, &concert_id, &date_id, 2).await;
    assert_eq!(
        available(&service.send("GET", &path, &token, None).await),
        vec![],
        "a date without a free seat is not bookable"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_made_before_its_date_is_first_listed_is_not_listed_as_free() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(3).await;
    let token = service.active_token(&concert_id).await;
    // The positioner's lock, held here, keeps the hold from the feed while
    // the date's map is read for the first time (nobody listed it before).
    let positioner = positioner_held(&pool).await;
    let seat_id: uuid::Uuid =
        sqlx::query_scalar("select seat_id from seats where date_id = $1::uuid and seat_no = 2")
            .bind(&date_id)
            .fetch_one(&pool)
            .await
            .unwrap();

    let (status, held) = service
        .post(
            "/reservations",
            &token,
            serde_json::json!({"seat_id": seat_id}),
        )
        .await;
    let free = service
        .free_seat_numbers(&token, &concert_id, &date_id)
        .await;
    positioner.rollback().await.unwrap();

    assert_eq!(status, 201, "{held}");
    assert_eq!(free, vec![1, 3], "the own hold is listed as free");
    service.stop().await;
}
