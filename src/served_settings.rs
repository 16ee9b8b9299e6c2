//! What `concert serve` last ran with, recorded in the database for the
//! tools that read the log later (`concert audit`): the queue's active limit
//! is in no event, and an audit against another limit would name admissions
//! that were within it, or miss ones that were not.

use sqlx::PgPool;

const QUEUE_ACTIVE_MAX: &str = "queue_active_max";

/// Records `limit` as the active limit served with from now on; returns the
/// one recorded before when it was another.
pub async fn record_queue_active_max(pool: &PgPool, limit: u32) -> sqlx::Result<Option<u32>> {
    let before = recorded_queue_active_max(pool).await?;
    sqlx::query(
        "insert into served_settings (name, value) values ($1, $2)
         on conflict (name) do update set value = excluded.value, served_at = now()",
    )
    .bind(QUEUE_ACTIVE_MAX)
    .bind(limit.to_string())
    .execute(pool)
    .await?;
    Ok(before.filter(|before| *before != limit))
}

/// The active limit the service last ran with, if it ever ran on this database.
pub async fn recorded_queue_active_max(pool: &PgPool) -> sqlx::Result<Option<u32>> {
    let value: Option<String> =
        sqlx::query_scalar("select value from served_settings where name = $1")
            .bind(QUEUE_ACTIVE_MAX)
            .fetch_optional(pool)
            .await?;
    Ok(value.and_then(|value| value.parse().ok()))
}
