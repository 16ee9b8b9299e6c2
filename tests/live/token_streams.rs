//! A queue token's own streams: its standing follows it from waiting to
//! active and is sent once while nothing changes, a lapsed token's streams
//! end on its recorded expiry, and one token opens a few streams, not
//! thousands, getting back at once the places of streams whose clients went.

use std::time::Duration;

use serde_json::Value;

use super::harness::*;

/// A service that admits one token at a time, each active for
/// `active_secs`, a concert, and the concert's first (active) token.
async fn line_of_one(active_secs: u64) -> (Instance, String, String) {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.queue_active_max = 1;
    settings.queue_active_ttl_secs = active_secs;
    let service = start(&pool, settings).await;
    let (concert_id, _) = service.concert(2).await;
    let first = service.active_token(&concert_id).await;
    (service, concert_id, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standing_stream_follows_the_token_from_waiting_to_active() {
    let (service, concert_id, first) = line_of_one(2).await;
    let (_, _, second) = service.queued_user(&concert_id).await;
    let mut events = service
        .subscribe("/queue/tokens/current/events", &second, None)
        .await;

    let waiting = events.next().await.unwrap();
    assert_eq!(waiting.event, "standing");
    assert_eq!(waiting.data["status"], "waiting");
    assert_eq!(waiting.data["position"], 0);
    assert_eq!(waiting.data["token"], second.as_str());

    // The first token times out after 2 s; the second is admitted then (a
    // new estimate of the wait may come first).
    let mut active = events.next().await.unwrap();
    while active.data["status"] == "waiting" {
        active = events.next().await.unwrap();
    }
    assert_eq!(active.data["status"], "active", "{active:?}");
    assert!(active.data["expires_at"].is_string());
    drop(first);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_subscribed_to_at_once_is_sent_once_while_nothing_changes() {
    // Nobody is admitted during the test.
    let (service, concert_id, _first) = line_of_one(600).await;
    for _ in 0..3 {
        // Subscribed while the entry may still be on its way to the feed.
        let (_, _, waiting) = service.queued_user(&concert_id).await;
        let mut events = service
            .subscribe("/queue/tokens/current/events", &waiting, None)
            .await;
        let standing = events.next().await.unwrap();
        assert_eq!(standing.data["status"], "waiting");
        let again = events.next_within(Duration::from_secs(2)).await;
        assert!(again.is_none(), "sent again: {again:?} after {standing:?}");
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standing_is_sent_for_a_new_status_position_or_expiry_not_for_a_new_estimate_alone() {
    let (service, concert_id, _first) = line_of_one(2).await;
    for _ in 0..2 {
        service.queued_user(&concert_id).await;
    }
    let (_, _, last) = service.queued_user(&concert_id).await;
    let mut events = service
        .subscribe("/queue/tokens/current/events", &last, None)
        .await;

    // Each 2 s the active token lapses and the next is admitted: the
    // admissions change the estimate as the line moves. (An estimate that
    // drifts by a quarter and 5 s is sent alone; not in a line this quick.)
    let news = |event: &Sse| {
        let data = &event.data;
        (
            data["status"].clone(),
            data["position"].clone(),
            data["expires_at"].clone(),
        )
    };
    let mut sent = vec![events.next().await.unwrap()];
    while sent.last().unwrap().data["status"] == "waiting" {
        sent.push(events.next().await.unwrap());
    }
    for pair in sent.windows(2) {
        assert_ne!(news(&pair[0]), news(&pair[1]), "sent again: {sent:#?}");
    }
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_token_s_stream_ends_on_its_recorded_expiry_with_that_event_s_position() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.queue_active_ttl_secs = 2;
    let service = start(&pool, settings).await;
    let (concert_id, _) = service.concert(2).await;
    let token = service.active_token(&concert_id).await;
    let mut standing = service
        .subscribe("/queue/tokens/current/events", &token, None)
        .await;

    let mut last = standing.next().await.unwrap();
    while let Some(event) = standing.next().await {
        last = event;
    }

    // The last standing is what the token's own query says, and its id
    // covers every event of the ticket, the scheduler's expiry included.
    assert_eq!(last.data["status"], "expired", "{last:?}");
    // An EventSource reconnects when a stream ends: not for an hour, as
    // the token is over.
    assert_eq!(last.retry, Some(3_600_000), "{last:?}");
    let own = service
        .send("GET", "/queue/tokens/current", &token, None)
        .await;
    assert_eq!(last.data, own);
    let ticket_id = token.split('.').next().unwrap();
    let history = service
        .send(
            "GET",
            &format!("/audit/streams/QueueTicket/{ticket_id}"),
            ADMIN,
            None,
        )
        .await;
    let events = history["events"].as_array().unwrap();
    assert_eq!(events.last().unwrap()["event_type"], "TicketExpired");
    let expired_at = events.last().unwrap()["position"].as_i64().unwrap();
    assert!(
        last.id.parse::<i64>().unwrap() >= expired_at,
        "id {} before TicketExpired at {expired_at}",
        last.id
    );
    service.stop().await;
}

const PER_TOKEN: usize = concert::live::stream_permits::STREAMS_PER_TOKEN;

/// A service, a concert, an active token of it and its date's seat stream.
async fn token_on_a_date() -> (Instance, String, String, String) {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(5).await;
    let token = service.active_token(&concert_id).await;
    (
        service,
        concert_id.clone(),
        token,
        seats_path(&concert_id, &date_id),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_opens_a_few_event_streams_not_thousands() {
    let (service, concert_id, token, seats) = token_on_a_date().await;
    let standing = "/queue/tokens/current/events";

    // Both kinds count: a page opens one of each.
    let mut open = Vec::new();
    for n in 0..PER_TOKEN {
        let path = if n % 2 == 0 { seats.as_str() } else { standing };
        open.push(service.subscribe(path, &token, None).await);
    }
    for path in [seats.as_str(), standing] {
        let refused = service.open_stream(path, &token).await;
        assert_eq!(refused.status(), 429, "{path}");
        assert_eq!(refused.headers()["retry-after"], "5", "{path}");
        let problem: Value = refused.json().await.unwrap();
        assert_eq!(problem["code"], "rate_limited", "{problem}");
    }
    // Another user's token is not held back.
    let other = service.active_token(&concert_id).await;
    let mut theirs = service.subscribe(&seats, &other, None).await;
    assert_eq!(theirs.next().await.unwrap().event, "snapshot");

    // A stream that ends gives its place back.
    drop(open.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answer = service.open_stream(standing, &token).await;
        if answer.status() == 200 {
            break;
        }
        assert_eq!(answer.status(), 429);
        assert!(
            std::time::Instant::now() < deadline,
            "the place never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_whose_clients_went_give_their_places_to_a_reloaded_page_at_once() {
    let (service, _, token, seats) = token_on_a_date().await;

    // Each down a kept-alive connection, as a browser asks: the connection
    // served a request before. Then every client goes (a page reloaded).
    let mut clients = Vec::new();
    for _ in 0..PER_TOKEN {
        let client = reqwest::Client::new();
        let health = client
            .get(format!("{}/healthz", service.base))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        let stream = client
            .get(format!("{}/api/v1{seats}", service.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        clients.push((client, stream));
    }
    drop(clients);

    // Before, their places stayed taken until the second comment after the
    // clients went failed to write: about 18 s of 429.
    let started = std::time::Instant::now();
    let reloaded = service.open_stream(&seats, &token).await;
    assert_eq!(reloaded.status(), 200, "after {:?}", started.elapsed());
    service.stop().await;
}

/// Nothing in the log marks a concert's last date beginning, yet the line
/// must learn that nothing is left to book: a waiting standing says so
/// within a look (every 5 s) and a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_standing_is_told_once_its_concert_has_nothing_left_to_book() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.queue_active_max = 1;
    let service = start(&pool, settings).await;
    let starts_at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let body = serde_json::json!({"title": "Matinee",
        "dates": [{"starts_at": starts_at.to_rfc3339(), "seats": 2, "price": 1000}]});
    let concert = service.send("POST", "/concerts", ADMIN, Some(body)).await;
    let concert_id = concert["concert_id"].as_str().unwrap();
    let _first = service.active_token(concert_id).await;
    let (_, _, waiting) = service.queued_user(concert_id).await;
    let mut events = service
        .subscribe("/queue/tokens/current/events", &waiting, None)
        .await;

    let before = events.next().await.unwrap();
    assert_eq!(before.data["status"], "waiting");
    assert_eq!(before.data["sold_out"], false, "{before:?}");
    let told = events.next_within(Duration::from_secs(9)).await;

    let told = told.expect("a standing saying the concert is sold out");
    assert_eq!(told.data["sold_out"], true, "{told:?}");
    assert_eq!(told.data["status"], "waiting");
    assert_eq!(told.data["position"], before.data["position"]);
    service.stop().await;
}

/// The last seat sold admits the next token in line at once: its standing
/// says active, and must say sold out too, soon, though the instance that
/// streams it knew seats were left a moment before (here it is not the one
/// that took the payment, so it learns of the sale from the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_admitted_by_the_last_sale_is_told_soon_that_nothing_is_left() {
    let pool = fresh_database().await;
    let mut settings = config();
    settings.queue_active_max = 1;
    let selling = start(&pool, settings.clone()).await;
    let watching = start(&pool, settings).await;
    let (concert_id, date_id) = selling.concert(1).await;
    let buyer = selling.active_token(&concert_id).await;
    let (_, _, next) = selling.queued_user(&concert_id).await;
    let mut events = watching
        .subscribe("/queue/tokens/current/events", &next, None)
        .await;
    let waiting = events.next().await.unwrap();
    assert_eq!(waiting.data["status"], "waiting");
    assert_eq!(waiting.data["sold_out"], false, "{waiting:?}");

    let reservation = selling.hold(&buyer, &concert_id, &date_id, 1).await;
    selling.pay(&buyer, &reservation).await;
    let sold = std::time::Instant::now();

    // Within a second, not at the next look for a last date beginning (5 s).
    let mut last = None;
    while sold.elapsed() < Duration::from_secs(2) {
        match events.next_within(Duration::from_millis(200)).await {
            Some(standing) if standing.data["sold_out"] == true => {
                assert!(sold.elapsed() < Duration::from_secs(1), "{standing:?}");
                selling.stop().await;
                watching.stop().await;
                return;
            }
            Some(standing) => last = Some(standing),
            None => {}
        }
    }
    panic!("still not told it sold out 2 s after the sale; last standing: {last:?}");
}

/// The buyer of a concert's last seat: its payment ends its token, and the
/// stream's last standing says the concert sold out. It said `sold_out:
/// false` (a memory of seats left, a moment old) and then ended, while every
/// other token of the concert was told `true` a moment later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buyer_of_the_last_seat_is_told_on_its_last_standing_that_nothing_is_left() {
    let pool = fresh_database().await;
    let service = start(&pool, config()).await;
    let (concert_id, date_id) = service.concert(1).await;
    let buyer = service.active_token(&concert_id).await;
    let mut events = service
        .subscribe("/queue/tokens/current/events", &buyer, None)
        .await;
    let first = events.next().await.unwrap();
    assert_eq!(first.data["sold_out"], false, "{first:?}");

    let reservation = service.hold(&buyer, &concert_id, &date_id, 1).await;
    service.pay(&buyer, &reservation).await;
    let mut last = first;
    while let Some(event) = events.next_within(Duration::from_secs(10)).await {
        last = event;
    }
    assert_eq!(last.data["status"], "expired", "{last:?}");
    assert_eq!(last.data["sold_out"], true, "{last:?}");
    service.stop().await;
}
