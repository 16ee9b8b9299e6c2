//! `concert restore <file>`: checks that the file is a concert backup and
//! that the store is empty and unused, then `pg_restore`s it in one
//! transaction (a cut-short or corrupt file rolls back: nothing changes)
//! and applies any newer migrations, with a migrated empty store's schema
//! set aside to be put back should either fail or a signal stop them; then
//! positions the events the backup held without a position yet.

use std::path::Path;
use std::process::Stdio;

use sqlx::{Connection, PgConnection};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::meter::Meter;
use super::set_aside::{set_schema_aside, settle_set_aside_schema};
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
    let restored = until_stopped(run_pg_restore(&pg_restore, url, file, items, &mut meter)).await;
    if let Err(BackupError::RestoreInterrupted(_)) = &restored {
        end_pg_restore(&mut conn).await;
    }
    // The migrations belong to the restore: a copy they fail on is undone
    // with it. With nothing set aside there is nothing to put back, so they
    // are left to finish.
    let migrated = match restored {
        Ok(()) if schema_set_aside => until_stopped(migrate_copy(url, true)).await,
        Ok(()) => migrate_copy(url, false).await,
        Err(error) => Err(error),
    };
    // Also drops a schema a restore killed half-way set aside.
    if schema_set_aside || migrated.is_ok() {
        let settled = settle_set_aside_schema(&mut conn, migrated.is_ok()).await;
        match (migrated, settled) {
            (Err(failed), Err(error)) => {
                return Err(BackupError::NotPutBack {
                    failed: failed.to_string(),
                    error: error.to_string(),
                })
            }
            (migrated, settled) => {
                migrated?;
                settled?;
            }
        }
    } else {
        migrated?;
    }
    // From here on each step commits on its own and a signal waits for the
    // rest (seconds): the copy is in, and a restore cannot be run again.

    let pool = crate::db::connect(url, 2).await?;
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

/// `work`, or `BackupError::RestoreInterrupted` once SIGINT or SIGTERM
/// comes first: `work` is dropped then (a `pg_restore` is killed and its
/// transaction rolls back), and the caller puts the store back.
async fn until_stopped(
    work: impl std::future::Future<Output = Result<(), BackupError>>,
) -> Result<(), BackupError> {
    tokio::select! {
        done = work => done,
        signal = crate::server::stop_requested() => Err(BackupError::RestoreInterrupted(signal)),
    }
}

/// Ends the backend of a `pg_restore` killed by a signal: it would go on
/// with its statement (an index build) until it next read from the gone
/// client, holding the locks the schema's put-back waits for.
async fn end_pg_restore(conn: &mut PgConnection) {
    let ended = sqlx::query(
        "select pg_terminate_backend(pid) from pg_stat_activity
         where datname = current_database() and application_name = 'pg_restore'
           and pid <> pg_backend_pid()",
    )
    .execute(&mut *conn)
    .await;
    if let Err(error) = ended {
        tracing::warn!(%error, "could not end the stopped pg_restore's session; its transaction rolls back when it notices");
    }
}

/// Brings the restored copy's schema up to this release's migrations;
/// `undone` tells the error whether the restore is put back after it.
async fn migrate_copy(url: &str, undone: bool) -> Result<(), BackupError> {
    let pool = crate::db::connect(url, 1).await?;
    let migrated = crate::db::migrate(&pool).await;
    pool.close().await;
    migrated.map_err(|error| BackupError::CopyNotMigrated {
        error: error.to_string(),
        undone,
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

/// The tables every concert store has had since its first two migrations.
const FIRST_TABLES: [&str; 13] = [
    "_sqlx_migrations",
    "events",
    "snapshots",
    "projection_offsets",
    "concerts",
    "concert_dates",
    "seats",
    "reservations",
    "balances",
    "payments",
    "queue_tickets",
    "idempotency_keys",
    "server_secrets",
];

/// Whether an archive's table of contents holds the tables every concert
/// store has had since its first migrations. The event store's own tables
/// are not enough: any application on the same event-sourcing libraries has
/// `events`, `snapshots` and `_sqlx_migrations`, and such an archive was
/// restored, then the migrations failed on it.
fn is_a_concert_store(toc: &str) -> bool {
    FIRST_TABLES.iter().all(|table| {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::STORE_TABLES;

    #[test]
    fn an_archive_is_a_concert_store_by_the_tables_of_its_first_migrations() {
        let toc = |tables: &[&str]| -> String {
            (tables.iter().enumerate())
                .map(|(n, table)| {
                    format!(
                        "{}; 0 {} TABLE DATA public {table} postgres\n",
                        3400 + n,
                        16400 + n
                    )
                })
                .collect()
        };
        let concert = toc(&STORE_TABLES);
        // Another application on the same event store: its three tables.
        let event_store_only = toc(&["_sqlx_migrations", "events", "snapshots"]);
        let foreign = toc(&["customers", "events"]);

        assert!(is_a_concert_store(&concert));
        assert!(!is_a_concert_store(&event_store_only));
        assert!(!is_a_concert_store(&foreign));
        assert!(!is_a_concert_store(""));
    }

    #[test]
    fn every_table_an_archive_must_hold_is_one_a_store_has() {
        for table in FIRST_TABLES {
            assert!(STORE_TABLES.contains(&table), "{table}");
        }
    }
}
