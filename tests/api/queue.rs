//! The waiting queue: tokens, FIFO positions and the entry limit per user
//! (admission: `admissions.rs`).

use std::net::IpAddr;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{
    assert_problem, assert_replay_rebuilds_the_read_models, commits_and_events, eventually,
    largest_batch_seen, spawn_app, spawn_app_with, test_config,
};

#[tokio::test]
async fn entering_twice_returns_the_same_live_token() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = Uuid::new_v4();

    let (first_status, first) = app.enter_queue(user, &concert.concert_id).await;
    let (second_status, second) = app.enter_queue(user, &concert.concert_id).await;

    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!(second_status, StatusCode::OK);
    assert_eq!(first["token"], second["token"]);
    assert_eq!(first["user_id"], user.to_string());
    assert_eq!(first["concert_id"], concert.concert_id.as_str());
    let token = first["token"].as_str().unwrap();
    assert!(
        token.len() >= 64,
        "a token carries at least 256 bits of MAC"
    );
}

#[tokio::test]
async fn entering_again_gives_the_live_token_until_it_lapses_then_a_new_place() {
    let mut config = test_config();
    // Long enough that a busy machine still reads the token before its end.
    config.queue_active_ttl_secs = 4;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let current = app
        .get_json("/queue/tokens/current", Some(&user.token))
        .await;
    let lapses: chrono::DateTime<chrono::Utc> =
        current["expires_at"].as_str().unwrap().parse().unwrap();
    let until = |at: chrono::DateTime<chrono::Utc>| {
        tokio::time::sleep((at - chrono::Utc::now()).to_std().unwrap_or_default())
    };

    until(lapses - chrono::Duration::milliseconds(700)).await;
    let (before, live) = app.enter_queue(user.user_id, &concert.concert_id).await;
    until(lapses + chrono::Duration::milliseconds(100)).await;
    let (after, new) = app.enter_queue(user.user_id, &concert.concert_id).await;

    // Live to its last moment, it is the user's one place (the contract);
    // once lapsed, even before the scheduler records it, it is none.
    assert_eq!(before, StatusCode::OK, "{live}");
    assert_eq!(live["token"], user.token.as_str());
    assert_eq!(live["status"], "active");
    assert_eq!(after, StatusCode::CREATED, "{new}");
    assert_ne!(new["token"], user.token.as_str());
    assert_ne!(new["status"], "expired");
}

#[tokio::test]
async fn one_user_entering_a_hundred_times_at_once_gets_one_token() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = Uuid::new_v4();

    let answers = join_all((0..100).map(|_| app.enter_queue(user, &concert.concert_id))).await;

    let created = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    assert!(answers
        .iter()
        .all(|(status, body)| status.is_success() && body["token"] == answers[0].1["token"]));
    let tickets: i64 =
        sqlx::query_scalar("select count(*) from events where event_type = 'QueueEntered'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(tickets, 1);
}

#[tokio::test]
async fn positions_count_the_waiting_tokens_ahead_in_fifo_order() {
    let mut config = test_config();
    config.queue_active_max = 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let _admitted = app.active_user(&concert.concert_id).await;

    let mut tokens = Vec::new();
    for ahead in 0..5 {
        let user = Uuid::new_v4();
        let (status, body) = app.enter_queue(user, &concert.concert_id).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(body["position"], ahead, "the entry's own answer");
        let (again, same) = app.enter_queue(user, &concert.concert_id).await;
        assert_eq!(again, StatusCode::OK);
        assert_eq!(same["position"], ahead, "entering again");
        tokens.push(body["token"].as_str().unwrap().to_string());
    }

    for (ahead, token) in tokens.iter().enumerate() {
        let body = app.get_json("/queue/tokens/current", Some(token)).await;
        assert_eq!(body["status"], "waiting");
        assert_eq!(body["position"], ahead as i64);
        assert_eq!(body["expires_at"], Value::Null);
    }
}

/// Users each entering several times at once are each answered their exact
/// place, by every answer, and take one number each: the duplicates took
/// numbers too, counted as places ahead until given back (answers said 41
/// to 47 places ahead where 19 at most could be).
#[tokio::test]
async fn a_crowd_entering_each_several_times_at_once_is_told_exact_places() {
    let mut config = test_config();
    config.queue_active_max = 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let _admitted = app.active_user(&concert.concert_id).await;
    let users: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
    for user in &users {
        app.user_token(*user).await;
    }

    let (app, concert_id) = (&app, concert.concert_id.as_str());
    let entries = users
        .iter()
        .flat_map(|user| (0..4).map(move |_| *user))
        .map(|user| async move { (user, app.enter_queue(user, concert_id).await) });
    let answers = join_all(entries).await;

    let places: std::collections::HashMap<String, i64> = sqlx::query_as::<_, (Uuid, i64)>(
        "select user_id, rank() over (order by entry_no) - 1 from queue_tickets
         where concert_id = $1::uuid and status = 'waiting'",
    )
    .bind(concert_id)
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .map(|(user, place)| (user.to_string(), place))
    .collect();
    assert_eq!(places.len(), users.len());
    for (user, (status, body)) in &answers {
        assert!(status.is_success(), "{body}");
        assert_eq!(body["position"], places[&user.to_string()], "{body}");
    }
    assert_eq!(
        super::queue_entries::issued(&app.pool, concert_id).await,
        1 + users.len() as i64,
        "numbers taken by duplicates"
    );
}

#[tokio::test]
async fn positions_stay_exact_after_a_crowd_of_duplicate_entries() {
    let mut config = test_config();
    config.queue_active_max = 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let crowd = Uuid::new_v4();
    join_all((0..50).map(|_| app.enter_queue(crowd, &concert.concert_id))).await;

    let (_, second) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let (_, third) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;

    let third_token = third["token"].as_str().unwrap().to_string();
    let second_token = second["token"].as_str().unwrap().to_string();
    let position = |token: String| {
        let app = &app;
        async move {
            let body = app.get_json("/queue/tokens/current", Some(&token)).await;
            (
                body["status"].as_str().unwrap().to_string(),
                body["position"].as_i64().unwrap(),
            )
        }
    };
    eventually("the crowd's one ticket is admitted", || async {
        position(third_token.clone()).await == ("waiting".to_string(), 1)
    })
    .await;
    assert_eq!(position(second_token).await, ("waiting".to_string(), 0));
}

#[tokio::test]
async fn one_address_entering_too_fast_is_rate_limited() {
    let mut config = test_config();
    config.queue_entry_rate_per_sec = 1;
    config.queue_entry_burst = 3;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;

    // Signed in before the clock starts: only the entries count against the limit.
    let mut users = Vec::new();
    for _ in 0..5 {
        let user_id = Uuid::new_v4();
        users.push((user_id, app.user_token(user_id).await));
    }

    let mut statuses = Vec::new();
    for (user_id, token) in &users {
        let response = app
            .post(
                "/queue/tokens",
                Some(token),
                serde_json::json!({"user_id": user_id, "concert_id": concert.concert_id}),
            )
            .await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(response.headers()["retry-after"], "1");
            assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        }
    }

    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        3
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        2
    );
}

#[tokio::test]
async fn a_full_waiting_queue_refuses_new_entries() {
    let mut config = test_config();
    config.queue_active_max = 1;
    config.queue_waiting_max = 2;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let admitted = app.active_user(&concert.concert_id).await;
    for _ in 0..2 {
        let (status, _) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
        assert_eq!(status, StatusCode::CREATED);
    }

    let newcomer = Uuid::new_v4();
    let newcomer_token = app.user_token(newcomer).await;
    let refused = app
        .post(
            "/queue/tokens",
            Some(&newcomer_token),
            serde_json::json!({"user_id": newcomer, "concert_id": concert.concert_id}),
        )
        .await;
    let again = app.enter_queue(admitted.user_id, &concert.concert_id).await;

    assert_eq!(refused.headers()["retry-after"], "30");
    assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        again.0,
        StatusCode::OK,
        "a user already in line still gets their token"
    );
}

#[tokio::test]
async fn a_crowd_admitted_and_timed_out_in_batches_leaves_the_line_a_replay_rebuilds() {
    let mut config = test_config();
    config.queue_active_max = 8;
    config.queue_active_ttl_secs = 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;

    // Forty enter at once; the scheduler admits eight at a time and times
    // them out together, so its batches carry many admissions and expiries.
    let tokens: Vec<String> = join_all((0..40).map(|_| async {
        let (_, token) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
        token["token"].as_str().unwrap().to_string()
    }))
    .await;
    eventually("every token was admitted", || async {
        let left: i64 =
            sqlx::query_scalar("select count(*) from queue_tickets where status <> 'waiting'")
                .fetch_one(&app.pool)
                .await
                .unwrap();
        left == 40
    })
    .await;

    // Each stripe counts the tickets of its entry numbers that left the line.
    let (left_by_stripes, left_by_tickets): (i64, i64) = sqlx::query_as(
        "select (select coalesce(sum(left_waiting), 0)::bigint from queue_progress),
                (select count(*) from queue_tickets where status <> 'waiting')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(left_by_stripes, left_by_tickets);
    let last = app
        .get_json("/queue/tokens/current", Some(&tokens[39]))
        .await;
    assert_eq!(last["position"], 0);
    let metrics = app.get_root("/metrics").await.text().await.unwrap();
    assert!(
        largest_batch_seen(&metrics, "QueueTicket") >= 4.0,
        "admissions did not share batches:\n{metrics}"
    );
    let (commits, admissions) = commits_and_events(&app.pool, "TicketAdmitted").await;
    assert!(
        commits < admissions,
        "{admissions} admissions in {commits} commits"
    );
    assert_replay_rebuilds_the_read_models(&app.pool).await;

    // A store from before the stripes (migration 5) kept its counts in
    // stripe 0; migration 10 files them as the projection and a replay do.
    sqlx::raw_sql(
        "create temporary table totals as
             select concert_id, sum(left_waiting)::bigint as left_waiting
             from queue_progress group by concert_id;
         delete from queue_progress;
         insert into queue_progress (concert_id, stripe, left_waiting)
             select concert_id, 0, left_waiting from totals;
         drop table totals;
         delete from _sqlx_migrations where version = 10",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    concert::db::migrate(&app.pool).await.unwrap();
    assert_replay_rebuilds_the_read_models(&app.pool).await;
}

#[tokio::test]
async fn queue_entry_is_limited_per_user_across_addresses() {
    let mut config = test_config();
    config.queue_entry_rate_per_sec = 1;
    config.queue_entry_burst = 2;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = Uuid::new_v4();
    let token = app.user_token(user).await;
    // Each request from another loopback address: the address limit never bites.
    let mut statuses = Vec::new();
    for last in 2..=5u8 {
        let client = reqwest::Client::builder()
            .local_address(IpAddr::from([127, 0, 0, last]))
            .build()
            .unwrap();
        let response = client
            .post(app.url("/queue/tokens"))
            .bearer_auth(&token)
            .json(&json!({"concert_id": concert.concert_id}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..2], &[201, 200], "{statuses:?}");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    // Another user from a fresh address is not held back by the first one's use.
    let other = app.user_token(Uuid::new_v4()).await;
    let client = reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, 9]))
        .build()
        .unwrap();
    let response = client
        .post(app.url("/queue/tokens"))
        .bearer_auth(&other)
        .json(&json!({"concert_id": concert.concert_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}
