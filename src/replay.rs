//! `concert replay`: rebuilds every read model from the event log into fresh
//! tables, then swaps them in atomically while the service keeps running.
//!
//! The rebuild runs in one transaction whose `search_path` puts a private
//! schema first, so the projections' own SQL writes the fresh tables: the
//! set-based statements of a batch of commands, fed the log in chunks of a
//! batch's shape (`chunks`). Events committed during the rebuild are applied
//! before the swap, and the last moment's after the live tables are locked,
//! just before it.
//!
//! The fresh tables get what the live ones carry besides rows and columns
//! (index names, storage options, owner, privileges, comment) before they are
//! filled: see `live_settings`.
//!
//! Then it drops every snapshot: the service decides on a snapshot as on the
//! log, so one edited behind the log's back would outlive the rebuild.

mod chain_check;
mod chunks;
mod live_settings;
mod swap_waiting;
pub mod table_holders;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sqlx::{Acquire, PgConnection, PgPool};

use crate::event_log;
use crate::event_store::ProjectionError;
use crate::state::Projectors;

/// Every table a projection writes, plus the offsets that go with them.
pub const READ_MODEL_TABLES: [&str; 10] = [
    "projection_offsets",
    "concerts",
    "concert_dates",
    "concert_date_free_seats",
    "seats",
    "reservations",
    "balances",
    "payments",
    "queue_tickets",
    "queue_progress",
];

/// Every row of every read model as text, table by table in
/// `READ_MODEL_TABLES` order: two dumps are equal when the read models are,
/// which is how a rebuild is checked against the incremental read models.
pub async fn dump_read_models(pool: &PgPool) -> sqlx::Result<Vec<(String, Vec<String>)>> {
    let mut dump = Vec::with_capacity(READ_MODEL_TABLES.len());
    for table in READ_MODEL_TABLES {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("select t::text from {table} t order by 1"))
                .fetch_all(pool)
                .await?;
        dump.push((table.to_string(), rows));
    }
    Ok(dump)
}

const BUILD_SCHEMA: &str = "concert_replay";

/// A stream caught up after the rebuild: its aggregate type and id.
type CaughtUpStream = (&'static str, String);

/// What a replay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayReport {
    pub events: u64,
    /// The streams with events committed during the rebuild, caught up
    /// before the swap; each counts once.
    pub caught_up_streams: u64,
    /// Of those, the streams caught up under the swap's locks, while the
    /// service's requests waited.
    pub caught_up_under_locks: u64,
    /// Snapshots dropped after the swap.
    pub snapshots_dropped: u64,
    /// Events of the rebuild that do not match their stored hashes (edited,
    /// deleted or reordered behind the service's back), and the first one's
    /// position: the read models are the log as it is now, which `concert
    /// audit` says is not the log as written.
    pub chain_breaks: u64,
    pub first_chain_break: Option<i64>,
}

/// Why a replay failed; the live read models are untouched then.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("projection: {0}")]
    Projection(#[from] ProjectionError),
    /// Named, so the event can be looked at (`concert audit` names every such one).
    #[error("a stored event does not deserialize, {event}: {source}; `concert audit` names every event it cannot read")]
    Payload {
        event: String,
        source: serde_json::Error,
    },
    #[error("unknown aggregate type {0} in the log")]
    UnknownType(String),
    #[error("the replay's role may not make {owner} the owner of the rebuilt {table}, as it is of the live one (that takes a superuser or a member of {owner}): {source}; the live read models are unchanged")]
    Owner {
        table: String,
        owner: String,
        source: sqlx::Error,
    },
    #[error("the rebuilt read models could not be swapped in for {secs} s: a backup or other long reads of them kept running (holding them: {holders}); the live read models are unchanged")]
    SwapBusy { secs: u64, holders: String },
}

/// Rebuilds the read models; `progress(done, total)` is called as events are applied.
pub async fn replay(
    pool: &PgPool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplayReport, ReplayError> {
    event_log::assign_positions(pool).await?;
    let last = event_log::last_position(pool).await?;
    let total: i64 = sqlx::query_scalar("select count(*) from events where position <= $1")
        .bind(last)
        .fetch_one(pool)
        .await?;
    let projectors = Projectors::new(pool);

    let mut tx = pool.begin().await?;
    take_replay_lock(&mut tx).await?;
    sqlx::query(&format!("drop schema if exists {BUILD_SCHEMA} cascade"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("create schema {BUILD_SCHEMA}"))
        .execute(&mut *tx)
        .await?;
    for table in READ_MODEL_TABLES {
        sqlx::query(&format!(
            "create table {BUILD_SCHEMA}.{table} (like public.{table} including all)"
        ))
        .execute(&mut *tx)
        .await?;
        live_settings::carry_over_before_fill(&mut tx, table).await?;
    }
    sqlx::query(&format!("set local search_path = {BUILD_SCHEMA}, public"))
        .execute(&mut *tx)
        .await?;

    // Keyset pages of the log, in commit order: memory stays flat.
    let mut done: u64 = 0;
    let mut after = 0;
    let mut chain = chain_check::ChainCheck::default();
    loop {
        let batch = event_log::raw_batch(pool, after, last).await?;
        let Some(page_end) = batch.last() else { break };
        after = page_end.position;
        batch.iter().for_each(|row| chain.read(row));
        // Runs of a batch's shape go through the pipeline's set-based statements.
        for range in chunks::chunks(&batch) {
            chunks::apply(&mut tx, &projectors, &batch[range]).await?;
        }
        done += batch.len() as u64;
        progress(done, total as u64);
    }
    sqlx::query(
        "insert into projection_offsets (aggregate_type, aggregate_id, last_sequence)
         select aggregate_type, aggregate_id, max(sequence) from public.events where position <= $1
         group by aggregate_type, aggregate_id",
    )
    .bind(last)
    .execute(&mut *tx)
    .await?;
    for table in READ_MODEL_TABLES {
        live_settings::carry_over_after_fill(&mut tx, table).await?;
    }

    // A long reader of the live tables (a backup's snapshot, an export) would
    // make the swap wait with every writer queued behind it, and then fail
    // with the whole rebuild: the swap is tried in a savepoint instead,
    // briefly, until those readers are done.
    let started = Instant::now();
    let mut waiting = swap_waiting::SwapWaiting::default();
    // A stream may be caught up in several passes, and again after a swap
    // tried and rolled back: the report counts it once.
    let mut caught_up = HashSet::new();
    let caught_up_under_locks = loop {
        // What committed while the rebuild ran or the swap waited, applied
        // before the locks, so that under them only the last moment's is.
        catch_up_before_swap(&mut tx, &projectors, last, &mut caught_up).await?;
        let mut swap = tx.begin().await?;
        match swap_in(&mut swap, &projectors, last, waiting.lock_wait).await {
            Ok(under_locks) => {
                swap.commit().await?;
                let count = under_locks.len() as u64;
                caught_up.extend(under_locks);
                break count;
            }
            Err(error) if is_busy(&error) => {
                swap.rollback().await?;
                let holders = table_holders::table_holders(
                    &mut tx,
                    &READ_MODEL_TABLES,
                    crate::backup::COPY_LOCK,
                )
                .await?;
                if started.elapsed() >= SWAP_WAIT_MOST {
                    return Err(ReplayError::SwapBusy {
                        secs: SWAP_WAIT_MOST.as_secs(),
                        holders: table_holders::describe(&holders),
                    });
                }
                waiting.tried(&mut tx, &holders, started.elapsed()).await?;
                tokio::time::sleep(SWAP_RETRY_AFTER).await;
            }
            Err(error) => return Err(error),
        }
    };
    sqlx::query(&format!("drop schema {BUILD_SCHEMA}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let snapshots_dropped = drop_snapshots(pool).await?;
    Ok(ReplayReport {
        events: done,
        caught_up_streams: caught_up.len() as u64,
        caught_up_under_locks,
        snapshots_dropped,
        chain_breaks: chain.breaks,
        first_chain_break: chain.first_break,
    })
}

/// The advisory lock a replay holds until it commits: one rebuild at a time
/// uses the build schema. Its own key ("replay" in ASCII): it was the
/// admissions' leadership key, and nobody was admitted while a replay ran.
pub const REPLAY_LOCK: i64 = 0x0000_7265_706c_6179;
/// How often a replay looks again whether another one has ended.
const REPLAY_LOCK_RETRY: Duration = Duration::from_millis(500);

/// Takes `REPLAY_LOCK` for the transaction, waiting (and saying so) while
/// another replay holds it. Each try is a statement of its own: a wait in
/// one statement would end at the pool's lock timeout. Three replays at once
/// failed the second that way, after 20 s, on the build schema's lock.
async fn take_replay_lock(tx: &mut PgConnection) -> Result<(), ReplayError> {
    let mut told = false;
    loop {
        let taken: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
            .bind(REPLAY_LOCK)
            .fetch_one(&mut *tx)
            .await?;
        if taken {
            return Ok(());
        }
        if !told {
            tracing::warn!(
                "another `concert replay` is running on this database; waiting for it to end"
            );
            told = true;
        }
        tokio::time::sleep(REPLAY_LOCK_RETRY).await;
    }
}

/// Stop catching up before the swap once a pass finds no more streams
/// behind than this: what commits during the last pass is caught up under
/// the swap's locks, while requests wait.
const FEW_BEHIND: u64 = 100;
/// The most passes before the swap: a service that commits faster than a
/// pass catches up would otherwise keep the replay from ever swapping.
const CATCH_UP_PASSES: usize = 8;

/// Catches the rebuilt tables up with what committed while they were built,
/// pass after pass (each finds what committed during the one before) until a
/// pass finds few streams behind. A flash sale running during a replay left
/// 36,856 streams for one pass, which took 20 s, and what committed in those
/// 20 s was then caught up under the locks: requests waited 5 s, and some
/// got `503`.
async fn catch_up_before_swap(
    tx: &mut PgConnection,
    projectors: &Projectors,
    rebuilt_upto: i64,
    caught_up: &mut HashSet<CaughtUpStream>,
) -> Result<(), ReplayError> {
    for _ in 0..CATCH_UP_PASSES {
        let pass = projectors.catch_up_in(tx, rebuilt_upto).await?;
        let few_behind = pass.len() as u64 <= FEW_BEHIND;
        caught_up.extend(pass);
        if few_behind {
            break;
        }
    }
    Ok(())
}

/// Drops every snapshot, so each stream is loaded whole until its next
/// snapshot is due (`store_snapshots` writes one at every hundredth event of a
/// wallet, with or without one before). Outside the rebuild's transaction: a
/// writer moving a snapshot on would otherwise wait for the whole rebuild.
/// A writer that loaded a snapshot dropped here finds it gone when it moves
/// it on, and decides again on the whole stream, as when another writer
/// moved it first.
async fn drop_snapshots(pool: &PgPool) -> sqlx::Result<u64> {
    let dropped = sqlx::query("delete from snapshots").execute(pool).await?;
    Ok(dropped.rows_affected())
}

/// How long one try of the swap waits for a backup under way to finish.
const BACKUP_WAIT: &str = "2s";
/// The pause between tries of the swap.
const SWAP_RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long a rebuilt replay keeps trying to swap before it gives up.
const SWAP_WAIT_MOST: Duration = Duration::from_secs(600);

/// Swaps the rebuilt tables in for the live ones, with the events committed
/// meanwhile applied first; busy (`is_busy`) when a backup did not finish
/// within `BACKUP_WAIT` or the tables' locks did not come within
/// `lock_wait`.
async fn swap_in(
    swap: &mut PgConnection,
    projectors: &Projectors,
    rebuilt_upto: i64,
    lock_wait: Duration,
) -> Result<Vec<CaughtUpStream>, ReplayError> {
    // A backup shares this lock while it copies: its snapshot reads every
    // table until it is done. The swap waits for it in line rather than
    // trying: a backup asked for later then waits behind the swap, where
    // back-to-back backups had kept a replay from swapping for minutes.
    sqlx::query(&format!("set local lock_timeout = '{BACKUP_WAIT}'"))
        .execute(&mut *swap)
        .await?;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(crate::backup::COPY_LOCK)
        .execute(&mut *swap)
        .await?;
    sqlx::query(&format!(
        "set local lock_timeout = '{}ms'",
        lock_wait.as_millis()
    ))
    .execute(&mut *swap)
    .await?;
    // Live projections wait from here until the swap commits.
    let live: Vec<String> = READ_MODEL_TABLES
        .iter()
        .map(|table| format!("public.{table}"))
        .collect();
    sqlx::query(&format!(
        "lock table {} in access exclusive mode",
        live.join(", ")
    ))
    .execute(&mut *swap)
    .await?;
    let caught_up = projectors.catch_up_in(swap, rebuilt_upto).await?;
    for table in READ_MODEL_TABLES {
        sqlx::query(&format!("drop table public.{table}"))
            .execute(&mut *swap)
            .await?;
        sqlx::query(&format!(
            "alter table {BUILD_SCHEMA}.{table} set schema public"
        ))
        .execute(&mut *swap)
        .await?;
    }
    Ok(caught_up)
}

/// Whether a try of the swap failed because someone else held the tables.
fn is_busy(error: &ReplayError) -> bool {
    match error {
        // lock_not_available: the lock timeout ran out (on the copy lock a
        // backup shares, or on the live tables).
        ReplayError::Database(sqlx::Error::Database(error)) => {
            error.code().as_deref() == Some("55P03")
        }
        _ => false,
    }
}
