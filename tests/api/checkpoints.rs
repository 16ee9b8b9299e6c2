//! Checkpoints: a digest of the whole log that auditors keep elsewhere names
//! what the hash chains, computed in the database, cannot: a stream
//! rewritten with its chain recomputed, a re-timed event, the newest events
//! cut off.

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use super::audit::{audit, booking_history};
use crate::helpers::{assert_problem, spawn_app, test_config, ADMIN_TOKEN};
use concert::audit::{holds_checkpoint, AuditReport, Checkpoint, CHECKPOINT_RULE};

async fn audit_against(pool: &PgPool, checkpoint: Checkpoint) -> AuditReport {
    concert::audit::audit(pool, 100, Some(checkpoint), &mut |_, _| {})
        .await
        .expect("the audit runs")
}

fn rules(report: &AuditReport) -> Vec<&'static str> {
    report.violations.iter().map(|found| found.rule).collect()
}

#[tokio::test]
async fn a_stream_rewritten_with_its_chain_recomputed_is_named_by_an_earlier_checkpoint() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    let taken = audit(&pool).await;
    assert!(taken.violations.is_empty(), "{:#?}", taken.violations);

    // The newest event of a stream, edited and hashed again as the insert
    // trigger would: every chain still verifies.
    let (kind, id, sequence): (String, String, i64) = sqlx::query_as(
        "update events e set payload = regexp_replace(payload::text, '\"amount\": ?500', '\"amount\": 5000')::json
         where (aggregate_type, aggregate_id, sequence) = (
           select aggregate_type, aggregate_id, sequence from events x where event_type = 'Charged'
             and sequence = (select max(sequence) from events s
                             where s.aggregate_type = x.aggregate_type and s.aggregate_id = x.aggregate_id)
           order by position limit 1)
         returning aggregate_type, aggregate_id, sequence",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query(
        "update events e set hash = sha256(coalesce((select hash from events p
             where p.aggregate_type = e.aggregate_type and p.aggregate_id = e.aggregate_id
               and p.sequence = e.sequence - 1), ''::bytea) || convert_to(
           e.aggregate_type || '/' || e.aggregate_id || '/' || e.sequence::text || '/' || e.event_type || '/' ||
           e.event_version || '/' || e.payload::text || '/' || e.metadata::text, 'UTF8'))
         where (aggregate_type, aggregate_id, sequence) = ($1, $2, $3)",
    )
    .bind(&kind)
    .bind(&id)
    .bind(sequence)
    .execute(&pool)
    .await
    .unwrap();

    let alone = audit(&pool).await;
    assert!(
        !rules(&alone).contains(&"hash chain intact"),
        "{:#?}",
        alone.violations
    );
    let held = audit_against(&pool, taken.checkpoint).await;
    assert!(
        rules(&held).contains(&CHECKPOINT_RULE),
        "{:#?}",
        held.violations
    );
}

#[tokio::test]
async fn a_log_re_timed_or_cut_off_before_its_checkpoint_s_end_is_named() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    let taken = audit(&pool).await;
    assert_eq!(
        audit_against(&pool, taken.checkpoint)
            .await
            .violations
            .len(),
        0,
        "an unchanged log matches its checkpoint"
    );

    // Not hashed: the chains cannot see it.
    sqlx::query(
        "update events set recorded_at = recorded_at - interval '1 hour' where position = 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    let re_timed = audit_against(&pool, taken.checkpoint).await;
    assert_eq!(
        rules(&re_timed),
        [CHECKPOINT_RULE],
        "{:#?}",
        re_timed.violations
    );

    // The newest event of the whole log: no chain or position follows it.
    sqlx::query("delete from events where position = (select max(position) from events)")
        .execute(&pool)
        .await
        .unwrap();
    let cut = audit_against(&pool, taken.checkpoint).await;
    let found = cut
        .violations
        .iter()
        .find(|found| found.rule == CHECKPOINT_RULE)
        .unwrap_or_else(|| panic!("{:#?}", cut.violations));
    assert!(found.detail.contains("cut off"), "{}", found.detail);
    assert!(
        !rules(&cut)
            .iter()
            .any(|rule| rule.contains("hash") || rule.contains("position")),
        "{:#?}",
        cut.violations
    );
}

/// The checkpoint's digest covers the stored hashes: a payload edited under
/// its old hash leaves it as it was, and the log was said to be "the one
/// checkpointed" beside the broken chain.
#[tokio::test]
async fn a_payload_edited_under_its_old_hash_is_not_the_log_checkpointed() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let pool = app.shutdown().await;
    let taken = audit(&pool).await;
    let position = taken.checkpoint.position;
    assert!(holds_checkpoint(&taken.violations, position));

    let edited: i64 = sqlx::query_scalar(
        "update events set payload = regexp_replace(payload::text, '\"amount\": ?2500', '\"amount\": 25000')::json
         where position = (select min(position) from events where event_type = 'Charged')
         returning position",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(edited <= position);

    let held = audit_against(&pool, taken.checkpoint).await;
    assert!(
        rules(&held).contains(&"hash chain intact"),
        "{:#?}",
        held.violations
    );
    assert!(
        !rules(&held).contains(&CHECKPOINT_RULE),
        "{:#?}",
        held.violations
    );
    assert!(!holds_checkpoint(&held.violations, position));
    // An edit after the checkpoint's position leaves the log up to it whole.
    assert!(holds_checkpoint(&held.violations, edited - 1));
}

#[tokio::test]
async fn the_audit_report_gives_its_checkpoint_and_is_held_to_one() {
    let app = spawn_app().await;
    booking_history(&app).await;
    let report = |checkpoint: Option<String>| {
        let mut request = app
            .client
            .get(format!("{}/api/v1/audit/report", app.address))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(checkpoint) = checkpoint {
            request = request.query(&[("checkpoint", checkpoint)]);
        }
        request.send()
    };
    let first: Value = report(None).await.unwrap().json().await.unwrap();
    let checkpoint = &first["checkpoint"];
    assert!(checkpoint["position"].as_i64().unwrap() > 0, "{first}");
    assert_eq!(checkpoint["digest"].as_str().unwrap().len(), 64);
    let text = checkpoint["text"].as_str().unwrap().to_string();
    // What no event states, as this serve recorded it.
    let limit = test_config().queue_active_max;
    assert_eq!(first["held_to"]["active_limits"], limit.to_string());
    assert_eq!(
        first["held_to"]["ttls"],
        "CONCERT_HOLD_TTL_SECS=300 and CONCERT_QUEUE_ACTIVE_TTL_SECS=600 after position 0"
    );

    // More events since: the log up to the checkpoint is unchanged.
    app.fund(uuid::Uuid::new_v4(), 100).await;
    let held: Value = report(Some(text.clone()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(held["violations"], serde_json::json!([]), "{held}");
    assert_eq!(held["matches_checkpoint"], true, "{held}");
    assert_eq!(first["matches_checkpoint"], Value::Null, "{first}");
    assert!(held["checkpoint"]["position"].as_i64() > checkpoint["position"].as_i64());

    let (position, _) = text.split_once(':').unwrap();
    let forged = format!("{position}:{}", "0".repeat(64));
    let broken: Value = report(Some(forged)).await.unwrap().json().await.unwrap();
    assert_eq!(broken["violations"][0]["rule"], CHECKPOINT_RULE, "{broken}");
    assert_eq!(broken["matches_checkpoint"], false, "{broken}");

    let malformed = report(Some("12:xyz".into())).await.unwrap();
    assert_problem(malformed, StatusCode::BAD_REQUEST, "bad_request").await;
}
