//! An audit whose request is dropped stops at its next batch.

use concert::audit::{audit_unless_called_off, AuditError, CallOff};
use concert::event_log::WALK_BATCH;

use crate::helpers::fresh_database;

#[tokio::test]
async fn an_audit_stops_at_the_next_batch_once_its_call_off_guard_is_dropped() {
    let pool = fresh_database().await;
    // Three batches of a stream no rule follows.
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         select 'Unprojected', 'long', n, 'Noted', '1.0', '{}', '{}' from generate_series(1, $1) n",
    )
    .bind(2 * WALK_BATCH + 1)
    .execute(&pool)
    .await
    .unwrap();
    let mut request = Some(CallOff::default());
    let called_off = request.as_ref().unwrap().flag();
    let mut read = Vec::new();

    // The request goes away once the first batch is read.
    let outcome = audit_unless_called_off(
        &pool,
        100.into(),
        None,
        &mut |done, _| {
            read.push(done);
            request.take();
        },
        &called_off,
    )
    .await;

    let outcome = outcome.map(|report| report.events);
    assert!(matches!(outcome, Err(AuditError::CalledOff)), "{outcome:?}");
    assert_eq!(
        read,
        [WALK_BATCH as u64],
        "no batch is read after the first"
    );
}
