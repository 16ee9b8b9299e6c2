//! A waiting room: the standing streams of many waiting tokens of one
//! concert, placed from one read of the line that they share.

use std::time::Duration;

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_tokens_move_up_together_when_the_line_moves() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.queue_active_max = 1;
    settings.queue_active_ttl_secs = 3;
    let service = start(&pool, settings).await;
    let (concert_id, _) = service.concert(1).await;
    let _first = service.active_token(&concert_id).await;
    let mut watchers = Vec::new();
    for ahead in 0..4 {
        let (_, _, token) = service.queued_user(&concert_id).await;
        let mut events = service
            .subscribe("/queue/tokens/current/events", &token, None)
            .await;
        let standing = events.next().await.unwrap();
        assert_eq!(
            (
                standing.data["status"].as_str(),
                standing.data["position"].as_i64()
            ),
            (Some("waiting"), Some(ahead)),
        );
        // What the stream says is what the token's own query says.
        let own = service
            .send("GET", "/queue/tokens/current", &token, None)
            .await;
        assert_eq!(own["position"], standing.data["position"]);
        assert_eq!(
            own["estimated_wait_seconds"],
            standing.data["estimated_wait_seconds"]
        );
        watchers.push(events);
    }

    // The active token times out and the first waiting one is admitted:
    // everyone behind it moves up one place (a new estimate may come first).
    for (ahead, events) in watchers.iter_mut().enumerate() {
        let ahead = ahead as i64;
        let mut standing = events.next().await.unwrap();
        while standing.data["status"] == "waiting" && standing.data["position"] == ahead {
            standing = events.next().await.unwrap();
        }
        if ahead == 0 {
            assert_eq!(standing.data["status"], "active", "{standing:?}");
        } else {
            assert_eq!(
                (
                    standing.data["status"].as_str(),
                    standing.data["position"].as_i64()
                ),
                (Some("waiting"), Some(ahead - 1)),
                "{standing:?}"
            );
        }
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_released_as_unused_moves_up_the_streams_behind_it() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.queue_active_max = 1;
    let service = start(&pool, settings).await;
    let (concert_id, _) = service.concert(1).await;
    let _first = service.active_token(&concert_id).await;
    let _second = service.queued_user(&concert_id).await;
    // A number taken by an entry that another instance is about to refuse.
    let taken: i64 = sqlx::query_scalar(
        "update queue_lines set issued = issued + 1 where concert_id = $1::uuid returning issued",
    )
    .bind(&concert_id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let (_, _, third) = service.queued_user(&concert_id).await;
    let mut events = service
        .subscribe("/queue/tokens/current/events", &third, None)
        .await;
    let standing = events.next().await.unwrap();
    assert_eq!(standing.data["position"], 2, "{standing:?}");

    // That instance records the number as unused: the line moved, with no
    // event in the log.
    let started = sqlx::query_scalar("select pg_postmaster_start_time()")
        .fetch_one(&pool)
        .await
        .unwrap();
    concert::projections::queue_entries::release_entry_no(
        &pool,
        concert_id.parse().unwrap(),
        taken,
        started,
    )
    .await
    .unwrap();

    let moved_up = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let standing = events.next().await.unwrap();
            if standing.data["position"] != 2 {
                return standing;
            }
        }
    })
    .await
    .expect("the stream moves the token up");
    assert_eq!(moved_up.data["position"], 1, "{moved_up:?}");
    let own = service
        .send("GET", "/queue/tokens/current", &third, None)
        .await;
    assert_eq!(own["position"], 1);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_standing_still_sends_its_grown_wait_though_nobody_moved() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.queue_active_max = 2;
    settings.queue_active_ttl_secs = 600;
    let service = start(&pool, settings).await;
    let (concert_id, date_id) = service.concert(20).await;
    let mut active = vec![
        service.active_token(&concert_id).await,
        service.active_token(&concert_id).await,
    ];
    // A burst: six freed slots taken again in quick succession.
    for seat_no in 1..=6 {
        let (_, _, token) = service.queued_user(&concert_id).await;
        let payer = active.remove(0);
        let reservation = service.hold(&payer, &concert_id, &date_id, seat_no).await;
        service.pay(&payer, &reservation).await;
        service.until_active(&token).await;
        active.push(token);
    }

    let (_, _, token) = service.queued_user(&concert_id).await;
    let mut events = service
        .subscribe("/queue/tokens/current/events", &token, None)
        .await;
    let first = events.next().await.unwrap();
    assert_eq!(first.data["position"], 0, "{first:?}");
    let told = first.data["estimated_wait_seconds"].as_i64().unwrap();
    assert!(told <= 3, "the burst's pace: {first:?}");

    // Nobody pays, so nobody moves: the wait that grew is sent all the same,
    // with nothing else changed.
    let grown = events
        .next_within(Duration::from_secs(30))
        .await
        .expect("the grown wait is sent");
    assert_eq!(
        (
            grown.data["status"].as_str(),
            grown.data["position"].as_i64()
        ),
        (Some("waiting"), Some(0)),
        "{grown:?}"
    );
    // Sent once the first was counted down to nothing (its look every 5 s).
    let wait = grown.data["estimated_wait_seconds"].as_i64().unwrap();
    assert!((2..600).contains(&wait), "{grown:?}");
    service.stop().await;
}
