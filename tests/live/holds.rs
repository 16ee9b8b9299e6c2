//! Holds beside the live feed's memory: a token spent on this instance holds
//! nothing more at once; a seat another instance just held is refused however
//! far the feed has got; a seat memory shows taken is refused without a query.

use std::time::{Duration, Instant};

use serde_json::json;

use super::harness::*;
use super::listing::listing_path;

const REFUSED_FROM_MEMORY: &str = "concert_holds_refused_from_memory_total ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_spent_by_a_payment_holds_no_more_at_once() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(3).await;
    let token = service.active_token(&concert_id).await;
    let watcher = service.active_token(&concert_id).await;
    let listing = listing_path(&concert_id, &date_id);
    // The listing puts the date and the ticket in memory.
    assert_eq!(service.get(&listing, &token).await.0, 200);
    let reservation = service.hold(&token, &concert_id, &date_id, 1).await;
    assert_eq!(reservation["status"], "held", "{reservation}");

    // The payment expires the token before it is answered, so the very next
    // hold is refused.
    service.pay(&token, &reservation).await;
    let (_, page) = service.get(&listing, &watcher).await;
    let seat = json!({"seat_id": page["seats"][0]["seat_id"]});
    let (status, problem) = service.post("/reservations", &token, seat).await;
    assert_eq!(status, 401, "{problem}");
    assert_eq!(
        service
            .free_seat_numbers(&watcher, &concert_id, &date_id)
            .await,
        vec![2, 3]
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_just_held_through_another_instance_is_refused_whatever_memory_shows() {
    const SEATS: u32 = 12;
    let pool = fresh_database().await;
    let first = start(&pool, config()).await;
    let second = start(&pool, config()).await;
    let (concert_id, date_id) = first.concert(SEATS).await;
    let holder = first.active_token(&concert_id).await;
    let late = first.active_token(&concert_id).await;
    // The second instance has the date and the late ticket in memory.
    let listing = listing_path(&concert_id, &date_id);
    assert_eq!(second.get(&listing, &late).await.0, 200);

    // The second instance's feed learns of each hold some milliseconds after
    // it is answered (NOTIFY, then a read of the log): each hold below comes
    // before or after that, and is refused either way.
    for seat_no in 1..=SEATS {
        let reservation = first.hold(&holder, &concert_id, &date_id, seat_no).await;
        assert_eq!(reservation["status"], "held", "{reservation}");
        // At once, before or after the second instance's feed has seen it.
        let seat = json!({"seat_id": reservation["seat_id"]});
        let (status, problem) = second.post("/reservations", &late, seat).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (409, Some("seat_unavailable")),
            "seat {seat_no}: {problem}"
        );
    }
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_of_a_seat_memory_shows_taken_is_refused_and_a_freed_one_is_not() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.hold_ttl_secs = 3;
    let service = start(&pool, settings).await;
    let (concert_id, date_id) = service.concert(2).await;
    let first = service.active_token(&concert_id).await;
    let second = service.active_token(&concert_id).await;
    let listing = listing_path(&concert_id, &date_id);
    assert_eq!(service.get(&listing, &first).await.0, 200);
    let reservation = service.hold(&first, &concert_id, &date_id, 1).await;
    let refused_before = counter(&service, REFUSED_FROM_MEMORY).await;

    // A listing puts the second ticket in memory; the feed's later copy of
    // its admission may forget it once more, so the pair is tried again.
    let seat = json!({"seat_id": reservation["seat_id"]});
    let started = Instant::now();
    loop {
        assert_eq!(service.get(&listing, &second).await.0, 200);
        let (status, problem) = service.post("/reservations", &second, seat.clone()).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (409, Some("seat_unavailable"))
        );
        if counter(&service, REFUSED_FROM_MEMORY).await > refused_before {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "never refused from memory"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Once the scheduler has expired the hold, memory shows the seat free.
    let started = Instant::now();
    loop {
        let (status, body) = service.post("/reservations", &second, seat.clone()).await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 409, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never free again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.stop().await;
}

/// The value of the instance's metric line starting with `prefix`.
async fn counter(service: &Instance, prefix: &str) -> f64 {
    let text = service
        .client
        .get(format!("{}/metrics", service.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}
