//! Snapshots edited behind the service's back: the service decides on a
//! stream's snapshot and the events after it, so a forged one changes what
//! it decides. The audit names it, and a replay leaves none behind.

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{audit, booking_history, names};
use crate::helpers::{json_of, spawn_app, TestApp};

const RULE: &str = "snapshots agree with the log";

/// Charges a new user's wallet 101 times (10 won each), past the snapshot
/// the service takes every 100 events.
async fn wallet_with_a_snapshot(app: &TestApp) -> Uuid {
    let user = Uuid::new_v4();
    for _ in 0..101 {
        assert_eq!(app.charge(user, 10).await.status, 200);
    }
    user
}

/// The sequences of the snapshots of `user`'s wallet.
async fn snapshots_of(pool: &PgPool, user: Uuid) -> Vec<i64> {
    sqlx::query_scalar(
        "select last_sequence from snapshots
         where aggregate_type = 'Wallet' and aggregate_id = $1 order by 1",
    )
    .bind(user.to_string())
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Sets the balance of every wallet snapshot to 0, as the probe did.
async fn zero_every_snapshot_balance(pool: &PgPool) {
    let edited = sqlx::query(
        "update snapshots set payload = jsonb_set(payload::jsonb, '{balance}', '0')::json
         where aggregate_type = 'Wallet'",
    )
    .execute(pool)
    .await
    .unwrap();
    assert_eq!(edited.rows_affected(), 1);
}

#[tokio::test]
async fn a_wallet_charged_past_its_snapshot_passes_the_audit() {
    let app = spawn_app().await;
    let user = wallet_with_a_snapshot(&app).await;
    let pool = app.shutdown().await;

    let report = audit(&pool).await;

    assert_eq!(snapshots_of(&pool, user).await, [100]);
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
}

#[tokio::test]
async fn the_audit_names_a_wallet_snapshot_whose_balance_was_set_to_zero() {
    let app = spawn_app().await;
    let user = wallet_with_a_snapshot(&app).await;
    let pool = app.shutdown().await;
    zero_every_snapshot_balance(&pool).await;

    let report = audit(&pool).await;

    assert!(
        names(&report, &format!("Wallet/{user}")),
        "{:#?}",
        report.violations
    );
    assert!(
        report.violations.iter().all(|v| v.rule == RULE),
        "{:#?}",
        report.violations
    );
}

#[tokio::test]
async fn the_audit_names_a_snapshot_of_a_seat() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    // A free seat forged into one held until 2099.
    let seat: String = sqlx::query_scalar(
        "insert into snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload)
         select 'Seat', aggregate_id, max(sequence), 1, json_build_object('state', json_build_object('Held',
                  json_build_object('reservation_id', gen_random_uuid(), 'user_id', gen_random_uuid(),
                                    'price', 1000, 'until', '2099-01-01T00:00:00Z')))
         from events where aggregate_type = 'Seat' group by aggregate_id limit 1
         returning aggregate_id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();

    let report = audit(&pool).await;

    assert!(
        names(&report, &format!("Seat/{seat}")),
        "{:#?}",
        report.violations
    );
    assert!(report.violations.iter().any(|v| v.rule == RULE));
}

/// After the replay the wallet is its events again: a charge adds to the
/// balance they give, and a fresh snapshot is taken at the next hundred.
#[tokio::test]
async fn a_replay_leaves_no_forged_snapshot_behind() {
    let app = spawn_app().await;
    let user = wallet_with_a_snapshot(&app).await;
    zero_every_snapshot_balance(&app.pool).await;

    concert::replay::replay(&app.pool, &mut |_, _| {})
        .await
        .unwrap();

    assert!(snapshots_of(&app.pool, user).await.is_empty());
    let charged: Value = json_of(&app.charge(user, 10).await);
    assert_eq!(charged["balance"], 1020);
    for _ in 0..98 {
        assert_eq!(app.charge(user, 10).await.status, StatusCode::OK);
    }
    assert_eq!(snapshots_of(&app.pool, user).await, [200]);
    let pool = app.shutdown().await;
    let report = audit(&pool).await;
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
}
