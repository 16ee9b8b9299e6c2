//! Holding a seat for the user of an active queue token.

use uuid::Uuid;

use super::idempotency::{self, Operation};
use super::BookingError;
use crate::aggregates::SeatCommand;
use crate::commands::{execute, CommandContext};
use crate::ids::{DateId, ReservationId, UserId};
use crate::projections::available_seats::SeatRow;
use crate::projections::queue_tickets::TicketRow;
use crate::projections::reservations::{self, ReservationRow, ReservationStatus};
use crate::state::AppState;

/// The reservation a hold sent with `key` is made as: the same for every
/// retry of it, and never the same for two seats, so one id holds one seat.
pub fn keyed_reservation_id(user_id: UserId, key: &str, seat_id: Uuid) -> ReservationId {
    ReservationId(idempotency::command_id(
        user_id,
        Operation::Hold,
        &format!("{key}/{seat_id}"),
    ))
}

/// Whether `user_id`'s hold sent with `key` took `seat_id` (its retry is
/// then answered with it, though the seat shows as taken).
pub async fn holds_by_key(
    app: &AppState,
    user_id: UserId,
    key: &str,
    seat_id: Uuid,
) -> Result<bool, BookingError> {
    let reservation_id = keyed_reservation_id(user_id, key, seat_id);
    Ok(own_hold(app, reservation_id, user_id.0, seat_id)
        .await?
        .is_some())
}

/// The hold `reservation_id` of `user_id` on `seat_id`, if it was made.
async fn own_hold(
    app: &AppState,
    reservation_id: ReservationId,
    user_id: Uuid,
    seat_id: Uuid,
) -> Result<Option<ReservationRow>, BookingError> {
    let found = reservations::find_reservation(&app.pool, reservation_id.0).await?;
    Ok(found.filter(|held| held.user_id == user_id && held.seat_id == seat_id))
}

/// A keyed hold: a retry finds the hold it repeats (answered before, or
/// committed after its request gave up) and answers it, held or sold to the
/// user, rather than being refused by its own hold; lapsed, it is
/// `hold_expired`. The seat refuses a reservation that held it before, so a
/// retry never holds again, and only a refused hold costs the look-up.
pub async fn hold_seat_once(
    app: &AppState,
    ticket: &TicketRow,
    seat: SeatRow,
    reservation_id: ReservationId,
    context: &CommandContext,
) -> Result<ReservationRow, BookingError> {
    let seat_id = seat.seat_id;
    match hold_seat(app, ticket, seat, reservation_id, context).await {
        Err(refused @ (BookingError::SeatUnavailable | BookingError::DateBegun)) => {
            let Some(own) = own_hold(app, reservation_id, ticket.user_id, seat_id).await? else {
                return Err(refused);
            };
            match own.status_at(crate::clock::now()) {
                ReservationStatus::Expired => Err(BookingError::HoldExpired),
                ReservationStatus::Held | ReservationStatus::Confirmed => Ok(own),
            }
        }
        outcome => outcome,
    }
}

/// Holds the seat (as read with the ticket) for the ticket's user until the
/// hold TTL runs out or its date begins, whichever comes first, as
/// reservation `reservation_id`. A seat of a date that has begun is not
/// held: it could never be paid for in time.
pub async fn hold_seat(
    app: &AppState,
    ticket: &TicketRow,
    seat: SeatRow,
    reservation_id: ReservationId,
    context: &CommandContext,
) -> Result<ReservationRow, BookingError> {
    let seat_id = seat.seat_id;
    if seat.concert_id != ticket.concert_id {
        return Err(BookingError::TicketNotActive(
            "the token is for another concert",
        ));
    }
    // Most of a crowd pressing "hold" on one seat is turned away here, without
    // loading the seat's stream. A stale "free" still goes to the aggregate,
    // which has the last word.
    if !seat.is_free() {
        return Err(BookingError::SeatUnavailable);
    }
    let now = crate::clock::now();
    if seat.starts_at <= now {
        return Err(BookingError::DateBegun);
    }
    let until = (now + app.config.hold_ttl()).min(seat.starts_at);
    let command = SeatCommand::HoldSeat {
        reservation_id,
        user_id: UserId(ticket.user_id),
        date_id: DateId(seat.date_id),
        seat_no: seat.seat_no as u32,
        price: seat.price,
        now,
        until,
    };
    execute(&app.seats, &seat_id.to_string(), command, context).await?;
    if until < now + app.config.hold_ttl() {
        app.early_hold_deadlines.hold_ends(until);
    }
    // The answer is what was committed; it does not depend on the projection,
    // which may have failed after the commit (catch-up applies it later).
    Ok(ReservationRow {
        reservation_id: reservation_id.0,
        seat_id,
        date_id: seat.date_id,
        concert_id: Some(seat.concert_id),
        user_id: ticket.user_id,
        seat_no: seat.seat_no,
        price: seat.price,
        status: "held".to_string(),
        expires_at: until,
        payment_id: None,
    })
}
