//! A migrated but empty store's schema, set aside while a copy is restored
//! into a fresh one, and then dropped or, should the restore fail, put back.

use sqlx::{Connection, PgConnection};

use super::BackupError;

/// Where an empty store's schema waits while a copy is restored.
const SET_ASIDE: &str = "concert_before_restore";

/// Sets a migrated but empty store's schema aside, so that the copy is
/// restored into an empty one and a failed restore (or migration of the
/// copy) puts it back. `pg_restore --clean` drops only what the archive
/// holds: a copy made before a later migration left that migration's tables
/// in place, and applying the migration after the restore then failed on
/// them, with the copy already committed. Without the right to rename the
/// schema, the restore goes ahead as before. (A fresh database's schema is
/// left as it is: its owner and grants are the database's own.)
pub(super) async fn set_schema_aside(conn: &mut PgConnection) -> bool {
    match holds_only_concerts_objects(conn).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(
                "the store's schema holds objects that are not concert's; restoring over it"
            );
            return false;
        }
        Err(_) => return false,
    }
    let statements = format!(
        "drop schema if exists {SET_ASIDE} cascade;
         alter schema public rename to {SET_ASIDE};
         create schema public"
    );
    let Ok(mut transaction) = conn.begin().await else {
        return false;
    };
    match sqlx::raw_sql(&statements).execute(&mut *transaction).await {
        Ok(_) => transaction.commit().await.is_ok(),
        Err(error) => {
            tracing::warn!(%error, "cannot set the empty store's schema aside; restoring over it");
            false
        }
    }
}

/// Every table a migrated store has in its schema.
pub const STORE_TABLES: [&str; 20] = [
    "_sqlx_migrations",
    "balances",
    "concert_date_free_seats",
    "concert_dates",
    "concerts",
    "events",
    "idempotency_keys",
    "payments",
    "projection_offsets",
    "queue_lines",
    "queue_progress",
    "queue_tickets",
    "queue_unused_entries",
    "reservations",
    "seats",
    "served_limits",
    "served_settings",
    "served_ttls",
    "server_secrets",
    "snapshots",
];

/// Every function a migrated store has in its schema (its triggers').
pub const STORE_FUNCTIONS: [&str; 1] = ["events_chain_hash"];

/// Whether `public` holds nothing but a concert store's tables and functions
/// (no other table, view, sequence or function, no extension): only then is
/// it set aside and dropped whole.
async fn holds_only_concerts_objects(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select not exists (
                  select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                  where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
                    and c.relname <> all($1)
                    -- a table's own sequences go with it
                    and not exists (select 1 from pg_depend d
                                    where d.objid = c.oid and d.deptype in ('a', 'i')))
            and not exists (
                  select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                  where n.nspname = 'public' and p.proname <> all($2))
            and not exists (
                  select 1 from pg_extension e join pg_namespace n on n.oid = e.extnamespace
                  where n.nspname = 'public')",
    )
    .bind(&STORE_TABLES[..])
    .bind(&STORE_FUNCTIONS[..])
    .fetch_one(conn)
    .await
}

/// Drops the set-aside schema once the copy is in, or puts it back when
/// the restore failed, so that a failed restore changes nothing.
pub(super) async fn settle_set_aside_schema(
    conn: &mut PgConnection,
    restored: bool,
) -> Result<(), BackupError> {
    let statements = if restored {
        format!("drop schema if exists {SET_ASIDE} cascade")
    } else {
        format!(
            "drop schema public cascade;
             alter schema {SET_ASIDE} rename to public"
        )
    };
    let mut transaction = conn.begin().await?;
    sqlx::raw_sql(&statements)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(())
}
