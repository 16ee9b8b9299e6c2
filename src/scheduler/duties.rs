//! What the scheduler's duties do in one round: each reads its due work
//! from the read models and sends the commands.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{stream, StreamExt};
use sqlx::PgConnection;

use super::{own_statement, still_leading};
use crate::aggregates::{ExpiryReason, QueueTicketCommand, SeatCommand};
use crate::booking::payment;
use crate::booking::BookingError;
use crate::commands::{execute, execute_together, CommandContext};
use crate::ids::ReservationId;
use crate::projections::{admissions, payments, queue_tickets, reservations};
use crate::state::AppState;

/// Most items of one kind handled per round.
const BATCH: i64 = 1000;
/// Commands sent at once (expiries, payments to finish). Each aggregate
/// type's pipeline decides the commands waiting for it together, so this
/// many share one batch; with 8, admissions (then sent this way too)
/// trailed a flash sale's entries by up to a minute (≈ 300 a second).
const PARALLEL: usize = 64;

/// Expires the lapsed holds; gives how many, and the next deadline ahead.
pub(super) async fn expire_holds(
    app: &AppState,
    round: &mut PgConnection,
    context: &CommandContext,
) -> Result<(usize, Option<DateTime<Utc>>), BookingError> {
    let now = crate::clock::now();
    let lapsed = own_statement(reservations::lapsed_holds(round, now, BATCH)).await?;
    let commands = lapsed.holds.into_iter().map(|(seat_id, reservation_id)| {
        (
            seat_id,
            SeatCommand::ExpireHold {
                reservation_id: ReservationId(reservation_id),
                now,
            },
        )
    });
    let expired = run_all(commands, |(seat_id, command)| async move {
        execute(&app.seats, &seat_id.to_string(), command, context)
            .await
            .map_err(BookingError::from)
    })
    .await?;
    Ok((expired, lapsed.next_deadline))
}

pub(super) async fn expire_tickets(
    app: &AppState,
    round: &mut PgConnection,
    context: &CommandContext,
) -> Result<usize, BookingError> {
    let now = crate::clock::now();
    let overdue = own_statement(queue_tickets::overdue_active(round, now, BATCH)).await?;
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
    let waiting = own_statement(queue_tickets::concerts_waiting(&mut *leadership)).await?;
    for (concert_id, active) in waiting {
        let free_slots = (limit - active).min(BATCH);
        if free_slots <= 0 {
            continue;
        }
        // Two leaders at once would each fill the free slots.
        if !still_leading(leadership).await {
            return Err(BookingError::Unavailable(
                "the scheduler's leadership of admissions was lost during its round".into(),
            ));
        }
        let candidates = own_statement(admissions::candidates(
            &mut *leadership,
            concert_id,
            free_slots,
        ))
        .await?;
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

pub(super) async fn finish_payments(
    app: &AppState,
    round: &mut PgConnection,
    context: &CommandContext,
) -> Result<usize, BookingError> {
    let before = crate::clock::now() - Duration::from_secs(app.config.payment_recovery_secs);
    let unfinished = own_statement(payments::unfinished_payments(round, before, BATCH)).await?;
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
/// failure of the store ends the round.
fn tally(
    outcomes: impl IntoIterator<Item = Result<(), BookingError>>,
) -> Result<usize, BookingError> {
    let mut done = 0;
    for outcome in outcomes {
        match outcome {
            Ok(()) => done += 1,
            // The store is down: the rest of this round would fail the same way.
            Err(error) if error.is_transient() => return Err(error),
            Err(error) => tracing::warn!(%error, "scheduled command refused"),
        }
    }
    Ok(done)
}
