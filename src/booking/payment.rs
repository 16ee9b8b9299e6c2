//! Paying for a held seat, across three aggregates: the wallet is debited, the
//! seat is sold, the queue ticket expires, all three in one commit of the
//! payment pipeline (or none, when a rule refuses one). Payments that an
//! older release or a crash left debited but unsold (the `payments` read
//! model records how far each got) are finished or refunded by the
//! scheduler, one step at a time.

use cqrs_es::AggregateError;
use uuid::Uuid;

use super::BookingError;
use crate::aggregates::{ExpiryReason, QueueTicketCommand, SeatCommand, SeatError, WalletCommand};
use crate::commands::{execute, execute_payment, CommandContext};
use crate::event_store::PaymentRefused;
use crate::ids::{PaymentId, ReservationId, SeatId, TicketId, UserId};
use crate::money::Won;
use crate::projections::balances::{self, WalletEntry};
use crate::projections::payments::{self, PaymentRow};
use crate::projections::queue_tickets::{self, TicketStatus};
use crate::projections::reservations::{self, ReservationRow, ReservationStatus};
use crate::state::AppState;
use crate::telemetry::PaymentEnd;

/// A finished payment.
pub struct Receipt {
    pub payment: PaymentRow,
    pub balance: Won,
}

/// Pays for the user's reservation (as read with the token's ticket, `None`
/// when there is none) with `payment_id` (derived from an `Idempotency-Key`
/// on retries). `ticket_id` is the token that is spent.
pub async fn pay(
    app: &AppState,
    user_id: UserId,
    ticket_id: TicketId,
    reservation_id: ReservationId,
    reservation: Option<ReservationRow>,
    payment_id: PaymentId,
    context: &CommandContext,
) -> Result<Receipt, BookingError> {
    let reservation = reservation
        .filter(|reservation| reservation.user_id == user_id.0)
        .ok_or(BookingError::NotFound("reservation"))?;
    match reservation.status_at(crate::clock::now()) {
        ReservationStatus::Confirmed if reservation.payment_id == Some(payment_id.0) => {
            return receipt(app, payment_id.0).await
        }
        ReservationStatus::Confirmed => return Err(BookingError::AlreadyPaid),
        ReservationStatus::Expired => return Err(BookingError::HoldExpired),
        ReservationStatus::Held => {}
    }
    let debit = WalletCommand::Pay {
        payment_id,
        reservation_id,
        seat_id: SeatId(reservation.seat_id),
        amount: reservation.price,
        now: crate::clock::now(),
    };
    let mut payment = PaymentRow {
        payment_id: payment_id.0,
        user_id: user_id.0,
        reservation_id: reservation_id.0,
        seat_id: reservation.seat_id,
        amount: reservation.price,
        status: "debited".to_string(),
    };
    if app.config.fault_stop_after_debit {
        execute(&app.wallets, &user_id.to_string(), debit, context).await?;
        return Err(BookingError::Unavailable(
            "stopped after the debit (fault injection)".into(),
        ));
    }
    let sale = SeatCommand::ConfirmSeat {
        reservation_id,
        payment_id,
        ticket_id: Some(ticket_id),
        now: crate::clock::now(),
    };
    let paid = execute_payment(
        &app.payments,
        (user_id.to_string(), debit),
        (reservation.seat_id.to_string(), sale),
        Some((ticket_id.to_string(), spend_ticket())),
        context,
    )
    .await
    .map_err(|error| refusal(error, reservation_id))?;
    PaymentEnd::Completed.count();
    payment.status = "completed".to_string();
    // The balance the debit left, as its event states it: the one stored
    // now, or, for a payment debited already (a retry), the one in the log.
    let balance = match paid.debit.last() {
        Some(debited) => debited.balance(),
        None => {
            let entry = WalletEntry::Payment(payment_id);
            balances::balance_left_by(&app.pool, user_id.0, entry).await?
        }
    };
    Ok(Receipt { payment, balance })
}

/// What a payment of `reservation_id` that the pipeline refused answers.
/// A seat sold for this same reservation was sold by another payment of it
/// (its user's, sent at once and through another instance, whose debit the
/// wallet as loaded did not show yet): already paid, not lapsed.
fn refusal(error: AggregateError<PaymentRefused>, reservation_id: ReservationId) -> BookingError {
    match error {
        AggregateError::UserError(PaymentRefused::Seat(SeatError::AlreadySold {
            reservation_id: sold,
        })) if sold == reservation_id => BookingError::AlreadyPaid,
        AggregateError::UserError(PaymentRefused::Seat(lapsed)) if hold_lapsed(&lapsed) => {
            BookingError::HoldExpired
        }
        other => other.into(),
    }
}

/// A hold whose deadline has passed while the log still shows it held is
/// closed here as the scheduler would close it, and read again. A keyed
/// payment does this before paying: if it is a retry, its first try,
/// decided as it arrived before the deadline, may still be committing the
/// sale, and refusing the retry at once told its sender that a payment
/// failed which then went through. The seat's stream takes the sale or the
/// expiry, whichever comes first; the retry answers what it took.
pub async fn close_lapsed_hold(
    app: &AppState,
    reservation: ReservationRow,
    context: &CommandContext,
) -> Result<ReservationRow, BookingError> {
    let now = crate::clock::now();
    if reservation.status_at(now) != ReservationStatus::Expired || reservation.status != "held" {
        return Ok(reservation);
    }
    let expire = SeatCommand::ExpireHold {
        reservation_id: ReservationId(reservation.reservation_id),
        now,
    };
    match execute(
        &app.seats,
        &reservation.seat_id.to_string(),
        expire,
        context,
    )
    .await
    {
        // A refusal means the seat's stream already moved on: it is read below.
        Ok(()) | Err(AggregateError::UserError(_)) => {}
        Err(error) => return Err(error.into()),
    }
    reservations::find_reservation(&app.pool, reservation.reservation_id)
        .await?
        .ok_or(BookingError::NotFound("reservation"))
}

/// The seat's refusals that mean the hold is over: lapsed, sold, or due to lapse.
fn hold_lapsed(error: &SeatError) -> bool {
    matches!(
        error,
        SeatError::HoldLapsed { .. } | SeatError::AlreadySold { .. } | SeatError::HoldNotDue { .. }
    )
}

/// Takes a debited payment to its end: sells the seat and spends the user's
/// active ticket for the seat's concert (the sale names it; with none left,
/// the sale names none), or, when the hold lapsed in between, refunds the
/// wallet. Returns whether the seat was sold.
pub async fn finish(
    app: &AppState,
    payment: &PaymentRow,
    context: &CommandContext,
) -> Result<bool, BookingError> {
    let ticket_id = paying_ticket(app, payment).await?;
    let confirm = SeatCommand::ConfirmSeat {
        reservation_id: ReservationId(payment.reservation_id),
        payment_id: PaymentId(payment.payment_id),
        ticket_id,
        now: crate::clock::now(),
    };
    match execute(&app.seats, &payment.seat_id.to_string(), confirm, context).await {
        Ok(()) => {
            PaymentEnd::Completed.count();
            if let Some(ticket_id) = ticket_id {
                execute(
                    &app.tickets,
                    &ticket_id.to_string(),
                    spend_ticket(),
                    context,
                )
                .await?;
            }
            Ok(true)
        }
        Err(AggregateError::UserError(lapsed)) if hold_lapsed(&lapsed) => {
            let refund = WalletCommand::Refund {
                payment_id: PaymentId(payment.payment_id),
            };
            execute(&app.wallets, &payment.user_id.to_string(), refund, context).await?;
            PaymentEnd::Refunded.count();
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

/// Paying spends the queue ticket that paid.
fn spend_ticket() -> QueueTicketCommand {
    QueueTicketCommand::Expire {
        reason: ExpiryReason::Paid,
        now: crate::clock::now(),
    }
}

/// The queue ticket a recovered payment spends: its user's active ticket
/// for the seat's concert, if there is one.
async fn paying_ticket(
    app: &AppState,
    payment: &PaymentRow,
) -> Result<Option<TicketId>, BookingError> {
    let concert_id = reservations::find_reservation(&app.pool, payment.reservation_id)
        .await?
        .and_then(|reservation| reservation.concert_id);
    let Some(concert_id) = concert_id else {
        return Ok(None);
    };
    let latest = queue_tickets::latest_ticket(&app.pool, concert_id, payment.user_id)
        .await?
        .0;
    Ok(ticket_that_paid(latest))
}

async fn receipt(app: &AppState, payment_id: Uuid) -> Result<Receipt, BookingError> {
    let payment = payments::find_payment(&app.pool, payment_id)
        .await?
        .ok_or(BookingError::NotFound("payment"))?;
    let entry = WalletEntry::Payment(PaymentId(payment_id));
    let balance = balances::balance_left_by(&app.pool, payment.user_id, entry).await?;
    Ok(Receipt { payment, balance })
}

/// Of the user's latest ticket, the one a payment spends: only an active
/// one paid. A waiting ticket is a new place in the line, taken after the
/// one that paid lapsed; spending it would throw that place away.
fn ticket_that_paid(latest: Option<queue_tickets::TicketRow>) -> Option<TicketId> {
    latest
        .filter(|ticket| ticket.recorded_status() == TicketStatus::Active)
        .map(|ticket| TicketId(ticket.ticket_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(status: &str) -> queue_tickets::TicketRow {
        queue_tickets::TicketRow {
            ticket_id: Uuid::new_v4(),
            concert_id: Uuid::new_v4(),
            user_id: Uuid::new_v4(),
            entry_no: 7,
            status: status.to_string(),
            expires_at: None,
        }
    }

    #[test]
    fn a_recovered_payment_spends_an_active_ticket_and_never_a_waiting_one() {
        let active = ticket("active");
        assert_eq!(
            ticket_that_paid(Some(active.clone())),
            Some(TicketId(active.ticket_id))
        );
        assert_eq!(ticket_that_paid(Some(ticket("waiting"))), None);
        assert_eq!(ticket_that_paid(Some(ticket("expired"))), None);
        assert_eq!(ticket_that_paid(None), None);
    }

    fn refused_by_seat(error: SeatError) -> AggregateError<PaymentRefused> {
        AggregateError::UserError(PaymentRefused::Seat(error))
    }

    #[test]
    fn a_seat_sold_for_the_same_reservation_is_already_paid_and_for_another_lapsed() {
        let reservation_id = ReservationId::new();
        let same = refused_by_seat(SeatError::AlreadySold { reservation_id });
        let other = refused_by_seat(SeatError::AlreadySold {
            reservation_id: ReservationId::new(),
        });
        let lapsed = refused_by_seat(SeatError::HoldLapsed { reservation_id });

        assert!(matches!(
            refusal(same, reservation_id),
            BookingError::AlreadyPaid
        ));
        assert!(matches!(
            refusal(other, reservation_id),
            BookingError::HoldExpired
        ));
        assert!(matches!(
            refusal(lapsed, reservation_id),
            BookingError::HoldExpired
        ));
    }
}
