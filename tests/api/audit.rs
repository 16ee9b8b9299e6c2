//! Auditors: the ordered log, its endpoints, replay, and the whole-history audit.

use std::time::Duration;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{
    assert_problem, assert_problem_for, database_url_of, eventually, json_of, spawn_app,
    spawn_app_with, test_config, TestApp, ADMIN_TOKEN,
};

/// A small booking history: sales, a refused payment, a lapsed hold, charges.
pub(crate) async fn booking_history(app: &TestApp) {
    let concert = app.create_concert(2, 10, 1000).await;
    for n in 0..4 {
        let user = app.active_user(&concert.concert_id).await;
        let seat = app.first_free_seat(&user, &concert).await;
        if n < 3 {
            app.fund(user.user_id, 2500).await;
        }
        let held: Value = json_of(&app.hold(&user, &seat).await);
        let reservation = held["reservation_id"]
            .as_str()
            .unwrap_or_else(|| panic!("hold {n}: {held}"));
        let expected = if n < 3 {
            StatusCode::CREATED
        } else {
            StatusCode::PAYMENT_REQUIRED
        };
        let paid = app.pay(&user, reservation).await;
        assert_eq!(paid.status, expected, "payment {n}: {}", paid.text());
        if n == 3 {
            app.fund(user.user_id, 500).await;
        }
    }
}

/// Waits until the scheduler has expired the one hold left unpaid.
pub(crate) async fn until_a_hold_expired(pool: &PgPool) {
    eventually("the unpaid hold expires", || async {
        sqlx::query_scalar::<_, i64>("select count(*) from events where event_type = 'HoldExpired'")
            .fetch_one(pool)
            .await
            .unwrap()
            == 1
    })
    .await;
}

pub(crate) async fn audit(pool: &PgPool) -> concert::audit::AuditReport {
    concert::audit::audit(pool, 100, None, &mut |_, _| {})
        .await
        .expect("the audit runs")
}

pub(crate) fn names(report: &concert::audit::AuditReport, needle: &str) -> bool {
    report
        .violations
        .iter()
        .any(|violation| violation.events.iter().any(|event| event.contains(needle)))
}

#[tokio::test]
async fn paging_the_log_while_writers_commit_never_skips_or_repeats_an_event() {
    let app = spawn_app().await;
    let users: Vec<Uuid> = (0..16).map(|_| Uuid::new_v4()).collect();
    let writers = async {
        join_all(users.iter().map(|user| async {
            for _ in 0..25 {
                app.fund(*user, 10).await;
            }
        }))
        .await
    };
    let reader = async {
        let mut seen: Vec<(i64, String, i64)> = Vec::new();
        let mut after = 0;
        let mut idle_rounds = 0;
        while idle_rounds < 20 {
            let page = app
                .get_json(
                    &format!("/audit/events?after={after}&limit=37"),
                    Some(ADMIN_TOKEN),
                )
                .await;
            let events = page["events"].as_array().unwrap();
            for event in events {
                let id = format!(
                    "{}/{}",
                    event["aggregate_type"].as_str().unwrap(),
                    event["aggregate_id"].as_str().unwrap()
                );
                seen.push((
                    event["position"].as_i64().unwrap(),
                    id,
                    event["sequence"].as_i64().unwrap(),
                ));
            }
            idle_rounds = if events.is_empty() {
                idle_rounds + 1
            } else {
                0
            };
            after = page["next"].as_i64().unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        seen
    };
    let (_, seen) = tokio::join!(writers, reader);

    let stored: Vec<(i64, String, i64)> = sqlx::query_as(
        "select position, aggregate_type || '/' || aggregate_id, sequence from events order by position",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored.len(), 16 * 25);
    assert_eq!(
        seen, stored,
        "the pages are exactly the final log, in order"
    );
    assert!(seen.windows(2).all(|pair| pair[0].0 < pair[1].0));
}

#[tokio::test]
async fn the_audit_endpoints_need_the_admin_token_and_serve_one_stream() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    app.fund(user, 500).await;
    app.fund(user, 700).await;

    let anonymous = app.get("/audit/events", None).await;
    let as_user = app.get("/audit/events", Some("not-the-admin")).await;
    let user_token = app.user_token(user).await;
    let as_signed_in_user = app.get("/audit/events", Some(&user_token)).await;
    let bad_limit = app.get("/audit/events?limit=0", Some(ADMIN_TOKEN)).await;
    let unknown = app
        .get(
            &format!("/audit/streams/QueueTicket/{}", Uuid::new_v4()),
            Some(ADMIN_TOKEN),
        )
        .await;
    let stream = app
        .get_json(&format!("/audit/streams/Wallet/{user}"), Some(ADMIN_TOKEN))
        .await;

    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "token_invalid").await;
    assert_problem(as_user, StatusCode::UNAUTHORIZED, "token_invalid").await;
    assert_problem(as_signed_in_user, StatusCode::UNAUTHORIZED, "token_invalid").await;
    assert_problem(
        bad_limit,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_problem(unknown, StatusCode::NOT_FOUND, "not_found").await;
    let events = stream["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["payload"]["Charged"]["balance"], 1200);
    assert_eq!(events[1]["event_type"], "Charged");
    assert_eq!(events[1]["event_version"], "1");
    let metadata = &events[0]["metadata"];
    assert_eq!(metadata["actor"], format!("user:{user}"));
    for field in ["correlation_id", "causation_id", "hash", "recorded_at"] {
        assert!(
            metadata[field].is_string(),
            "metadata lacks {field}: {metadata}"
        );
    }
}

#[tokio::test]
async fn a_seat_never_held_or_a_wallet_never_charged_has_an_empty_history_not_none() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 2, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let seat = app.first_free_seat(&user, &concert).await;
    for known in [format!("Seat/{seat}"), format!("Wallet/{}", Uuid::new_v4())] {
        let history = app
            .get_json(&format!("/audit/streams/{known}"), Some(ADMIN_TOKEN))
            .await;
        assert_eq!(history, serde_json::json!({"events": []}), "{known}");
    }
    for unknown in [
        format!("Seat/{}", Uuid::new_v4()),
        format!("QueueTicket/{}", Uuid::new_v4()),
        format!("Concert/{}", Uuid::new_v4()),
        format!("Reservation/{seat}"),
    ] {
        let answer = app
            .get(&format!("/audit/streams/{unknown}"), Some(ADMIN_TOKEN))
            .await;
        assert_problem_for(&unknown, answer, StatusCode::NOT_FOUND, "not_found").await;
    }
}

#[tokio::test]
async fn a_stream_is_named_by_its_uuid_in_upper_case_too_and_a_bad_one_is_a_bad_request() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    app.fund(user, 500).await;

    let upper = app
        .get_json(
            &format!("/audit/streams/Wallet/{}", user.to_string().to_uppercase()),
            Some(ADMIN_TOKEN),
        )
        .await;
    let not_a_uuid = app
        .get("/audit/streams/Wallet/not-a-uuid", Some(ADMIN_TOKEN))
        .await;
    let blank_paging = app
        .get_json("/audit/events?after=&limit=", Some(ADMIN_TOKEN))
        .await;

    assert_eq!(upper["events"].as_array().map(Vec::len), Some(1), "{upper}");
    assert_problem(not_a_uuid, StatusCode::BAD_REQUEST, "bad_request").await;
    assert!(!blank_paging["events"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn the_correlation_id_of_a_request_is_on_its_events_and_in_its_answer() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();

    let answer = app.charge(user, 500).await;

    let correlation = answer.correlation_id;
    let stored: String = sqlx::query_scalar(
        "select metadata->>'correlation_id' from events where aggregate_id = $1",
    )
    .bind(user.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored, correlation);
}

#[tokio::test]
async fn the_audit_passes_over_a_booking_history() {
    let mut config = test_config();
    config.hold_ttl_secs = 3;
    let app = spawn_app_with(config).await;
    booking_history(&app).await;
    until_a_hold_expired(&app.pool).await;
    let pool = app.shutdown().await;

    let report = audit(&pool).await;

    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(report.events, total as u64);
}

/// An audit of a running service reads the log, then the read models: rows
/// of streams that moved in between show events the walk has not seen, and
/// must not be reported as disagreeing with the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_while_charges_commit_reports_no_disagreement() {
    let app = spawn_app().await;
    let users: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    for user in &users {
        app.fund(*user, 1).await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let charging = join_all(users.iter().map(|&user| {
        let (app, stop) = (&app, stop.clone());
        async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                assert_eq!(app.charge(user, 1).await.status, StatusCode::OK);
            }
        }
    }));
    let auditing = async {
        let mut reports = Vec::new();
        for _ in 0..8 {
            reports.push(audit(&app.pool).await);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        reports
    };
    let (_, reports) = tokio::join!(charging, auditing);

    for report in reports {
        assert!(report.violations.is_empty(), "{:#?}", report.violations);
    }
}

#[tokio::test]
async fn a_replay_rebuilds_read_models_identical_to_the_incremental_ones() {
    let mut config = test_config();
    config.hold_ttl_secs = 3;
    let app = spawn_app_with(config).await;
    booking_history(&app).await;
    until_a_hold_expired(&app.pool).await;
    let before = concert::replay::dump_read_models(&app.pool).await.unwrap();

    let report = concert::replay::replay(&app.pool, &mut |_, _| {})
        .await
        .unwrap();

    let after = concert::replay::dump_read_models(&app.pool).await.unwrap();
    assert!(report.events > 0);
    assert_eq!(before.len(), after.len());
    for ((table, rows_before), (_, rows_after)) in before.iter().zip(&after) {
        assert!(
            !rows_before.is_empty() || table == "payments",
            "{table} has rows to compare"
        );
        assert_eq!(rows_before, rows_after, "{table} differs after the replay");
    }
    // The service keeps working on the swapped-in tables.
    let user = Uuid::new_v4();
    let charged: Value = json_of(&app.charge(user, 100).await);
    assert_eq!(charged["balance"], 100);
}

/// `concert audit` exits 0 on a sound log, 1 for a violation and 2 when it
/// cannot check at all: a monitor tells a tampered log from a database down.
#[tokio::test]
async fn the_audit_command_tells_a_violation_from_a_database_it_cannot_reach() {
    let app = spawn_app().await;
    app.fund(Uuid::new_v4(), 500).await;
    let pool = app.shutdown().await;
    let audit = |url: String| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_concert"))
            .arg("audit")
            .env("DATABASE_URL", url)
            .env("CONCERT_LOG_FORMAT", "json")
            .output()
            .await
            .unwrap()
            .status
            .code()
    };

    let sound = audit(database_url_of(&pool)).await;
    sqlx::query(
        "update events set payload = regexp_replace(payload::text, '500', '5000')::json
         where event_type = 'Charged'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let edited = audit(database_url_of(&pool)).await;
    let unreachable = audit("postgres://postgres@127.0.0.1:1/none".to_string()).await;

    assert_eq!((sound, edited, unreachable), (Some(0), Some(1), Some(2)));
}
