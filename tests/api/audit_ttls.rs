//! The audit holds each hold and admission to a TTL the service was served
//! with before it (`served_ttls`): the events say when each starts and
//! ends, not under which setting. Forged through the insert trigger (the
//! hash chain stays whole), an hour's hold or admission where the service
//! ran with minutes passed the audit as any within a day.

use serde_json::Value;
use sqlx::PgPool;

use super::audit::{audit, booking_history};
use crate::helpers::{spawn_app_on, spawn_app_with, test_config};

const HOLD_RULE: &str = "a hold lasts a CONCERT_HOLD_TTL_SECS the service ran with";
const ADMISSION_RULE: &str =
    "an admission lasts a CONCERT_QUEUE_ACTIVE_TTL_SECS the service ran with";

#[tokio::test]
async fn holds_and_admissions_longer_than_any_ttl_served_are_named() {
    let mut config = test_config();
    config.hold_ttl_secs = 120;
    config.queue_active_ttl_secs = 240;
    let app = spawn_app_with(config).await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    concert::event_log::assign_positions(&pool).await.unwrap();
    let report = audit(&pool).await;
    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    assert_eq!(
        report.ttls.map(|ttls| ttls.to_string()).as_deref(),
        Some("CONCERT_HOLD_TTL_SECS=120 and CONCERT_QUEUE_ACTIVE_TTL_SECS=240 after position 0")
    );

    // The first hold and the first admission again, each lasting an hour,
    // on streams of their own.
    append_lasting_an_hour(&pool, "SeatHeld", "held_at", "until").await;
    append_lasting_an_hour(&pool, "TicketAdmitted", "admitted_at", "expires_at").await;

    let found: Vec<(&str, String)> = audit(&pool)
        .await
        .violations
        .into_iter()
        .map(|violation| (violation.rule, violation.detail))
        .collect();
    let said =
        |rule: &str, detail: &str| found.iter().any(|(r, d)| *r == rule && d.ends_with(detail));
    assert!(
        said(HOLD_RULE, ": 3600 s, where the service ran with 120 s"),
        "{found:#?}"
    );
    assert!(
        said(ADMISSION_RULE, ": 3600 s, where the service ran with 240 s"),
        "{found:#?}"
    );
}

#[tokio::test]
async fn a_ttl_served_later_leaves_the_holds_made_under_an_earlier_one_valid() {
    let mut config = test_config();
    config.hold_ttl_secs = 120;
    let app = spawn_app_with(config.clone()).await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    config.hold_ttl_secs = 60;
    let app = spawn_app_on(pool, config).await;
    booking_history(&app).await;
    let pool = app.shutdown().await;

    let report = audit(&pool).await;

    assert!(report.violations.is_empty(), "{:#?}", report.violations);
    let ttls = report.ttls.unwrap().to_string();
    assert!(ttls.contains("CONCERT_HOLD_TTL_SECS=120 and"), "{ttls}");
    assert!(
        ttls.contains(", then CONCERT_HOLD_TTL_SECS=60 and"),
        "{ttls}"
    );
}

/// Appends a copy of the log's first `event_type`, starting when it did
/// and lasting an hour, as the first event of a new stream of its type.
async fn append_lasting_an_hour(pool: &PgPool, event_type: &str, start: &str, end: &str) {
    let (aggregate_type, payload, metadata): (String, Value, Value) = sqlx::query_as(
        "select aggregate_type, payload::jsonb, metadata::jsonb from events
         where event_type = $1 order by position limit 1",
    )
    .bind(event_type)
    .fetch_one(pool)
    .await
    .unwrap();
    let mut payload = payload;
    let body = &mut payload[event_type];
    let started: chrono::DateTime<chrono::Utc> = body[start].as_str().unwrap().parse().unwrap();
    body[end] = Value::from((started + chrono::Duration::hours(1)).to_rfc3339());
    let stream = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         values ($1, $2, 1, $3, '1', $4::json, $5::json)",
    )
    .bind(aggregate_type)
    .bind(stream)
    .bind(event_type)
    .bind(payload.to_string())
    .bind(metadata.to_string())
    .execute(pool)
    .await
    .unwrap();
    concert::event_log::assign_positions(pool).await.unwrap();
}
