//! The scheduler: expires lapsed holds and timed-out tokens, admits waiting
//! tokens in FIFO order up to the active limit, and finishes payments a crash
//! cut short; beside them, it forgets the answers kept for old
//! `Idempotency-Key`s. It works from the read models, so after a restart overdue work is
//! done at once. Each duty keeps its own beat and its own leadership (a
//! transaction-scoped advisory lock, so several `serve` processes never
//! over-admit): one that cannot finish, such as a seat whose expiry waits on
//! rows a frozen transaction locked, holds none of the others back. Every
//! command it sends is idempotent besides.

mod duties;
mod kept_answers;
mod numbers;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};
use tokio::sync::watch;

pub use duties::admit_tickets;

use crate::booking::BookingError;
use crate::commands::CommandContext;
use crate::config::Config;
use crate::db::Leased;
use crate::state::AppState;

/// Advisory lock key of the admissions' leadership ("concert" in ASCII).
pub const LEADER_LOCK: i64 = 0x0063_6f6e_6365_7274;

/// How long a round may run before it is given up. Its leadership
/// transaction idles while the round works, so the database ends the
/// leadership of a round longer than 15 s (`idle_in_transaction_session_timeout`),
/// whose admissions then stop; a round waiting on a connection whose server
/// stopped answering without closing it would otherwise stop that duty of
/// this instance for good.
const TICK_DEADLINE: Duration = Duration::from_secs(90);

/// How long a round waits for each of its own statements (its leadership
/// and its reads, each a few milliseconds): on a connection whose server
/// stopped answering, the round fails then and the next begins on a fresh
/// one, where before the duty stopped until the round's deadline (a frozen
/// admission round held every admission for 90 s).
const OWN_STATEMENT_DEADLINE: Duration = Duration::from_secs(10);

/// `statement`, one of a round's own, failed if not answered in time.
async fn own_statement<T, E: Into<BookingError>>(
    statement: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, BookingError> {
    match tokio::time::timeout(OWN_STATEMENT_DEADLINE, statement).await {
        Ok(answered) => answered.map_err(Into::into),
        Err(_) => Err(BookingError::Unavailable(format!(
            "the database did not answer a scheduler round's statement within {} s",
            OWN_STATEMENT_DEADLINE.as_secs()
        ))),
    }
}

/// What the scheduler does. Each duty runs on its own beat under its own
/// leadership: when they shared one round, a seat whose expiry waited on a
/// lock stopped every admission with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Duty {
    /// Records `HoldExpired` for lapsed holds.
    ExpireHolds,
    /// Expires active tokens whose time ran out.
    ExpireTickets,
    /// Admits the oldest waiting tokens into free active places.
    AdmitTickets,
    /// Finishes or refunds payments cut short after their debit.
    FinishPayments,
}

impl Duty {
    const ALL: [Duty; 4] = [
        Duty::ExpireHolds,
        Duty::ExpireTickets,
        Duty::AdmitTickets,
        Duty::FinishPayments,
    ];

    fn name(self) -> &'static str {
        match self {
            Duty::ExpireHolds => "expire_holds",
            Duty::ExpireTickets => "expire_tickets",
            Duty::AdmitTickets => "admit_tickets",
            Duty::FinishPayments => "finish_payments",
        }
    }

    /// How often it runs at least. Holds are looked at at least once a TTL,
    /// so that each hold's deadline is known before it falls due, and the
    /// round can wake for it.
    fn beat(self, config: &Config) -> Duration {
        let interval = Duration::from_millis(config.scheduler_interval_ms);
        match self {
            Duty::ExpireHolds => interval.min(config.hold_ttl()),
            _ => interval,
        }
    }

    /// Advisory lock key of its leadership (ASCII of its name); the
    /// admissions keep the key all duties shared before.
    fn leader_lock(self) -> i64 {
        match self {
            Duty::ExpireHolds => 0x0000_7868_6f6c_6473,
            Duty::ExpireTickets => 0x7874_6963_6b65_7473,
            Duty::AdmitTickets => LEADER_LOCK,
            Duty::FinishPayments => 0x7061_796d_656e_7473,
        }
    }
}

/// Runs every duty every `scheduler_interval_ms` until `shutdown` turns
/// true. (Events are positioned by the live feed, after each commit and at
/// least once a second, and by every read of the log for auditors.)
pub async fn run(app: AppState, shutdown: watch::Receiver<bool>) {
    // Beside the duties, so that a long look does not hold expiries back.
    let numbers = tokio::spawn(numbers::release_abandoned_numbers(
        app.clone(),
        shutdown.clone(),
    ));
    let answers = tokio::spawn(kept_answers::forget_old_answers(
        app.clone(),
        shutdown.clone(),
    ));
    let duties: Vec<_> = Duty::ALL
        .into_iter()
        .map(|duty| tokio::spawn(keep_doing(duty, app.clone(), shutdown.clone())))
        .collect();
    for duty in duties {
        let _ = duty.await;
    }
    let _ = numbers.await;
    let _ = answers.await;
    tracing::info!("scheduler stopped");
}

/// Runs rounds of `duty` on its beat, and at the moment work the last
/// round saw ahead falls due, until `shutdown` turns true.
async fn keep_doing(duty: Duty, app: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut beat = tokio::time::interval(duty.beat(&app.config));
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut early = (duty == Duty::ExpireHolds).then(|| app.early_hold_deadlines.subscribe());
    let mut due = None;
    loop {
        tokio::select! {
            _ = beat.tick() => {}
            _ = wake_at(due) => {}
            Some(deadline) = next_early(&mut early) => {
                let at = instant_of(deadline);
                due = Some(due.map_or(at, |due: tokio::time::Instant| due.min(at)));
                continue;
            }
            _ = shutdown.changed() => break,
        }
        due = None;
        if *shutdown.borrow() {
            break;
        }
        // A round in progress does not hold shutdown up: its commands are
        // the pipelines' own, and what it left undone is due again.
        let done = tokio::select! {
            done = tokio::time::timeout(TICK_DEADLINE, tick(&app, duty)) => done,
            _ = shutdown.wait_for(|stopped| *stopped) => break,
        };
        match done {
            Ok(Ok(round)) => due = round.and_then(|round| round.next_due).map(instant_of),
            Ok(Err(error)) => tracing::warn!(%error, duty = duty.name(), "scheduler round failed"),
            Err(_) => tracing::error!(
                duty = duty.name(),
                deadline_secs = TICK_DEADLINE.as_secs(),
                "scheduler round given up at its deadline (the database stopped answering on one of its connections)"
            ),
        }
    }
}

/// The next deadline of a hold cut short that `early` hands over, or never.
async fn next_early(
    early: &mut Option<watch::Receiver<Option<DateTime<Utc>>>>,
) -> Option<DateTime<Utc>> {
    if let Some(told) = early {
        if told.changed().await.is_ok() {
            return *told.borrow_and_update();
        }
    }
    std::future::pending().await
}

/// Sleeps until `at`, or for good.
async fn wake_at(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The moment of this process's clock just past `due` on the database's.
fn instant_of(due: DateTime<Utc>) -> tokio::time::Instant {
    let ahead = (due - crate::clock::now()).to_std().unwrap_or_default();
    tokio::time::Instant::now() + ahead + Duration::from_millis(1)
}

/// What one round of a duty learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Round {
    /// When its next work falls due, where it knows (a hold's deadline).
    next_due: Option<DateTime<Utc>>,
}

/// One round of `duty`, if this instance wins its leadership (None when
/// another instance leads it). The round reads its work on its leadership's
/// connection, which is closed rather than handed back when the round fails
/// or is given up: the pool's check of a connection handed back mid-statement
/// waits for the answers owed on it, which a server that stopped answering
/// never sends, and four duties stuck so held half the pool's places.
async fn tick(app: &AppState, duty: Duty) -> Result<Option<Round>, BookingError> {
    let mut conn = Leased::acquire(&app.pool).await?;
    let mut leadership = own_statement(conn.begin()).await?;
    if !own_statement(take_lock(&mut leadership, duty.leader_lock())).await? {
        own_statement(leadership.rollback()).await?;
        conn.release();
        return Ok(None);
    }
    let context = CommandContext::scheduler();
    let next_due = match duty {
        Duty::ExpireHolds => {
            let (expired, next_due) = duties::expire_holds(app, &mut leadership, &context).await?;
            metrics::counter!("concert_holds_expired_total").increment(expired as u64);
            next_due
        }
        Duty::ExpireTickets => {
            duties::expire_tickets(app, &mut leadership, &context).await?;
            None
        }
        Duty::AdmitTickets => {
            duties::admit_tickets(app, &mut leadership, &context).await?;
            None
        }
        Duty::FinishPayments => {
            duties::finish_payments(app, &mut leadership, &context).await?;
            None
        }
    };
    own_statement(leadership.commit()).await?;
    conn.release();
    Ok(Some(Round { next_due }))
}

/// Leads the admissions if no other instance does: the lock lasts as long
/// as `leadership`'s transaction.
pub async fn take_leadership(leadership: &mut PgConnection) -> Result<bool, BookingError> {
    take_lock(leadership, LEADER_LOCK).await
}

async fn take_lock(leadership: &mut PgConnection, key: i64) -> Result<bool, BookingError> {
    Ok(sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
        .bind(key)
        .fetch_one(leadership)
        .await?)
}

/// Whether this instance still leads the admissions it took the lead of.
/// Its session may have been cut meanwhile (a severed connection, a
/// terminated backend), and the lock with it, which another instance may
/// hold by now. The lock is taken again on the same session: granted if it
/// is still held there, refused or failed otherwise.
async fn still_leading(leadership: &mut PgConnection) -> bool {
    own_statement(take_leadership(leadership))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advisory_lock_has_a_key_of_its_own() {
        // A replay once took the admissions' key: nobody was admitted while it ran.
        let mut keys: Vec<i64> = Duty::ALL.iter().map(|duty| duty.leader_lock()).collect();
        keys.extend([
            numbers::NUMBERS_LOCK,
            crate::event_log::POSITIONER_LOCK,
            crate::backup::COPY_LOCK,
            crate::replay::REPLAY_LOCK,
            crate::demo::DEMO_LOCK,
        ]);
        let mut distinct = keys.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), keys.len(), "{keys:x?}");
    }
}
