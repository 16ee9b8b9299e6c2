//! Seats: every seat event follows a hold, a seat has one holder at a time, a
//! hold lasts at most a day and expires at or after its deadline, a seat is
//! sold to its holder at the hold's price and stays sold, and a reservation
//! holds one seat once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::aggregates::SeatEvent;
use crate::event_log::RawEvent;
use crate::ids::{ReservationId, UserId};
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
    Free,
    Held {
        reservation: ReservationId,
        user: UserId,
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
            .unwrap_or(SeatState::Free);
        let next = match (&state, event) {
            (
                SeatState::Free,
                SeatEvent::SeatHeld {
                    reservation_id,
                    user_id,
                    price,
                    until,
                    ..
                },
            ) => SeatState::Held {
                reservation: reservation_id,
                user: user_id,
                price,
                until,
                at: row.label(),
            },
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
                SeatState::Free
            }
            (SeatState::Held { reservation, .. }, SeatEvent::HoldReleased { reservation_id })
                if *reservation == reservation_id =>
            {
                SeatState::Free
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

    /// The deadline of the seat's live hold, if it is held.
    pub(super) fn held_until(&self, seat_id: &str) -> Option<DateTime<Utc>> {
        match self.seats.get(seat_id) {
            Some(SeatState::Held { until, .. }) => Some(*until),
            _ => None,
        }
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
    fn an_expiry_the_database_recorded_before_the_deadline_is_named() {
        let r = reservation(1);
        // The payload says 300 s (a clock 3 s ahead); the database wrote it at 297 s.
        let expiry = |recorded: i64| {
            let mut check = SeatCheck::default();
            let mut found = Vec::new();
            check.apply(&logged(1, "Seat/s", "SeatHeld"), held(r, 0), &mut found);
            let mut row = logged(2, "Seat/s", "HoldExpired");
            row.recorded_at = Some(at(recorded));
            check.apply(&row, expired(r, 300), &mut found);
            found
        };

        let found = expiry(297);
        assert_eq!(rules(&found), ["holds expire at or after their deadline"]);
        assert!(
            found[0].detail.contains("when the database recorded"),
            "{}",
            found[0].detail
        );
        // Within the clocks' agreement, or after the deadline: fine.
        assert!(expiry(300).is_empty());
        assert!(expiry(299).is_empty());
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
    fn a_reservation_holding_again_is_named() {
        let first = reservation(1);
        let (_, found) = run(vec![held(first, 0), expired(first, 300), held(first, 400)]);

        assert_eq!(rules(&found), ["a reservation holds once"]);
        assert_eq!(found[0].events, ["#1", "#3 Seat/s seq 3 SeatHeld"]);
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

    #[test]
    fn a_sale_to_another_than_the_holder_or_at_another_price_is_named() {
        let (first, second) = (reservation(1), reservation(2));
        let mut to_another = sold(first);
        if let SeatEvent::SeatSold { user_id, .. } = &mut to_another {
            *user_id = UserId(uuid::Uuid::from_u128(70));
        }
        let mut cheaper = sold(second);
        if let SeatEvent::SeatSold { price, .. } = &mut cheaper {
            *price = Won(1);
        }

        let (_, found) = run(vec![held(first, 0), to_another]);
        let (_, found_cheaper) = run(vec![held(second, 0), cheaper]);

        let rule = "a seat is sold to its holder at the hold's price";
        assert_eq!(rules(&found), [rule]);
        assert_eq!(rules(&found_cheaper), [rule]);
    }

    #[test]
    fn a_hold_longer_than_a_day_or_ending_before_it_starts_is_named() {
        let mut long = held(reservation(1), 0);
        if let SeatEvent::SeatHeld { until, .. } = &mut long {
            *until = at(86_401);
        }
        let mut backwards = held(reservation(2), 0);
        if let SeatEvent::SeatHeld { until, .. } = &mut backwards {
            *until = at(0);
        }

        let (_, found) = run(vec![long]);
        let (_, found_backwards) = run(vec![backwards]);

        let rule = "a hold ends after it starts, within a day";
        assert_eq!(rules(&found), [rule]);
        assert_eq!(rules(&found_backwards), [rule]);
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
