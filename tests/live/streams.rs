//! The seat streams: a snapshot then each change, across instances, in log
//! order, resumed by `Last-Event-ID`, and ended cleanly when the service stops.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use super::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_stream_sends_a_snapshot_then_each_hold_and_sale() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(5).await;
    let token = service.active_token(&concert_id).await;
    let mut events = service
        .subscribe(&seats_path(&concert_id, &date_id), &token, None)
        .await;

    let snapshot = events.next().await.unwrap();
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!(snapshot.data["seats"], "FFFFF");
    assert_eq!(snapshot.data["total_seats"], 5);
    let reservation = service.hold(&token, &concert_id, &date_id, 2).await;
    assert_eq!(events.next_changes().await, vec![(2, "held".to_string())]);
    service.pay(&token, &reservation).await;
    assert_eq!(events.next_changes().await, vec![(2, "sold".to_string())]);
    // Paying spent the token: its stream ends after the sale.
    assert!(
        events.next().await.is_none(),
        "the spent token's stream ends"
    );

    let again = service
        .subscribe(
            &seats_path(&concert_id, &date_id),
            &service.active_token(&concert_id).await,
            None,
        )
        .await
        .next()
        .await
        .unwrap();
    assert_eq!(again.data["seats"], "FSFFF");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compact_format_sends_each_change_as_its_number_and_letter() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(3).await;
    let token = service.active_token(&concert_id).await;
    let path = format!("{}?changes=compact", seats_path(&concert_id, &date_id));
    let mut events = service.subscribe(&path, &token, None).await;
    let snapshot = events.next().await.unwrap();
    assert_eq!(snapshot.data["seats"], "FFF");

    service.hold(&token, &concert_id, &date_id, 3).await;
    let change = events.next().await.unwrap();
    assert_eq!(
        (change.event.as_str(), &change.data),
        ("seat-changes", &json!("3H"))
    );

    // A reconnect in the compact format replays in it.
    let mut resumed = service.subscribe(&path, &token, Some(&snapshot.id)).await;
    let replayed = resumed.next().await.unwrap();
    assert_eq!(
        (replayed.event.as_str(), replayed.id),
        ("seat-changes", change.id)
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_through_one_instance_reaches_a_subscriber_of_another() {
    let pool = fresh_database().await;
    let first = start(&pool, config()).await;
    let second = start(&pool, config()).await;
    let (concert_id, date_id) = first.concert(3).await;
    let watcher = first.active_token(&concert_id).await;
    let holder = first.active_token(&concert_id).await;
    let mut events = second
        .subscribe(&seats_path(&concert_id, &date_id), &watcher, None)
        .await;
    assert_eq!(events.next().await.unwrap().data["seats"], "FFF");

    first.hold(&holder, &concert_id, &date_id, 3).await;

    assert_eq!(events.next_changes().await, vec![(3, "held".to_string())]);
    first.stop().await;
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_positioned_elsewhere_and_by_the_feed_reach_a_subscriber_in_log_order() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(3).await;
    let token = service.active_token(&concert_id).await;
    let mut events = service
        .subscribe(&seats_path(&concert_id, &date_id), &token, None)
        .await;
    assert_eq!(events.next().await.unwrap().data["seats"], "FFF");

    // Seat 1 is held by another writer, and its event is positioned outside
    // the feed (as an auditor's read of the log does); seat 2 through the
    // service, whose feed positions it and has it back from that statement.
    let outside = seat_held_by_another_writer(&pool, &date_id, 1).await;
    concert::event_log::assign_positions(&pool).await.unwrap();
    let reservation = service.hold(&token, &concert_id, &date_id, 2).await;

    let mut pushed = Vec::new();
    while pushed.len() < 2 {
        let event = events.next().await.expect("an event");
        for change in event.data["changes"].as_array().unwrap() {
            pushed.push((event.id.clone(), change["seat_no"].as_u64().unwrap()));
        }
    }
    let held = reservation["seat_id"].as_str().unwrap();
    let (first, second) = (
        log_position(&pool, &outside).await,
        log_position(&pool, held).await,
    );
    assert!(first < second);
    assert_eq!(
        pushed,
        [(first.to_string(), 1), (second.to_string(), 2)],
        "each change once, in log order, its id its position"
    );
    service.stop().await;
}

/// Stores a `SeatHeld` of seat `seat_no` of the date as another program
/// would (no notification, no read model); returns the seat's id.
async fn seat_held_by_another_writer(pool: &PgPool, date_id: &str, seat_no: u32) -> String {
    let seat_id: Uuid =
        sqlx::query_scalar("select seat_id from seats where date_id = $1::uuid and seat_no = $2")
            .bind(date_id)
            .bind(seat_no as i32)
            .fetch_one(pool)
            .await
            .unwrap();
    let now = chrono::Utc::now();
    let payload = json!({"SeatHeld": {
        "reservation_id": Uuid::now_v7(),
        "user_id": Uuid::new_v4(),
        "date_id": date_id,
        "seat_no": seat_no,
        "price": 1000,
        "held_at": now,
        "until": now + chrono::Duration::minutes(5),
    }});
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         values ('Seat', $1, 1, 'SeatHeld', '1', $2, '{}')",
    )
    .bind(seat_id.to_string())
    .bind(payload)
    .execute(pool)
    .await
    .unwrap();
    seat_id.to_string()
}

/// The log position of a seat's first event.
async fn log_position(pool: &PgPool, seat_id: &str) -> i64 {
    sqlx::query_scalar(
        "select position from events where aggregate_type = 'Seat' and aggregate_id = $1 and sequence = 1",
    )
    .bind(seat_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The first event of a stream of `path` opened now (a seat stream's snapshot).
async fn first_event(service: &Instance, path: &str, token: &str) -> Sse {
    service
        .subscribe(path, token, None)
        .await
        .next()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_after_a_missed_hold_replays_it() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(4).await;
    let token = service.active_token(&concert_id).await;
    let path = seats_path(&concert_id, &date_id);
    let snapshot = first_event(&service, &path, &token).await;
    assert_eq!(snapshot.event, "snapshot");

    // The stream is closed; a hold is made meanwhile.
    service.hold(&token, &concert_id, &date_id, 1).await;
    let mut resumed = service.subscribe(&path, &token, Some(&snapshot.id)).await;

    let missed = resumed.next().await.unwrap();
    assert_eq!(
        missed.event, "seats",
        "a replay, not a new snapshot: {missed:?}"
    );
    assert_eq!(missed.data["changes"][0]["seat_no"], 1);
    assert_eq!(missed.data["changes"][0]["status"], "held");
    assert!(missed.id.parse::<i64>().unwrap() > snapshot.id.parse::<i64>().unwrap());
    service.stop().await;
}

/// A client back with nothing missed (a page reconnecting after a
/// restart) is sent a comment at once: it got nothing until the first
/// keep-alive, and the page took the silence for a proxy holding the
/// stream back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_nothing_missed_is_answered_at_once() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(4).await;
    let token = service.active_token(&concert_id).await;
    let path = seats_path(&concert_id, &date_id);
    let snapshot = first_event(&service, &path, &token).await;

    let mut resumed = service.subscribe(&path, &token, Some(&snapshot.id)).await;
    let first = resumed.next_chunk_within(Duration::from_secs(2)).await;

    assert_eq!(first.as_deref(), Some(&b":\n\n"[..]), "{first:?}");
    service.stop().await;
}

/// A client back with an id that another instance gave it, a moment ahead of
/// this instance's feed, resumes from it: a snapshot from before its id
/// would send its map back, and its ids backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_with_an_id_just_ahead_of_the_feed_resumes_from_it() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(4).await;
    let token = service.active_token(&concert_id).await;
    let path = seats_path(&concert_id, &date_id);
    let snapshot = first_event(&service, &path, &token).await;
    let ahead: i64 = snapshot.id.parse::<i64>().unwrap() + 1;
    let ahead_id = ahead.to_string();

    // The hold that takes the log to that id commits just after the
    // reconnect arrives.
    let (mut resumed, _) = tokio::join!(service.subscribe(&path, &token, Some(&ahead_id)), async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        service.hold(&token, &concert_id, &date_id, 1).await
    });
    service.hold(&token, &concert_id, &date_id, 2).await;

    let first = resumed.next().await.unwrap();
    assert_eq!(
        first.event, "seats",
        "no snapshot from before the id sent: {first:?}"
    );
    assert!(first.id.parse::<i64>().unwrap() > ahead, "{first:?}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_shows_no_change_later_than_its_id() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(4).await;
    let token = service.active_token(&concert_id).await;
    let path = seats_path(&concert_id, &date_id);
    // A subscriber loads the date's map, so each hold below shows in it at
    // once as this instance's own commit, before the log brings its copy.
    let mut watching = service.subscribe(&path, &token, None).await;
    watching.next().await.unwrap();

    for seat_no in 1..=3 {
        let reservation = service.hold(&token, &concert_id, &date_id, seat_no).await;
        let mut events = service.subscribe(&path, &token, None).await;
        let snapshot = events.next().await.unwrap();
        let snapshot_id: i64 = snapshot.id.parse().unwrap();
        let held_at = last_position(&pool, reservation["seat_id"].as_str().unwrap()).await;

        let letter = snapshot.data["seats"].as_str().unwrap().as_bytes()[seat_no as usize - 1];
        if held_at <= snapshot_id {
            assert_eq!(letter, b'H', "{snapshot:?}");
        } else {
            assert_eq!(letter, b'F', "the hold at {held_at} in {snapshot:?}");
            let change = events.next().await.unwrap();
            assert_eq!(change.id, held_at.to_string(), "{change:?}");
            assert_eq!(change.data["changes"][0]["seat_no"], seat_no);
        }
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_snapshot_leaves_out_what_another_instance_committed_past_the_feed() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(3).await;
    let token = service.active_token(&concert_id).await;
    // The positioner's lock, taken here, keeps the hold below from being
    // positioned (and so from reaching the feed) until it is given back.
    let positioner = positioner_held(&pool).await;
    // Another instance holds seat 2, read model and all: nobody here
    // watches the date, so its map is read now, past the feed's position.
    let seat_id = seat_held_by_another_writer(&pool, &date_id, 2).await;
    sqlx::query("update seats set status = 'held' where seat_id = $1::uuid")
        .bind(&seat_id)
        .execute(&pool)
        .await
        .unwrap();
    let mut events = service
        .subscribe(&seats_path(&concert_id, &date_id), &token, None)
        .await;

    let snapshot = events.next().await.unwrap();
    assert_eq!(snapshot.data["seats"], "FFF", "{snapshot:?}");
    positioner.rollback().await.unwrap();
    let change = events.next().await.unwrap();
    let held_at = last_position(&pool, &seat_id).await;
    assert!(held_at > snapshot.id.parse::<i64>().unwrap());
    assert_eq!(change.id, held_at.to_string(), "{change:?}");
    assert_eq!(change.data["changes"][0]["seat_no"], 2);
    service.stop().await;
}

/// The log position of a seat's latest event, once it has one.
async fn last_position(pool: &PgPool, seat_id: &str) -> i64 {
    for _ in 0..100 {
        let position: Option<i64> = sqlx::query_scalar(
            "select position from events where aggregate_type = 'Seat' and aggregate_id = $1
             order by sequence desc limit 1",
        )
        .bind(seat_id)
        .fetch_one(pool)
        .await
        .unwrap();
        if let Some(position) = position {
            return position;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the seat's event was never positioned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_expired_by_the_scheduler_reaches_subscribers() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.hold_ttl_secs = 1;
    let service = start(&pool, settings).await;
    let (concert_id, date_id) = service.concert(2).await;
    let token = service.active_token(&concert_id).await;
    let mut events = service
        .subscribe(&seats_path(&concert_id, &date_id), &token, None)
        .await;
    events.next().await.unwrap();

    service.hold(&token, &concert_id, &date_id, 2).await;

    assert_eq!(events.next_changes().await, vec![(2, "held".to_string())]);
    assert_eq!(events.next_changes().await, vec![(2, "free".to_string())]);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_end_cleanly_when_the_service_stops() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(2).await;
    let token = service.active_token(&concert_id).await;
    let mut seats = service
        .subscribe(&seats_path(&concert_id, &date_id), &token, None)
        .await;
    let mut standing = service
        .subscribe("/queue/tokens/current/events", &token, None)
        .await;
    seats.next().await.unwrap();
    standing.next().await.unwrap();

    let stopping = tokio::spawn(service.stop());

    // What was sent before the stop may still be read (a standing sent again
    // as the feed catches up with the admission); then each stream ends.
    for (what, stream) in [("seat", &mut seats), ("standing", &mut standing)] {
        let mut sent_after = 0;
        while stream.next().await.is_some() {
            sent_after += 1;
            assert!(sent_after < 5, "the {what} stream goes on after the stop");
        }
    }
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown is not held up by open streams")
        .unwrap();
}
