//! Seats: every seat event follows a hold, a seat has one holder at a time, a
//! hold expires at or after its deadline, and a sold seat stays sold.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::aggregates::SeatEvent;
use crate::event_log::RawEvent;
use crate::ids::ReservationId;

use super::Violation;

/// Each seat's state as the log tells it, by seat id.
#[derive(Debug, Default)]
pub(super) struct SeatCheck {
    seats: HashMap<String, SeatState>,
}

/// One seat, with the event that put it in this state.
#[derive(Debug, Clone)]
enum SeatState {
    Free,
    Held {
        reservation: ReservationId,
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
        let state = self
            .seats
            .get(&row.aggregate_id)
            .cloned()
            .unwrap_or(SeatState::Free);
        let next =
            match (&state, event) {
                (
                    SeatState::Free,
                    SeatEvent::SeatHeld {
                        reservation_id,
                        until,
                        ..
                    },
                ) => SeatState::Held {
                    reservation: reservation_id,
                    until,
                    at: row.label(),
                },
                (
                    SeatState::Held {
                        reservation,
                        until,
                        at,
                    },
                    SeatEvent::HoldExpired {
                        reservation_id,
                        expired_at,
                    },
                ) if *reservation == reservation_id => {
                    if expired_at < *until {
                        let detail =
                            format!("hold expired at {expired_at}, before its deadline {until}");
                        found.push(Violation::new(
                            "holds expire at or after their deadline",
                            detail,
                            vec![at.clone(), row.label()],
                        ));
                    }
                    SeatState::Free
                }
                (
                    SeatState::Held { reservation, .. },
                    SeatEvent::HoldReleased { reservation_id },
                ) if *reservation == reservation_id => SeatState::Free,
                (
                    SeatState::Held { reservation, .. },
                    SeatEvent::SeatSold { reservation_id, .. },
                ) if *reservation == reservation_id => SeatState::Sold { at: row.label() },
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
                (SeatState::Free, _) => {
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

    /// `free`, `held` or `sold`: the seat's status as the read model spells it.
    pub(super) fn status(&self, seat_id: &str) -> &'static str {
        match self.seats.get(seat_id) {
            Some(SeatState::Held { .. }) => "held",
            Some(SeatState::Sold { .. }) => "sold",
            Some(SeatState::Free) | None => "free",
        }
    }

    /// The seats the log leaves held or sold.
    pub(super) fn taken(&self) -> impl Iterator<Item = &str> {
        self.seats
            .iter()
            .filter(|(_, state)| !matches!(state, SeatState::Free))
            .map(|(seat, _)| seat.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixtures::{logged, rules};
    use crate::ids::{DateId, PaymentId, UserId};
    use crate::money::Won;
    use chrono::Duration;
    use cqrs_es::DomainEvent;

    #[test]
    fn a_hold_expired_released_and_a_sale_have_no_violation() {
        let (first, second, third) = (reservation(1), reservation(2), reservation(3));

        let (check, found) = run(vec![
            held(first, 0),
            expired(first, 300),
            held(second, 300),
            SeatEvent::HoldReleased {
                reservation_id: second,
            },
            held(third, 400),
            sold(third),
        ]);

        assert!(found.is_empty(), "{found:?}");
        assert_eq!(check.status("s"), "sold");
        assert_eq!(check.taken().collect::<Vec<_>>(), ["s"]);
    }

    #[test]
    fn a_hold_expired_before_its_deadline_is_named() {
        let r = reservation(1);

        let (check, found) = run(vec![held(r, 0), expired(r, 299)]);

        assert_eq!(rules(&found), ["holds expire at or after their deadline"]);
        assert_eq!(
            found[0].events,
            ["#1 Seat/s seq 1 SeatHeld", "#2 Seat/s seq 2 HoldExpired"]
        );
        assert_eq!(check.status("s"), "free");
    }

    #[test]
    fn an_event_after_the_sale_is_named() {
        let r = reservation(1);

        let (check, found) = run(vec![held(r, 0), sold(r), held(reservation(2), 10)]);

        assert_eq!(rules(&found), ["a sold seat stays sold"]);
        assert_eq!(found[0].detail, "event after the sale");
        assert_eq!(check.status("s"), "sold");
    }

    #[test]
    fn a_second_holder_is_named() {
        let (check, found) = run(vec![held(reservation(1), 0), held(reservation(2), 10)]);

        assert_eq!(rules(&found), ["one holder at a time"]);
        assert_eq!(check.status("s"), "held");
    }

    #[test]
    fn selling_another_reservation_is_named() {
        let (_, found) = run(vec![held(reservation(1), 0), sold(reservation(2))]);

        assert_eq!(rules(&found), ["one holder at a time"]);
    }

    #[test]
    fn an_event_on_a_free_seat_is_named() {
        let (check, found) = run(vec![sold(reservation(1))]);

        assert_eq!(rules(&found), ["seat events follow a hold"]);
        assert_eq!(found[0].events, ["#1 Seat/s seq 1 SeatSold"]);
        assert_eq!(check.taken().count(), 0);
    }

    /// Feeds the events to one seat `s`, one position each.
    fn run(events: Vec<SeatEvent>) -> (SeatCheck, Vec<Violation>) {
        let mut check = SeatCheck::default();
        let mut found = Vec::new();
        for (position, event) in (1..).zip(events) {
            let row = logged(position, "Seat/s", &event.event_type());
            check.apply(&row, event, &mut found);
        }
        (check, found)
    }

    fn reservation(n: u128) -> ReservationId {
        ReservationId(uuid::Uuid::from_u128(n))
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(seconds)
    }

    fn held(reservation_id: ReservationId, now: i64) -> SeatEvent {
        SeatEvent::SeatHeld {
            reservation_id,
            user_id: UserId(uuid::Uuid::from_u128(7)),
            date_id: DateId(uuid::Uuid::from_u128(8)),
            seat_no: 1,
            price: Won(100),
            held_at: at(now),
            until: at(now + 300),
        }
    }

    fn expired(reservation_id: ReservationId, now: i64) -> SeatEvent {
        SeatEvent::HoldExpired {
            reservation_id,
            expired_at: at(now),
        }
    }

    fn sold(reservation_id: ReservationId) -> SeatEvent {
        SeatEvent::SeatSold {
            reservation_id,
            payment_id: PaymentId(uuid::Uuid::from_u128(9)),
            user_id: UserId(uuid::Uuid::from_u128(7)),
            price: Won(100),
        }
    }
}
