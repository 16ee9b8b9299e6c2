//! `concert restore <file>`: checks that the file is a concert backup and
//! that the store is empty and unused, then `pg_restore`s it in one
//! transaction (a cut-short or corrupt file rolls back: nothing changes),
//! applies any newer migrations and positions the events the backup held
//! without a position yet.

use std::path::Path;
use std::process::Stdio;

use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::meter::Meter;
use super::{io_err, last_lines, BackupError, ToolConnection};
use crate::config::Config;
use crate::private_postgres::server_tool;

/// What a finished restore brought back.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// Events in the store.
    pub events: i64,
    /// The highest log position (every event has one after a restore).
    pub last_position: i64,
    /// Events the backup held without a position, positioned now.
    pub positioned: u64,
    /// Payments the copy caught half-way, finished or refunded now.
    pub payments_settled: usize,
    /// Queue entry numbers the copy caught taken without their ticket,
    /// recorded as unused now.
    pub entry_numbers_released: u64,
    /// Seconds it took.
    pub seconds: f64,
}

/// Restores `file` into the empty database at `url`; `config` drives the
/// payment recovery that runs afterwards.
pub async fn restore(
    url: &str,
    file: &Path,
    config: &Config,
) -> Result<RestoreReport, BackupError> {
    let pg_restore = server_tool("pg_restore").ok_or(BackupError::NoTool("pg_restore"))?;
    let mut meter = Meter::new("restore");
    let items = list(&pg_restore, file).await?;
    // This session holds the lock until the restore is over (it closes
    // when `conn` is dropped, whatever the outcome).
    let mut conn = PgConnection::connect(url).await?;
    // Refused before anything is loaded, not by the service afterwards.
    crate::db::ensure_utf8(&mut conn).await?;
    if !super::take_copy_lock(&mut conn, "pg_try_advisory_lock").await? {
        return Err(BackupError::BackupRunning);
    }
    let schema_set_aside = ensure_empty(&mut conn).await? && set_schema_aside(&mut conn).await;
    let restored = run_pg_restore(&pg_restore, url, file, items, &mut meter).await;
    // Also drops a schema a restore killed half-way set aside.
    if schema_set_aside || restored.is_ok() {
        let settled = settle_set_aside_schema(&mut conn, restored.is_ok()).await;
        // The restore's own failure is the one to report.
        if let (Err(_), Err(error)) = (&restored, &settled) {
            tracing::error!(%error, "could not put the store's schema back after the failed restore; it is in schema {SET_ASIDE}");
        }
        restored?;
        settled?;
    } else {
        restored?;
    }

    let pool = crate::db::connect(url, 2).await?;
    crate::db::migrate(&pool)
        .await
        .map_err(|e| BackupError::Database(sqlx::Error::Migrate(Box::new(e))))?;
    // The payments settled below are decided on the database's clock.
    crate::clock::follow_database_once(&pool).await?;
    let positioned = crate::event_log::assign_positions(&pool).await?;
    let entry_numbers_released =
        crate::projections::queue_entries::release_numbers_without_tickets(&pool).await?;
    let payments_settled = super::settle::settle_payments(pool.clone(), config).await?;
    let events: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await?;
    let last_position = crate::event_log::last_position(&pool).await?;
    pool.close().await;
    // Everything is committed: a failure to say goodbye changes nothing.
    let _ = conn.close().await;
    Ok(RestoreReport {
        events,
        last_position,
        positioned,
        payments_settled,
        entry_numbers_released,
        seconds: meter.elapsed(),
    })
}

/// Runs `pg_restore` of `file` into `url` in one transaction.
async fn run_pg_restore(
    pg_restore: &Path,
    url: &str,
    file: &Path,
    items: usize,
    meter: &mut Meter,
) -> Result<(), BackupError> {
    // The password goes to its environment, not its command line.
    let connection = ToolConnection::new(url);
    let mut child = tokio::process::Command::from(connection.command(pg_restore))
        .args([
            "--single-transaction",
            "--exit-on-error",
            "--clean",
            "--if-exists",
        ])
        // Objects belong to whoever restores: the copy may come from another server.
        .args([
            "--no-owner",
            "--no-privileges",
            "--verbose",
            "--no-password",
        ])
        .arg(format!("--dbname={}", connection.url))
        .arg(file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(io_err(format!("running {}", pg_restore.display())))?;
    let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
    let mut output = String::new();
    let mut done = 0;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(io_err("reading pg_restore's output"))?
    {
        if line.contains("processing item") || line.contains("creating ") {
            done += 1;
            meter.step(done.min(items), items, "archive items");
        }
        output.push_str(&line);
        output.push('\n');
    }
    let status = child
        .wait()
        .await
        .map_err(io_err("waiting for pg_restore"))?;
    meter.finish();
    if !status.success() {
        let errors: String = output
            .lines()
            .filter(|line| {
                !line.contains("pg_restore: processing")
                    && !line.contains("pg_restore: creating")
                    && !line.contains("pg_restore: dropping")
            })
            .collect::<Vec<_>>()
            .join("\n");
        return Err(BackupError::RestoreFailed {
            status: status.to_string(),
            stderr: last_lines(&errors, 20),
        });
    }
    Ok(())
}

/// The archive's table of contents: how many items it has; refuses a file
/// pg_restore cannot read, or an archive without an event log.
async fn list(pg_restore: &Path, file: &Path) -> Result<usize, BackupError> {
    if let Err(error) = tokio::fs::metadata(file).await {
        return Err(io_err(format!("reading {}", file.display()))(error));
    }
    let output = tokio::process::Command::new(pg_restore)
        .arg("--list")
        .arg(file)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(io_err(format!("running {}", pg_restore.display())))?;
    if !output.status.success() {
        return Err(BackupError::Unreadable {
            file: file.to_path_buf(),
            detail: last_lines(&String::from_utf8_lossy(&output.stderr), 5),
        });
    }
    let toc = String::from_utf8_lossy(&output.stdout);
    if !is_a_concert_store(&toc) {
        return Err(BackupError::NotAConcertBackup(file.to_path_buf()));
    }
    Ok(toc.lines().filter(|line| !line.starts_with(';')).count())
}

/// Whether an archive's table of contents holds the tables every concert
/// store has had since its first migration. An `events` table alone is not
/// enough: another application's archive with one was restored, and then
/// the migrations failed on it, leaving a store that neither served nor took
/// a restore again.
fn is_a_concert_store(toc: &str) -> bool {
    ["events", "snapshots", "_sqlx_migrations"]
        .iter()
        .all(|table| {
            let data = format!(" TABLE DATA public {table} ");
            toc.lines().any(|line| line.contains(&data))
        })
}

/// Refuses a store that has events, or that other sessions use (a running
/// service would write into the copy while it is restored); tells whether
/// it has concert's schema (migrated, without events).
async fn ensure_empty(conn: &mut PgConnection) -> Result<bool, BackupError> {
    let has_log: bool = sqlx::query_scalar("select to_regclass('public.events') is not null")
        .fetch_one(&mut *conn)
        .await?;
    if has_log {
        let events: i64 = sqlx::query_scalar("select count(*) from events")
            .fetch_one(&mut *conn)
            .await?;
        if events > 0 {
            return Err(BackupError::StoreNotEmpty { events });
        }
    }
    let others: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity
         where datname = current_database() and backend_type = 'client backend'
           and pid <> pg_backend_pid()",
    )
    .fetch_one(&mut *conn)
    .await?;
    if others > 0 {
        return Err(BackupError::InUse(others));
    }
    Ok(has_log)
}

/// Where an empty store's schema waits while a copy is restored.
const SET_ASIDE: &str = "concert_before_restore";

/// Sets a migrated but empty store's schema aside, so that the copy is
/// restored into an empty one. `pg_restore --clean` drops only what the
/// archive holds: a copy made before a later migration left that
/// migration's tables in place, and applying the migration after the
/// restore then failed on them, with the copy already committed. Without
/// the right to rename the schema, the restore goes ahead as before.
async fn set_schema_aside(conn: &mut PgConnection) -> bool {
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
async fn settle_set_aside_schema(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_archive_is_a_concert_store_by_its_event_log_snapshots_and_migrations() {
        let concert = "3401; 0 16401 TABLE DATA public _sqlx_migrations postgres\n\
                       3402; 0 16412 TABLE DATA public events postgres\n\
                       3403; 0 16420 TABLE DATA public snapshots postgres\n";
        let foreign = "3301; 0 16390 TABLE DATA public customers app\n\
                       3302; 0 16385 TABLE DATA public events app\n";

        assert!(is_a_concert_store(concert));
        assert!(!is_a_concert_store(foreign));
        assert!(!is_a_concert_store(""));
    }
}
