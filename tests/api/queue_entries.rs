//! Entries planned together: a crowd entering at once shares plan statements
//! (one lock of the concert's entry counter a batch), and still gets dense
//! entry numbers, exact positions and an exactly full line.

use chrono::{Duration, Utc};
use concert::config::Config;
use concert::projections::entry_plans::EntryPlans;
use concert::projections::queue_entries::{plan_entries, release_entry_no};
use concert::projections::queue_tickets;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{eventually, largest_bucket, spawn_app_with, test_config, Concert, TestApp};

/// The entry numbers of a concert's tickets, in order.
async fn entry_numbers(pool: &PgPool, concert_id: &str) -> Vec<i64> {
    sqlx::query_scalar(
        "select entry_no from queue_tickets where concert_id = $1::uuid order by entry_no",
    )
    .bind(concert_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The last entry number a concert's line handed out (0 for none).
pub(super) async fn issued(pool: &PgPool, concert_id: &str) -> i64 {
    sqlx::query_scalar(
        "select coalesce((select issued from queue_lines where concert_id = $1::uuid), 0)",
    )
    .bind(concert_id)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// New users, each already signed in, so their entries can start together.
async fn signed_in_users(app: &TestApp, count: usize) -> Vec<Uuid> {
    let mut users = Vec::new();
    for _ in 0..count {
        let user_id = Uuid::new_v4();
        app.user_token(user_id).await;
        users.push(user_id);
    }
    users
}

/// A service whose concert admits one ticket at a time (the first, already
/// admitted) and lets at most `waiting_max` wait (0: no limit).
async fn line_with_one_admitted(waiting_max: u64) -> (TestApp, Concert) {
    let mut config = test_config();
    config.queue_waiting_max = waiting_max;
    line_with_one_admitted_under(config).await
}

/// As `line_with_one_admitted`, under the other settings of `config`.
async fn line_with_one_admitted_under(mut config: Config) -> (TestApp, Concert) {
    config.queue_active_max = 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 5, 1000).await;
    app.active_user(&concert.concert_id).await;
    (app, concert)
}

/// Every user of `crowd` enters the concert's queue at once.
async fn enter_together(
    app: &TestApp,
    crowd: &[Uuid],
    concert: &Concert,
) -> Vec<(StatusCode, Value)> {
    join_all(
        crowd
            .iter()
            .map(|user_id| app.enter_queue(*user_id, &concert.concert_id)),
    )
    .await
}

#[tokio::test]
async fn a_crowd_entering_at_once_shares_batches_and_is_numbered_densely() {
    let (app, concert) = line_with_one_admitted(0).await;
    let crowd = signed_in_users(&app, 200).await;

    let answers = enter_together(&app, &crowd, &concert).await;

    let mut positions = Vec::new();
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        positions.push(body["position"].as_i64().unwrap());
    }
    positions.sort_unstable();
    assert_eq!(positions, (0..200).collect::<Vec<i64>>());
    assert_eq!(
        entry_numbers(&app.pool, &concert.concert_id).await,
        (1..=201).collect::<Vec<i64>>()
    );
    let metrics = app.get_root("/metrics").await.text().await.unwrap();
    assert!(
        largest_bucket(&metrics, "concert_queue_entry_batch_size", "") > 1.0,
        "entries waiting together share a plan statement"
    );
}

#[tokio::test]
async fn a_crowd_racing_for_the_last_places_fills_the_line_exactly() {
    let (app, concert) = line_with_one_admitted(10).await;
    let crowd = signed_in_users(&app, 60).await;

    let answers = enter_together(&app, &crowd, &concert).await;

    let entered = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(entered, 10);
    for (status, body) in answers.iter().filter(|(s, _)| *s != StatusCode::CREATED) {
        assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["code"], "rate_limited");
    }
    assert_eq!(
        entry_numbers(&app.pool, &concert.concert_id).await,
        (1..=11).collect::<Vec<i64>>()
    );
    // The refused took no number: the counter stands at the last entry.
    assert_eq!(issued(&app.pool, &concert.concert_id).await, 11);
}

#[tokio::test]
async fn one_plan_numbers_new_entries_in_order_skips_live_tickets_and_stops_at_the_limit() {
    let (app, concert) = line_with_one_admitted(0).await; // entry 1, admitted
    let in_line = Uuid::new_v4();
    let (status, _) = app.enter_queue(in_line, &concert.concert_id).await; // entry 2, waiting
    assert_eq!(status, StatusCode::CREATED);
    let (twice, late, later) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let concert_id: Uuid = concert.concert_id.parse().unwrap();
    let now = Utc::now();

    // One waits; a limit of three leaves room for two more.
    let plans = plan_entries(
        &app.pool,
        concert_id,
        &[in_line, twice, twice, late, later],
        now,
        now - Duration::seconds(60),
        3,
        5,
    )
    .await
    .unwrap();

    let numbers: Vec<Option<i64>> = plans.iter().map(|plan| plan.entry_no).collect();
    assert_eq!(numbers, [None, Some(3), Some(4), None, None]);
    assert_eq!(plans[0].latest.as_ref().map(|t| t.entry_no), Some(2));
    let positions: Vec<i64> = plans.iter().map(|plan| plan.standing.position).collect();
    assert_eq!(positions[..3], [0, 1, 2]);
    assert!(plans.iter().all(|plan| plan.concert_exists));
    assert!(plans
        .iter()
        .all(|plan| plan.standing.admissions.active == Some(1)));
    assert_eq!(issued(&app.pool, &concert.concert_id).await, 4);
    // Active tickets are counted up to the limit, which is all the wait estimate needs.
    let capped = queue_tickets::standing(&app.pool, concert_id, 4, now, 0)
        .await
        .unwrap();
    assert_eq!((capped.position, capped.admissions.active), (2, Some(0)));

    // An unknown concert takes nothing.
    let unknown = plan_entries(&app.pool, Uuid::new_v4(), &[late], now, now, 0, 5)
        .await
        .unwrap();
    assert!(!unknown[0].concert_exists);
    assert_eq!(unknown[0].entry_no, None);
}

#[tokio::test]
async fn an_entry_that_stops_waiting_for_its_plan_gives_its_number_back() {
    let (app, concert) = line_with_one_admitted(0).await; // entry 1, admitted
    let concert_id: Uuid = concert.concert_id.parse().unwrap();
    let planner = EntryPlans::start(
        &app.pool,
        0,
        100,
        Duration::seconds(60),
        std::time::Duration::from_secs(60),
    );

    // Sent, then dropped at once: the plan is answered to nobody.
    let gave_up = tokio::time::timeout(
        std::time::Duration::ZERO,
        planner.plan(concert_id, Uuid::new_v4()),
    )
    .await;
    assert!(gave_up.is_err(), "the plan was still running");

    eventually("the unanswered number is recorded as unused", || async {
        unused_numbers(&app.pool, concert_id).await == [2]
    })
    .await;
    assert_eq!(issued(&app.pool, &concert.concert_id).await, 2);
    // The next entry stands first in line: the lost number is not counted.
    let (status, body) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["position"], 0);
}

/// Entry numbers of a concert taken but never used.
async fn unused_numbers(pool: &PgPool, concert_id: Uuid) -> Vec<i64> {
    sqlx::query_scalar(
        "select entry_no from queue_unused_entries where concert_id = $1 order by entry_no",
    )
    .bind(concert_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_generic_plan_pool_connects_without_sequential_scans() {
    let app = spawn_app_with(test_config()).await;
    let pool = concert::db::generic_plan_pool(&app.pool, 1);

    let settings: (String, String) = sqlx::query_as(
        "select current_setting('enable_seqscan'), current_setting('plan_cache_mode')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    // A plan kept from when the statistics saw a table as a few rows must not
    // scan it whole once it has grown (entries fell from 4,500 to 800 a second).
    assert_eq!(settings, ("off".into(), "force_generic_plan".into()));
}

/// An entry's number taken, its ticket never committed (its instance was
/// killed in between): once a later ticket entered long enough ago, the
/// scheduler's look releases it and the tickets behind it move up; a number
/// newer than that is left alone, as its ticket may still be committing.
/// Each look starts where the last one ended.
#[tokio::test]
async fn numbers_of_entries_that_never_committed_are_released_once_old() {
    use concert::projections::queue_entries::{
        release_abandoned_numbers, release_numbers_without_tickets,
    };

    let (app, concert) = line_with_one_admitted(0).await; // entry 1, admitted
    let concert_id: Uuid = concert.concert_id.parse().unwrap();
    let take_a_number = || async {
        sqlx::query("update queue_lines set issued = issued + 1 where concert_id = $1")
            .bind(concert_id)
            .execute(&app.pool)
            .await
            .unwrap();
    };
    // A look at one's place follows the line through the feed, which hears
    // of a release by its notification: a look may come a moment before it.
    let position_of = |token: String, expected: i64| {
        let app = &app;
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
            loop {
                let body = app.get_json("/queue/tokens/current", Some(&token)).await;
                let position = body["position"].as_i64().unwrap();
                if position == expected || std::time::Instant::now() > deadline {
                    return position;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    let (_, second) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await; // 2
    take_a_number().await; // 3, never used
    let (_, fourth) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await; // 4
    let between = Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    take_a_number().await; // 5, never used
    let (_, sixth) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await; // 6
    let fourth = fourth["token"].as_str().unwrap().to_string();
    let sixth = sixth["token"].as_str().unwrap().to_string();
    assert_eq!(second["position"], 0);
    assert_eq!(position_of(fourth.clone(), 2).await, 2);
    assert_eq!(position_of(sixth.clone(), 4).await, 4);

    // Only the numbers below a ticket that entered before `between`.
    let mut settled = std::collections::HashMap::new();
    let released = release_abandoned_numbers(&app.pool, between, &mut settled).await;
    assert_eq!(released.unwrap(), 1);
    assert_eq!(settled[&concert_id], 4);
    assert_eq!(unused_numbers(&app.pool, concert_id).await, [3]);
    assert_eq!(position_of(fourth, 1).await, 1);
    assert_eq!(position_of(sixth.clone(), 3).await, 3);

    let released = release_abandoned_numbers(&app.pool, Utc::now(), &mut settled).await;
    assert_eq!(released.unwrap(), 1);
    assert_eq!(settled[&concert_id], 6);
    assert_eq!(unused_numbers(&app.pool, concert_id).await, [3, 5]);
    assert_eq!(position_of(sixth, 2).await, 2);
    // Nothing left to release, by either look.
    let released = release_abandoned_numbers(&app.pool, Utc::now(), &mut settled).await;
    assert_eq!(released.unwrap(), 0);
    assert_eq!(release_numbers_without_tickets(&app.pool).await.unwrap(), 0);
}

/// A number whose entry never committed (its instance killed) is released by
/// the service itself once a request would have given up on it
/// (`CONCERT_REQUEST_TIMEOUT_SECS` and 5 s), so the places behind it read
/// right during a short sale. Before, only numbers below a ticket that
/// entered ten minutes earlier were released: one kill in a burst of
/// entries left every place behind 34 too far back for the rest of a sale
/// (a probe with three instances).
#[tokio::test]
async fn a_number_whose_entry_never_committed_is_released_once_a_request_would_have_given_up() {
    let mut config = test_config();
    config.request_timeout_secs = 2;
    let (app, concert) = line_with_one_admitted_under(config).await; // entry 1, admitted
    let concert_id: Uuid = concert.concert_id.parse().unwrap();
    // Number 2, taken by an entry whose instance was killed before it committed.
    sqlx::query("update queue_lines set issued = issued + 1 where concert_id = $1")
        .bind(concert_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let (_, third) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await;
    let third = third["token"].as_str().unwrap().to_string();
    let position = || async {
        app.get_json("/queue/tokens/current", Some(&third)).await["position"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(
        position().await,
        1,
        "number 2 counts while its entry may still commit"
    );

    // 7 s after entry 3, at the look that follows (every 5 s).
    let entered = std::time::Instant::now();
    while position().await != 0 {
        assert!(
            entered.elapsed() < std::time::Duration::from_secs(30),
            "number 2 was not released"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        entered.elapsed() > std::time::Duration::from_secs(6),
        "released too soon"
    );
    assert_eq!(unused_numbers(&app.pool, concert_id).await, [2]);
}

/// A number taken for abandoned whose entry commits after all (held up
/// longer than the look waits) is in use again: the ticket is counted once,
/// and the places behind it stay exact. Before, it counted as unused too,
/// and every place behind it read one short.
#[tokio::test]
async fn a_number_released_whose_entry_commits_after_all_is_in_use_again() {
    let (app, concert) = line_with_one_admitted(0).await; // entry 1, admitted
    let concert_id: Uuid = concert.concert_id.parse().unwrap();
    // Number 2 recorded as unused while its entry was still committing.
    sqlx::query("insert into queue_unused_entries (concert_id, entry_no) values ($1, 2)")
        .bind(concert_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let (_, second) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await; // 2
    let (_, third) = app.enter_queue(Uuid::new_v4(), &concert.concert_id).await; // 3
    assert_eq!(
        entry_numbers(&app.pool, &concert.concert_id).await,
        [1, 2, 3]
    );

    assert_eq!(
        unused_numbers(&app.pool, concert_id).await,
        Vec::<i64>::new()
    );
    assert_eq!(second["position"], 0);
    let third = third["token"].as_str().unwrap().to_string();
    assert_eq!(
        app.get_json("/queue/tokens/current", Some(&third)).await["position"],
        1
    );
}

/// An entry that took its number is recorded though its client hangs up,
/// and the client's retry finds the ticket (README, "A `503 unavailable`
/// from the request timeout"). Before, one dropped while waiting for its
/// plan gave the number back and entered nobody (128 of 128 here), and one
/// dropped between its plan and its command left the number neither a
/// ticket nor released: every place behind it one too far back for ten
/// minutes (5 of 11 runs of 150 such clients in a probe).
#[tokio::test]
async fn an_entry_whose_client_hangs_up_is_recorded_and_its_retry_finds_it() {
    let app = spawn_app_with(test_config()).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let mut users = Vec::new();
    for _ in 0..300 {
        let user_id = Uuid::new_v4();
        users.push((user_id, app.user_token(user_id).await));
    }
    let body = format!(r#"{{"concert_id":"{}"}}"#, concert.concert_id);

    join_all(users.iter().enumerate().map(|(n, (_, token))| {
        let request = format!(
            "POST /api/v1/queue/tokens HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let wait = std::time::Duration::from_micros(200 * (n % 40) as u64);
        hang_up_after(app.host(), request, wait)
    }))
    .await;

    // The entries the service still works on settle.
    let mut numbers = issued(&app.pool, &concert.concert_id).await;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        let now = issued(&app.pool, &concert.concert_id).await;
        if now == numbers {
            break;
        }
        numbers = now;
    }
    let tickets = entry_numbers(&app.pool, &concert.concert_id).await;
    let released = unused_numbers(&app.pool, concert.concert_id.parse().unwrap()).await;
    let entered: Uuid = sqlx::query_scalar(
        "select user_id from queue_tickets where concert_id = $1::uuid order by entry_no limit 1",
    )
    .bind(&concert.concert_id)
    .fetch_optional(&app.pool)
    .await
    .unwrap()
    .expect("an entry whose client hung up is recorded");
    let (retried, _) = app.enter_queue(entered, &concert.concert_id).await;

    assert!(
        numbers > 0,
        "entries took numbers before their clients left"
    );
    assert_eq!((tickets.len() as i64, released.len()), (numbers, 0));
    assert_eq!(retried, StatusCode::OK, "the retry finds the live ticket");
}

/// A number taken before PostgreSQL restarted may have been lost with the
/// counter's unflushed commit and handed out again: the entry that took it
/// first does not record it as unused. Before, a probe that crashed
/// PostgreSQL under entries found numbers both held by a waiting ticket and
/// recorded as unused, every place behind them one too short for good.
#[tokio::test]
async fn a_number_taken_before_the_database_restarted_is_not_recorded_as_unused() {
    let app = spawn_app_with(test_config()).await;
    let concert = app.create_concert(1, 5, 1000).await;
    let concert_id: Uuid = concert.concert_id.parse().unwrap();
    let started: chrono::DateTime<Utc> = sqlx::query_scalar("select pg_postmaster_start_time()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let before_a_restart = started - Duration::seconds(1);

    release_entry_no(&app.pool, concert_id, 7, before_a_restart)
        .await
        .unwrap();
    let after_a_restart = unused_numbers(&app.pool, concert_id).await;
    release_entry_no(&app.pool, concert_id, 8, started)
        .await
        .unwrap();

    assert_eq!(after_a_restart, Vec::<i64>::new());
    assert_eq!(unused_numbers(&app.pool, concert_id).await, [8]);
}

/// Sends `request` on a connection of its own and drops it, unanswered or
/// not, after `wait`.
async fn hang_up_after(host: &str, request: String, wait: std::time::Duration) {
    use tokio::io::AsyncWriteExt;
    let mut connection = tokio::net::TcpStream::connect(host).await.unwrap();
    connection.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(wait).await;
    // Reset, not closed: as a client that goes away does.
    connection.set_zero_linger().unwrap();
}
