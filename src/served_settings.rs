//! What `concert serve` last ran with, recorded in the database for the
//! tools that read the log later (`concert audit`): the queue's active limit
//! is in no event, and an audit against another limit would name admissions
//! that were within it, or miss ones that were not.

use sqlx::PgPool;

const QUEUE_ACTIVE_MAX: &str = "queue_active_max";

/// Records `limit` as the active limit served with from now on, and from
/// which position of the log when it is another than the last one's (the
/// events committed so far are positioned first, so that they are all
/// before it); returns the one recorded before when it was another.
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
    crate::event_log::assign_positions(pool).await?;
    sqlx::query(
        "with last as (select coalesce(max(position), 0) as position from events)
         insert into served_limits (from_position, queue_active_max)
         select last.position, $1 from last
         where $1 is distinct from
               (select queue_active_max from served_limits order by from_position desc limit 1)
         on conflict (from_position) do update
         set queue_active_max = excluded.queue_active_max, served_at = now()",
    )
    .bind(i32::try_from(limit).unwrap_or(i32::MAX))
    .execute(pool)
    .await?;
    Ok(before.filter(|before| *before != limit))
}

/// Each active limit the service was served with, from the position of the
/// log after which it held; `None` when no serve recorded one.
pub async fn served_limits(pool: &PgPool) -> sqlx::Result<Option<crate::audit::ActiveLimits>> {
    let rows: Vec<(i64, i32)> = sqlx::query_as(
        "select from_position, queue_active_max from served_limits order by from_position",
    )
    .fetch_all(pool)
    .await?;
    let changes = rows
        .into_iter()
        .map(|(from, limit)| (from, u32::try_from(limit).unwrap_or(0)))
        .collect();
    Ok(crate::audit::ActiveLimits::served(changes))
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
