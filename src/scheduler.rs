//! The scheduler: expires lapsed holds and timed-out tokens, admits waiting
//! tokens in FIFO order up to the active limit, and finishes payments a crash
//! cut short. It works from the read models, so after a restart overdue work is
//! done at once. One instance leads each tick (a transaction-scoped advisory
//! lock), so several `serve` processes never over-admit; every command it sends
//! is idempotent besides.

use std::collections::HashMap;
use std::time::Duration;

use futures::{stream, StreamExt};
use sqlx::PgConnection;
use tokio::sync::watch;
use uuid::Uuid;

use crate::aggregates::{ExpiryReason, QueueTicketCommand, SeatCommand};
use crate::booking::payment;
use crate::booking::BookingError;
use crate::commands::{execute, execute_together, CommandContext};
use crate::ids::ReservationId;
use crate::projections::{admissions, payments, queue_entries, queue_tickets, reservations};
use crate::state::AppState;

/// Advisory lock key of the scheduler's leadership ("concert" in ASCII).
pub const LEADER_LOCK: i64 = 0x0063_6f6e_6365_7274;
/// Most items of one kind handled per tick.
const BATCH: i64 = 1000;
/// Commands sent at once (expiries, payments to finish). Each aggregate
/// type's pipeline decides the commands waiting for it together, so this
/// many share one batch; with 8, admissions (then sent this way too)
/// trailed a flash sale's entries by up to a minute (≈ 300 a second).
const PARALLEL: usize = 64;

/// What one tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub leader: bool,
    pub holds_expired: usize,
    pub tickets_expired: usize,
    pub tickets_admitted: usize,
    pub payments_finished: usize,
}

/// How long a tick may run before it is given up. Its leadership
/// transaction idles while the tick works, so the database ends a tick
/// longer than a minute anyway (`idle_in_transaction_session_timeout`); a
/// tick waiting on a connection whose server stopped answering without
/// closing it would otherwise stop this instance's expiries and admissions
/// for good.
const TICK_DEADLINE: Duration = Duration::from_secs(90);

/// Runs ticks every `scheduler_interval_ms` until `shutdown` turns true.
/// (Events are positioned by the live feed, after each commit and at least
/// once a second, and by every read of the log for auditors.)
pub async fn run(app: AppState, mut shutdown: watch::Receiver<bool>) {
    let mut interval =
        tokio::time::interval(Duration::from_millis(app.config.scheduler_interval_ms));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Beside the ticks, so that a long look does not hold expiries back.
    let numbers = tokio::spawn(release_abandoned_numbers(app.clone(), shutdown.clone()));
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        // A tick in progress does not hold shutdown up: its commands are
        // the pipelines' own, and what it left undone is due again.
        let ticked = tokio::select! {
            ticked = tokio::time::timeout(TICK_DEADLINE, tick(&app)) => ticked,
            _ = shutdown.wait_for(|stopped| *stopped) => break,
        };
        match ticked {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "scheduler tick failed"),
            Err(_) => tracing::error!(
                deadline_secs = TICK_DEADLINE.as_secs(),
                "scheduler tick given up at its deadline (the database stopped answering on one of its connections)"
            ),
        }
    }
    let _ = numbers.await;
    tracing::info!("scheduler stopped");
}

/// How often an instance looks for entry numbers taken by entries that
/// never committed.
const RELEASE_NUMBERS_EVERY: Duration = Duration::from_secs(60);
/// How long after a later ticket entered a number without its ticket is
/// taken for abandoned: far longer than an entry can take to commit (its
/// request's time limit, a statement's, a batch's wait).
const NUMBER_ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(10);
/// Advisory lock key of that look, so one instance looks at a time.
const NUMBERS_LOCK: i64 = 0x0071_6e75_6d62_6572;

/// Once a minute, records as unused the entry numbers of entries that never
/// committed (an instance killed between taking the number and committing
/// the ticket), so the tickets behind them move up. Each number is looked at
/// once by this instance (`settled`).
async fn release_abandoned_numbers(app: AppState, mut shutdown: watch::Receiver<bool>) {
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
    let mut lock = app.pool.begin().await?;
    let taken: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
        .bind(NUMBERS_LOCK)
        .fetch_one(&mut *lock)
        .await?;
    if !taken {
        return Ok(0);
    }
    let entered_before = crate::clock::now() - NUMBER_ABANDONED_AFTER;
    let released =
        queue_entries::release_abandoned_numbers(&app.pool, entered_before, settled).await;
    lock.commit().await?;
    released
}

/// One round of due work, if this instance wins leadership for it.
pub async fn tick(app: &AppState) -> Result<TickReport, BookingError> {
    let mut leadership = app.pool.begin().await?;
    if !take_leadership(&mut leadership).await? {
        return Ok(TickReport::default());
    }
    let context = CommandContext::scheduler();
    let report = TickReport {
        leader: true,
        holds_expired: expire_holds(app, &context).await?,
        tickets_expired: expire_tickets(app, &context).await?,
        tickets_admitted: admit_tickets(app, &mut leadership, &context).await?,
        payments_finished: finish_payments(app, &context).await?,
    };
    leadership.commit().await?;
    metrics::counter!("concert_holds_expired_total").increment(report.holds_expired as u64);
    Ok(report)
}

async fn expire_holds(app: &AppState, context: &CommandContext) -> Result<usize, BookingError> {
    let now = crate::clock::now();
    let lapsed = reservations::lapsed_holds(&app.pool, now, BATCH).await?;
    let commands = lapsed.into_iter().map(|(seat_id, reservation_id)| {
        (
            seat_id,
            SeatCommand::ExpireHold {
                reservation_id: ReservationId(reservation_id),
                now,
            },
        )
    });
    run_all(commands, |(seat_id, command)| async move {
        execute(&app.seats, &seat_id.to_string(), command, context)
            .await
            .map_err(BookingError::from)
    })
    .await
}

async fn expire_tickets(app: &AppState, context: &CommandContext) -> Result<usize, BookingError> {
    let now = crate::clock::now();
    let overdue = queue_tickets::overdue_active(&app.pool, now, BATCH).await?;
    run_all(overdue, |ticket_id| async move {
        let command = QueueTicketCommand::Expire {
            reason: ExpiryReason::Timeout,
            now,
        };
        execute(&app.tickets, &ticket_id.to_string(), command, context)
            .await
            .map_err(BookingError::from)
    })
    .await
}

/// Admits the oldest waiting tokens of each concert into its free active
/// places, while `leadership` still leads.
pub async fn admit_tickets(
    app: &AppState,
    leadership: &mut PgConnection,
    context: &CommandContext,
) -> Result<usize, BookingError> {
    let limit = i64::from(app.config.queue_active_max);
    let mut admitted = 0;
    for (concert_id, active) in queue_tickets::concerts_waiting(&app.pool).await? {
        let free_slots = (limit - active).min(BATCH);
        if free_slots <= 0 {
            continue;
        }
        // Two leaders at once would each fill the free slots.
        if !still_leading(leadership).await {
            return Err(BookingError::Unavailable(
                "the scheduler's leadership was lost during its tick".into(),
            ));
        }
        let candidates = admissions::candidates(&app.pool, concert_id, free_slots).await?;
        let now = crate::clock::now();
        let next = admissions::admissible(&candidates, now);
        if next.is_empty() {
            continue;
        }
        let until = now + app.config.queue_active_ttl();
        // One commit for the round: were some admissions stored and an
        // earlier one not, a ticket would be let in ahead of an older one.
        let round = next
            .into_iter()
            .map(|ticket_id| {
                (
                    ticket_id.to_string(),
                    QueueTicketCommand::Admit { now, until },
                )
            })
            .collect();
        let outcomes = execute_together(&app.tickets, round, context).await;
        admitted += tally(
            outcomes
                .into_iter()
                .map(|outcome| outcome.map_err(BookingError::from)),
        )?;
    }
    Ok(admitted)
}

/// Leads this tick if no other instance does: the lock lasts as long as
/// `leadership`'s transaction.
pub async fn take_leadership(leadership: &mut PgConnection) -> Result<bool, BookingError> {
    Ok(sqlx::query_scalar("select pg_try_advisory_xact_lock($1)")
        .bind(LEADER_LOCK)
        .fetch_one(leadership)
        .await?)
}

/// Whether this instance still holds the leadership it took for the tick.
/// Its session may have been cut meanwhile (a severed connection, a
/// terminated backend), and the lock with it, which another instance may
/// hold by now. The lock is taken again on the same session: granted if it
/// is still held there, refused or failed otherwise.
async fn still_leading(leadership: &mut PgConnection) -> bool {
    take_leadership(leadership).await.unwrap_or(false)
}

async fn finish_payments(app: &AppState, context: &CommandContext) -> Result<usize, BookingError> {
    let before = crate::clock::now() - Duration::from_secs(app.config.payment_recovery_secs);
    let unfinished = payments::unfinished_payments(&app.pool, before, BATCH).await?;
    run_all(unfinished, |payment| async move {
        payment::finish(app, &payment, context).await.map(|_| ())
    })
    .await
}

/// Runs `step` over `items`, a few at a time; counts the successes and logs failures.
async fn run_all<T, F, Fut>(
    items: impl IntoIterator<Item = T>,
    step: F,
) -> Result<usize, BookingError>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = Result<(), BookingError>>,
{
    let outcomes: Vec<Result<(), BookingError>> = stream::iter(items)
        .map(step)
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    tally(outcomes)
}

/// Counts the successes of `outcomes` and logs the refusals; the first
/// failure of the store ends the tick.
fn tally(
    outcomes: impl IntoIterator<Item = Result<(), BookingError>>,
) -> Result<usize, BookingError> {
    let mut done = 0;
    for outcome in outcomes {
        match outcome {
            Ok(()) => done += 1,
            // The store is down: the rest of this tick would fail the same way.
            Err(error) if error.is_transient() => return Err(error),
            Err(error) => tracing::warn!(%error, "scheduled command refused"),
        }
    }
    Ok(done)
}
