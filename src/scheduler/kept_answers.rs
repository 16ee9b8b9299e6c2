//! Forgets the answers kept for `Idempotency-Key`s once they are older than
//! `CONCERT_IDEMPOTENCY_KEY_TTL_SECS`, so that their table does not grow for
//! good. A retry after that is still recognised: its command's id derives
//! from the key, and the aggregates remember the ids they handled (a
//! wallet its last 1,000 charges and every payment, a seat its holds).

use std::time::Duration;

use tokio::sync::watch;

use super::TICK_DEADLINE;
use crate::booking::idempotency;
use crate::state::AppState;

/// Longest time between two looks for answers to forget.
const LOOK_AT_LEAST_EVERY: Duration = Duration::from_secs(600);

/// Looks for answers to forget twice per their lifetime (every ten minutes
/// at most), until `shutdown` turns true.
pub(super) async fn forget_old_answers(app: AppState, mut shutdown: watch::Receiver<bool>) {
    let kept_for = Duration::from_secs(app.config.idempotency_key_ttl_secs);
    let period = (kept_for / 2).clamp(Duration::from_secs(1), LOOK_AT_LEAST_EVERY);
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        }
        let forgetting = idempotency::forget_answers_older_than(&app.pool, kept_for);
        let forgotten = tokio::select! {
            forgotten = tokio::time::timeout(TICK_DEADLINE, forgetting) => forgotten,
            _ = shutdown.wait_for(|stopped| *stopped) => return,
        };
        match forgotten {
            Ok(Ok(0)) => {}
            Ok(Ok(forgotten)) => {
                tracing::info!(forgotten, "forgot answers kept for old Idempotency-Keys")
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "forgetting old Idempotency-Key answers failed")
            }
            Err(_) => tracing::warn!(
                deadline_secs = TICK_DEADLINE.as_secs(),
                "forgetting old Idempotency-Key answers was given up at its deadline"
            ),
        }
    }
}
