//! Seats: every seat event follows a hold, a seat has one holder at a time
//! (a hold starts after the one before it ended, by their times as well as
//! their order), a hold lasts at most a day and expires at or after its deadline, a seat is
//! sold to its holder at the hold's price and stays sold, and a reservation
//! holds one seat once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::aggregates::SeatEvent;
use crate::event_log::RawEvent;
use crate::ids::{DateId, ReservationId, UserId};
use crate::money::Won;

use super::Violation;

/// How far an instance's present may be from the database's: each keeps
/// time by the database's clock (`crate::clock`), to a few milliseconds.
pub(super) const CLOCKS_AGREE_WITHIN: chrono::TimeDelta = chrono::TimeDelta::seconds(1);
/// The longest hold any setting allows (`CONCERT_HOLD_TTL_SECS` is at most a day).
const LONGEST_HOLD: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// Each seat's state as the log tells it, by seat id.
#[derive(Debug, Default)]
pub(super) struct SeatCheck {
    seats: HashMap<String, SeatState>,
    /// The position of each reservation's hold. A second hold under one id
    /// is one the reservations' read model never shows, nor the scheduler
    /// expires.
    holds: HashMap<ReservationId, i64>,
}

/// One seat, with the event that put it in this state.
#[derive(Debug, Clone)]
enum SeatState {
    /// Never held, or since its last hold ended: when, and by which event.
    Free {
        since: Option<(DateTime<Utc>, String)>,
    },
    Held {
        reservation: ReservationId,
        user: UserId,
        date: DateId,
        price: Won,
        until: DateTime<Utc>,
        at: String,
    },
    Sold {
        at: String,
    },
}

impl SeatCheck {
    /// Moves the seat of `row` on by `event`, naming a move the rules forbid.
    pub(super) fn apply(&mut self, row: &RawEvent, event: SeatEvent, found: &mut Vec<Violation>) {
        if let SeatEvent::SeatHeld {
            reservation_id,
            held_at,
            until,
            ..
        } = &event
        {
            if let Some(first) = self.holds.insert(*reservation_id, row.position) {
                found.push(Violation::new(
                    "a reservation holds once",
                    format!("reservation {reservation_id} held a seat before, at position {first}"),
                    vec![format!("#{first}"), row.label()],
                ));
            }
            if until <= held_at || *until - *held_at > LONGEST_HOLD {
                found.push(Violation::new(
                    "a hold ends after it starts, within a day",
                    format!("held at {held_at} until {until}"),
                    vec![row.label()],
                ));
            }
        }
        let state = self
            .seats
            .get(&row.aggregate_id)
            .cloned()
            .unwrap_or(SeatState::Free { since: None });
        let next = match (&state, event) {
            (
                SeatState::Free { since },
                SeatEvent::SeatHeld {
                    reservation_id,
                    user_id,
                    date_id,
                    price,
                    held_at,
                    until,
                    ..
                },
            ) => {
                // In the stream's order a hold followed the last one's end;
                // dated before it, the two held the seat at once (a hold
                // appended with a time of its choosing passed before).
                if let Some((ended, at)) = since
                    .as_ref()
                    .filter(|(ended, _)| held_at + CLOCKS_AGREE_WITHIN < *ended)
                {
                    found.push(Violation::new(
                        "one holder at a time",
                        format!("held at {held_at}, before the seat's last hold ended at {ended}"),
                        vec![at.clone(), row.label()],
                    ));
                }
                SeatState::Held {
                    reservation: reservation_id,
                    user: user_id,
                    date: date_id,
                    price,
                    until,
                    at: row.label(),
                }
            }
            (
                SeatState::Held {
                    reservation,
                    until,
                    at,
                    ..
                },
                SeatEvent::HoldExpired {
                    reservation_id,
                    expired_at,
                },
            ) if *reservation == reservation_id => {
                // The database stamps each event as it writes it: an expiry
                // it wrote well before the deadline was decided on a clock
                // running ahead, whatever time the payload names.
                let recorded_early = row
                    .recorded_at
                    .filter(|recorded| *until - *recorded > CLOCKS_AGREE_WITHIN);
                let detail = if expired_at < *until {
                    Some(format!(
                        "hold expired at {expired_at}, before its deadline {until}"
                    ))
                } else {
                    recorded_early.map(|recorded| {
                            format!("hold expired when the database recorded {recorded}, before its deadline {until}")
                        })
                };
                if let Some(detail) = detail {
                    found.push(Violation::new(
                        "holds expire at or after their deadline",
                        detail,
                        vec![at.clone(), row.label()],
                    ));
                }
                SeatState::Free {
                    since: Some((expired_at, row.label())),
                }
            }
            (SeatState::Held { reservation, .. }, SeatEvent::HoldReleased { reservation_id })
                if *reservation == reservation_id =>
            {
                SeatState::Free {
                    since: row.recorded_at.map(|recorded| (recorded, row.label())),
                }
            }
            (
                SeatState::Held {
                    reservation,
                    user,
                    price,
                    at,
                    ..
                },
                SeatEvent::SeatSold {
                    reservation_id,
                    user_id,
                    price: sold_at,
                    ..
                },
            ) if *reservation == reservation_id => {
                if user_id != *user || sold_at != *price {
                    found.push(Violation::new(
                        "a seat is sold to its holder at the hold's price",
                        format!("held by {user} at {price}, sold to {user_id} at {sold_at}"),
                        vec![at.clone(), row.label()],
                    ));
                }
                SeatState::Sold { at: row.label() }
            }
            (SeatState::Sold { at }, _) => {
                found.push(Violation::new(
                    "a sold seat stays sold",
                    "event after the sale",
                    vec![at.clone(), row.label()],
                ));
                state.clone()
            }
            (SeatState::Held { at, .. }, _) => {
                found.push(Violation::new(
                    "one holder at a time",
                    "event does not fit the live hold",
                    vec![at.clone(), row.label()],
                ));
                state.clone()
            }
            (SeatState::Free { .. }, _) => {
                found.push(Violation::new(
                    "seat events follow a hold",
                    "event on a free seat",
                    vec![row.label()],
                ));
                state.clone()
            }
        };
        self.seats.insert(row.aggregate_id.clone(), next);
    }

    /// The deadline of the seat's live hold, if it is held.
    pub(super) fn held_until(&self, seat_id: &str) -> Option<DateTime<Utc>> {
        match self.seats.get(seat_id) {
            Some(SeatState::Held { until, .. }) => Some(*until),
            _ => None,
        }
    }

    /// The date of the seat's live hold, if it is held.
    pub(super) fn held_date(&self, seat_id: &str) -> Option<DateId> {
        match self.seats.get(seat_id) {
            Some(SeatState::Held { date, .. }) => Some(*date),
            _ => None,
        }
    }

    /// `free`, `held` or `sold`: the seat's status as the read model spells it.
    pub(super) fn status(&self, seat_id: &str) -> &'static str {
        match self.seats.get(seat_id) {
            Some(SeatState::Held { .. }) => "held",
            Some(SeatState::Sold { .. }) => "sold",
            Some(SeatState::Free { .. }) | None => "free",
        }
    }

    /// The seats the log leaves held or sold.
    pub(super) fn taken(&self) -> impl Iterator<Item = &str> {
        self.seats
            .iter()
            .filter(|(_, state)| !matches!(state, SeatState::Free { .. }))
            .map(|(seat, _)| seat.as_str())
    }
}

#[cfg(test)]
mod tests;
