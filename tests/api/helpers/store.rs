//! Straight to the store: replaying the log, writing as another writer,
//! counting commits.

use serde_json::Value;
use sqlx::PgPool;

/// A replay of the log ends where the live read models are.
pub async fn assert_replay_rebuilds_the_read_models(pool: &PgPool) {
    let before = concert::replay::dump_read_models(pool).await.unwrap();
    concert::replay::replay(pool, &mut |_, _| {}).await.unwrap();
    assert_eq!(
        before,
        concert::replay::dump_read_models(pool).await.unwrap(),
        "a replay of the log ends where the live read models are"
    );
}

/// Stores one event row in `tx` as another writer would (another instance,
/// a tool): `payload` is `{"<event type>": {...}}`, and `command` is recorded.
pub async fn store_as_another_writer(
    tx: &mut sqlx::PgConnection,
    (aggregate_type, aggregate_id, sequence): (&str, &str, i64),
    payload: &Value,
    command: &str,
) {
    let event_type = payload
        .as_object()
        .and_then(|event| event.keys().next())
        .expect("a tagged event");
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         values ($1, $2, $3, $4, '1', $5, $6)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .bind(sequence)
    .bind(event_type)
    .bind(payload)
    .bind(serde_json::json!({"actor": "another-writer", "command": command}))
    .execute(tx)
    .await
    .unwrap();
}

/// Commits that stored `event_type` events in this test's database, against
/// how many such events: fewer commits than events means batches were shared
/// here (the batch-size metric also counts other tests of the process).
pub async fn commits_and_events(pool: &PgPool, event_type: &str) -> (i64, i64) {
    sqlx::query_as(
        "select count(distinct transaction_id), count(*) from events where event_type = $1",
    )
    .bind(event_type)
    .fetch_one(pool)
    .await
    .unwrap()
}
