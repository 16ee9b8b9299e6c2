//! The estimated wait a waiting token is told (README, "Estimated wait"),
//! measured against the admissions the scheduler really makes.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{json_of, spawn_app_with, test_config, User};

fn place_and_wait(body: &Value) -> (i64, i64) {
    (
        body["position"].as_i64().unwrap(),
        body["estimated_wait_seconds"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn estimated_waits_count_the_free_slots_then_the_slots_freed_lately() {
    let mut config = test_config();
    config.queue_active_max = 2;
    config.queue_active_ttl_secs = 600;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let started = Instant::now();

    // Free slots are taken at the scheduler's next round (50 ms, so 1 s).
    let first = User {
        user_id: Uuid::new_v4(),
        token: String::new(),
    };
    let (_, entered) = app.enter_queue(first.user_id, &concert.concert_id).await;
    assert_eq!(entered["status"], "waiting");
    assert_eq!(entered["estimated_wait_seconds"], 1);
    let first = User {
        token: entered["token"].as_str().unwrap().to_string(),
        ..first
    };
    let (_, second) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    assert_eq!(second["estimated_wait_seconds"], 1);
    app.wait_until_active(&first.token).await;
    app.wait_until_active(second["token"].as_str().unwrap())
        .await;

    // Both admissions filled slots that were free from the start, so no slot
    // has freed yet: the next two wait for the worst case, the active tokens
    // timing out. (Counted as the line moving, they read as one place per
    // 30 s, as a sale's first round of a hundred read as "a second".)
    let (_, third) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let (_, fourth) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let fourth_token = fourth["token"].as_str().unwrap();
    // (The second's token lapses 600 s after its admission, a moment ago,
    // and its slot is taken within two beats of 50 ms after.)
    let worst = 600 - started.elapsed().as_secs() as i64..=601;
    for (ahead, body) in [&third, &fourth].into_iter().enumerate() {
        let (place, wait) = place_and_wait(body);
        assert_eq!(place, ahead as i64);
        assert!(worst.contains(&wait), "told {wait}, not {worst:?}");
    }

    // The first pays, which ends its token: the third takes the freed slot,
    // and the line's pace is one place since its first admission.
    app.fund(first.user_id, 1000).await;
    let seat = app.first_free_seat(&first, &concert).await;
    let held = json_of(&app.hold(&first, &seat).await);
    let paid = app
        .pay(&first, held["reservation_id"].as_str().unwrap())
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text());
    app.wait_until_active(third["token"].as_str().unwrap())
        .await;
    let since_first_entered = started.elapsed().as_secs_f64().ceil() as i64;
    let fourth = app
        .get_json("/queue/tokens/current", Some(fourth_token))
        .await;
    let (place, wait) = place_and_wait(&fourth);
    assert_eq!(place, 0);
    assert!(
        (1..=since_first_entered).contains(&wait),
        "one place in at most {since_first_entered} s, told {wait}"
    );
    let (_, fifth) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let (place, wait_behind) = place_and_wait(&fifth);
    assert_eq!(place, 1);
    assert!(
        (2 * wait - 1..=2 * wait + 1).contains(&wait_behind),
        "two places at {wait} s each, told {wait_behind}"
    );
}

#[tokio::test]
async fn the_worst_case_counts_down_to_the_active_token_s_lapse() {
    let mut config = test_config();
    config.queue_active_max = 1;
    config.queue_active_ttl_secs = 8;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let _active = app.active_user(&concert.concert_id).await;
    let admitted = Instant::now();
    let (_, waiting) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let token = waiting["token"].as_str().unwrap();
    // The TTL, and a beat (50 ms) each to record the lapse and fill the slot.
    assert!(waiting["estimated_wait_seconds"].as_i64().unwrap() <= 9);

    // A whole TTL at first; 4 s on, what is left of it, not the whole again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let left = 8 - admitted.elapsed().as_secs() as i64;
    let standing = app.get_json("/queue/tokens/current", Some(token)).await;
    assert_eq!(standing["status"], "waiting");
    let told = standing["estimated_wait_seconds"].as_i64().unwrap();
    assert!((1..=left + 1).contains(&told), "{left} s left, told {told}");
}

#[tokio::test]
async fn a_line_standing_still_after_a_burst_is_not_told_the_burst_s_pace() {
    let mut config = test_config();
    config.queue_active_max = 2;
    config.queue_active_ttl_secs = 600;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 20, 10).await;
    let started = Instant::now();
    let mut active = vec![
        app.active_user(&concert.concert_id).await,
        app.active_user(&concert.concert_id).await,
    ];

    // Six freed slots taken again in quick succession: each time one who
    // waits is admitted because an active holder paid.
    const BURST: i64 = 6;
    for _ in 0..BURST {
        let user_id = Uuid::new_v4();
        let (_, entered) = app.enter_queue(user_id, &concert.concert_id).await;
        let token = entered["token"].as_str().unwrap().to_string();
        let payer = active.remove(0);
        app.fund(payer.user_id, 10).await;
        let seat = app.first_free_seat(&payer, &concert).await;
        let held = json_of(&app.hold(&payer, &seat).await);
        let paid = app
            .pay(&payer, held["reservation_id"].as_str().unwrap())
            .await;
        assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.text());
        app.wait_until_active(&token).await;
        active.push(User { user_id, token });
    }
    let last_admission_seen = Instant::now();

    // Counted from the line's first admission, not over the whole minute.
    let (_, waiting) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let token = waiting["token"].as_str().unwrap();
    let pace_secs =
        |elapsed: Duration| (elapsed.as_millis() as i64 + 1000 * BURST - 1) / (1000 * BURST);
    let by_rate = pace_secs(started.elapsed());
    assert_eq!(waiting["position"], 0);
    assert!(
        waiting["estimated_wait_seconds"].as_i64().unwrap() <= by_rate,
        "{BURST} admissions in {:?}: {waiting}",
        started.elapsed()
    );

    // Then nobody pays: the burst's pace no longer holds.
    tokio::time::sleep(Duration::from_secs(8)).await;
    // At most what the server measures when it answers (it admitted before this saw it).
    let still_ms = last_admission_seen.elapsed().as_millis() as i64 - 50;
    let standing = app.get_json("/queue/tokens/current", Some(token)).await;
    let told = standing["estimated_wait_seconds"].as_i64().unwrap();
    assert!(told > pace_secs(started.elapsed()), "told {told} s");
    assert!(
        told >= (still_ms / 2 + 999) / 1000 && told < 600,
        "standing still for {still_ms} ms: told {told} s"
    );
}

#[tokio::test]
async fn a_line_admitting_several_a_round_tells_the_first_in_line_a_round_s_gap() {
    let mut config = test_config();
    config.queue_active_max = 3;
    config.queue_active_ttl_secs = 4;
    // Rounds a second apart: the entries below all come before one round,
    // so the line admits three at a time, each round when the last lapses.
    config.scheduler_interval_ms = 1000;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let entries =
        join_all((0..9).map(|_| app.enter_queue(Uuid::new_v4(), &concert.concert_id))).await;
    let mut tokens: Vec<String> = entries
        .iter()
        .map(|(_, body)| body["token"].as_str().unwrap().to_string())
        .collect();
    // Once the first round admitted three, none moves for 4 s.
    let first = entries
        .iter()
        .position(|(_, body)| body["position"] == 0)
        .unwrap();
    app.wait_until_active(&tokens[first]).await;
    let mut by_place = Vec::new();
    for token in &tokens {
        let standing = app.get_json("/queue/tokens/current", Some(token)).await;
        by_place.push((standing["status"] == "active", place_and_wait(&standing).0));
    }
    // In line order: the three admitted first, then the waiting by position.
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&i| (!by_place[i].0, by_place[i].1));
    tokens = order.into_iter().map(|i| tokens[i].clone()).collect();

    // Nobody pays: 4 s on, the first three lapse and the next three take
    // their slots in one round.
    app.wait_until_active(&tokens[3]).await;
    let round_seen = Instant::now();
    let first_in_line = app
        .get_json("/queue/tokens/current", Some(&tokens[6]))
        .await;
    let (place, told) = place_and_wait(&first_in_line);
    assert_eq!(place, 0, "{first_in_line}");
    // The next round comes when these three lapse, 4 s after the last, and
    // a beat (1 s) each to record it and fill the slots; by places (three
    // in a round), 2 s.
    let since_round = round_seen.elapsed().as_secs_f64();
    assert!(
        (5..=6).contains(&told),
        "a round of three every 4-6 s, {since_round:.2} s into one: told {told}"
    );
    let third_in_line = app
        .get_json("/queue/tokens/current", Some(&tokens[8]))
        .await;
    assert_eq!(place_and_wait(&third_in_line), (2, told), "the same round");
    let (_, behind) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let (place, told_behind) = place_and_wait(&behind);
    assert_eq!(place, 3);
    assert!(
        (told + 4..=told + 6).contains(&told_behind),
        "the round after: told {told_behind}"
    );

    // Two seconds on, the next round is 2-4 s away.
    let first_told = told;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let midway = app
        .get_json("/queue/tokens/current", Some(&tokens[6]))
        .await;
    let (_, told) = place_and_wait(&midway);
    assert!((2..=4).contains(&told), "told {told}");
    // And it comes within the first wait told (counted as 4 s a round, it
    // came 5-6 s on).
    app.wait_until_active(&tokens[6]).await;
    let waited = round_seen.elapsed();
    assert!(
        waited <= Duration::from_secs(first_told as u64 + 1),
        "told {first_told} s, admitted after {waited:?}"
    );
}

#[tokio::test]
async fn a_round_admitted_over_neighbouring_ticks_is_counted_as_one() {
    let mut config = test_config();
    config.queue_active_max = 3;
    config.queue_active_ttl_secs = 4;
    config.scheduler_interval_ms = 250;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let enter = || async {
        let (_, body) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
        body["token"].as_str().unwrap().to_string()
    };
    // Two admitted, and the third a tick or two later, as people enter:
    // their slots free over as many ticks, and are taken again so.
    let first_two = [enter().await, enter().await];
    for token in &first_two {
        app.wait_until_active(token).await;
    }
    let third = enter().await;
    app.wait_until_active(&third).await;
    let mut next_three = Vec::new();
    for _ in 0..3 {
        next_three.push(enter().await);
    }
    let fourth = enter().await;

    for token in &next_three {
        app.wait_until_active(token).await;
    }
    let standing = app.get_json("/queue/tokens/current", Some(&fourth)).await;
    let (place, told) = place_and_wait(&standing);
    assert_eq!(place, 0, "{standing}");
    // The next round comes when these three lapse, 4 s on; counted tick
    // by tick, the round's ticks read as a line moving every 0.3 s: 1 s.
    assert!((3..=5).contains(&told), "a round every 4 s: told {told}");
}
