//! The look for queue entry numbers taken by entries that never committed.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::Connection;
use tokio::sync::watch;
use uuid::Uuid;

use super::TICK_DEADLINE;
use crate::db::Leased;
use crate::projections::queue_entries;
use crate::state::AppState;

/// How often an instance looks for entry numbers taken by entries that
/// never committed.
const RELEASE_NUMBERS_EVERY: Duration = Duration::from_secs(5);
/// How long after a later ticket entered a number without its ticket is
/// taken for abandoned: a little longer than a request waits for its
/// answer. An entry commits within milliseconds of taking its number; one
/// still not committed when its own request has given up is what a killed
/// instance leaves. One that commits later still (its instance paused, its
/// batch held up) takes its number back
/// (`queue_ticket_batches::NUMBERS_IN_USE_AFTER_ALL`), unless it commits
/// while the look's statement runs: then the number counts twice once its
/// ticket leaves the line, which is why the wait is not shorter. Ten
/// minutes, as this was, left every waiting place behind a killed
/// instance's numbers that many places too far back for the whole of a
/// short sale (34 after one kill in a probe).
fn abandoned_after(request_timeout_secs: u64) -> chrono::TimeDelta {
    // At most 3,600 s (the setting's range): no overflow.
    chrono::TimeDelta::seconds(request_timeout_secs as i64 + 5)
}

/// Advisory lock key of that look, so one instance looks at a time.
pub(crate) const NUMBERS_LOCK: i64 = 0x0071_6e75_6d62_6572;

/// Every few seconds, records as unused the entry numbers of entries that never
/// committed (an instance killed between taking the number and committing
/// the ticket), so the tickets behind them move up. Each number is looked at
/// once by this instance (`settled`).
pub(super) async fn release_abandoned_numbers(app: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut settled = HashMap::new();
    let mut every = tokio::time::interval(RELEASE_NUMBERS_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        }
        // A look in progress does not hold shutdown up: it is idempotent.
        // Nor does one waiting on a connection whose server stopped
        // answering hold the next looks up.
        let looked = tokio::select! {
            looked = tokio::time::timeout(TICK_DEADLINE, release_numbers_once(&app, &mut settled)) => looked,
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        };
        let Ok(looked) = looked else {
            tracing::warn!(
                deadline_secs = TICK_DEADLINE.as_secs(),
                "the look for abandoned queue entry numbers was given up at its deadline"
            );
            continue;
        };
        match looked {
            Ok(0) => {}
            Ok(released) => {
                tracing::warn!(
                    released,
                    "released queue entry numbers whose entries never committed"
                )
            }
            Err(error) => {
                tracing::warn!(%error, "looking for abandoned queue entry numbers failed")
            }
        }
    }
}

/// One look, if no other instance is looking.
async fn release_numbers_once(
    app: &AppState,
    settled: &mut HashMap<Uuid, i64>,
) -> sqlx::Result<u64> {
    // Closed rather than handed back if the look fails or is given up, as a
    // scheduler round's (`tick`).
    let mut conn = Leased::acquire(&app.pool).await?;
    let mut lock = conn.begin().await?;
    let taken: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
        .bind(NUMBERS_LOCK)
        .fetch_one(&mut *lock)
        .await?;
    if !taken {
        lock.rollback().await?;
        conn.release();
        return Ok(0);
    }
    let entered_before = crate::clock::now() - abandoned_after(app.config.request_timeout_secs);
    let released =
        queue_entries::release_abandoned_numbers(&app.pool, entered_before, settled).await;
    lock.commit().await?;
    conn.release();
    released
}
