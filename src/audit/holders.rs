//! Who may hold a seat: a seat of its date's scheduling, held by a user the
//! log admitted to the date's concert, while one of that user's tickets for
//! it was active.

use crate::aggregates::SeatEvent;
use crate::event_log::RawEvent;

use super::catalogue::{CatalogueCheck, ScheduledDate};
use super::queue::QueueCheck;
use super::Violation;

/// A hold's seat is one its date's scheduling made, and its holder was
/// admitted to the date's concert; the hold's date, when it was scheduled.
pub(super) fn check_hold(
    catalogue: &CatalogueCheck,
    queue: &QueueCheck,
    row: &RawEvent,
    event: &SeatEvent,
    found: &mut Vec<Violation>,
) -> Option<ScheduledDate> {
    let SeatEvent::SeatHeld {
        user_id,
        date_id,
        seat_no,
        price,
        held_at,
        ..
    } = *event
    else {
        return None;
    };
    let date = catalogue.check_hold(row, date_id, seat_no, price, found)?;
    if !queue.was_admitted(user_id, date.concert) {
        found.push(Violation::new(
            "a seat is held by a user admitted to its concert",
            format!(
                "user {user_id} has no admitted ticket of concert {}",
                date.concert
            ),
            vec![row.label()],
        ));
    } else if !queue.was_active_at(user_id, date.concert, held_at) {
        // Admitted once is not enough: a hold needs an active token (a hold
        // appended after the user's ticket timed out, or was spent, passed).
        found.push(Violation::new(
            "a seat is held while its holder's ticket is active",
            format!(
                "user {user_id} had no ticket of concert {} active at {held_at}",
                date.concert
            ),
            vec![row.label()],
        ));
    }
    Some(date)
}
