//! What `concert serve` ran with, recorded in the database for the tools
//! that read the log later (`concert audit`): the queue's active limit is in
//! no event, and an audit against another limit would name admissions that
//! were within it, or miss ones that were not. Each limit is kept with the
//! log position it started at (`served_limits`, migration 0012); the table
//! of migration 0009, `served_settings`, kept only the last one and is no
//! longer written. The hold and admission TTLs are in no event either:
//! each pair is kept with the position it was first served at
//! (`served_ttls`, migration 0013).

use sqlx::PgPool;

use crate::audit::{ServedTtls, Ttls};

/// Records `limit` as the active limit served with from now on, and from
/// which position of the log when it is another than the last one's (the
/// events committed so far are positioned first, so that they are all
/// before it); returns the one recorded before when it was another.
pub async fn record_queue_active_max(pool: &PgPool, limit: u32) -> sqlx::Result<Option<u32>> {
    let before: Option<i32> = sqlx::query_scalar(
        "select queue_active_max from served_limits order by from_position desc limit 1",
    )
    .fetch_optional(pool)
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
    let before = before.and_then(|before| u32::try_from(before).ok());
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

/// Records the hold and admission TTLs this serve runs with, at the log's
/// position now unless a serve ran with them before (the events committed
/// so far are positioned first, so that they are all before it).
pub async fn record_ttls(pool: &PgPool, ttls: Ttls) -> sqlx::Result<()> {
    crate::event_log::assign_positions(pool).await?;
    sqlx::query(
        "insert into served_ttls (hold_ttl_secs, queue_active_ttl_secs, from_position)
         select $1, $2, coalesce(max(position), 0) from events
         on conflict (hold_ttl_secs, queue_active_ttl_secs) do nothing",
    )
    .bind(i32::try_from(ttls.hold_secs).unwrap_or(i32::MAX))
    .bind(i32::try_from(ttls.active_secs).unwrap_or(i32::MAX))
    .execute(pool)
    .await?;
    Ok(())
}

/// Each pair of TTLs the service was served with, from the position of the
/// log after which it was first; `None` when no serve recorded one.
pub async fn served_ttls(pool: &PgPool) -> sqlx::Result<Option<ServedTtls>> {
    let rows: Vec<(i64, i32, i32)> = sqlx::query_as(
        "select from_position, hold_ttl_secs, queue_active_ttl_secs from served_ttls",
    )
    .fetch_all(pool)
    .await?;
    let changes = rows
        .into_iter()
        .map(|(from, hold, active)| {
            let ttls = Ttls {
                hold_secs: u32::try_from(hold).unwrap_or(0),
                active_secs: u32::try_from(active).unwrap_or(0),
            };
            (from, ttls)
        })
        .collect();
    Ok(ServedTtls::served(changes))
}
