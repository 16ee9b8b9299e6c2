//! The catalogue: a concert is scheduled once, and a seat held is one of its
//! date's seats (its id derived from the date and its number), held at its
//! date's price. A seat stream the log never scheduled, or a price the log
//! never set, is what an edit of the `seats` read model would leave behind
//! once the service acted on it.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::aggregates::ConcertEvent;
use crate::event_log::RawEvent;
use crate::ids::{ConcertId, DateId, SeatId};
use crate::money::Won;

use super::Violation;

const SCHEDULED_ONCE: &str = "a concert and its dates are scheduled once";
const SEAT_OF_ITS_DATE: &str = "a seat held is one of its date's seats";
const HELD_AT_ITS_PRICE: &str = "a seat is held at its date's price";

/// The concerts and dates the log scheduled.
#[derive(Debug, Default)]
pub(super) struct CatalogueCheck {
    concerts: HashSet<String>,
    dates: HashMap<DateId, ScheduledDate>,
}

/// A date as its concert's scheduling set it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct ScheduledDate {
    pub concert: ConcertId,
    pub seats: u32,
    pub price: Won,
    /// A hold of its seats ends when it begins at the latest.
    pub starts_at: DateTime<Utc>,
}

impl CatalogueCheck {
    /// Records a concert's dates.
    pub(super) fn apply(
        &mut self,
        row: &RawEvent,
        event: ConcertEvent,
        found: &mut Vec<Violation>,
    ) {
        let ConcertEvent::ConcertScheduled { dates, .. } = event;
        if !self.concerts.insert(row.aggregate_id.clone()) {
            return found.push(Violation::new(
                SCHEDULED_ONCE,
                "the concert was scheduled before",
                vec![row.label()],
            ));
        }
        let Ok(concert) = row.aggregate_id.parse().map(ConcertId) else {
            return found.push(Violation::new(
                SCHEDULED_ONCE,
                "a concert's id is a UUID",
                vec![row.label()],
            ));
        };
        for date in dates {
            let scheduled = ScheduledDate {
                concert,
                seats: date.seats,
                price: date.price,
                starts_at: date.starts_at,
            };
            if self.dates.insert(date.date_id, scheduled).is_some() {
                found.push(Violation::new(
                    SCHEDULED_ONCE,
                    format!("date {} was scheduled before", date.date_id),
                    vec![row.label()],
                ));
            }
        }
    }

    /// The date of a hold of seat `seat_no` of `date_id` at `price`, naming
    /// each rule of the catalogue the hold breaks; `None` for a date never
    /// scheduled.
    pub(super) fn check_hold(
        &self,
        row: &RawEvent,
        date_id: DateId,
        seat_no: u32,
        price: Won,
        found: &mut Vec<Violation>,
    ) -> Option<ScheduledDate> {
        let Some(date) = self.dates.get(&date_id).copied() else {
            found.push(Violation::new(
                SEAT_OF_ITS_DATE,
                format!("date {date_id} was never scheduled"),
                vec![row.label()],
            ));
            return None;
        };
        let expected_id = SeatId::of(date_id, seat_no).to_string();
        if seat_no == 0 || seat_no > date.seats || expected_id != row.aggregate_id {
            let detail = format!(
                "seat {seat_no} of date {date_id} ({} seats) is the stream Seat/{expected_id}",
                date.seats
            );
            found.push(Violation::new(SEAT_OF_ITS_DATE, detail, vec![row.label()]));
        }
        if price != date.price {
            let detail = format!("held at {price}, the date's price is {}", date.price);
            found.push(Violation::new(HELD_AT_ITS_PRICE, detail, vec![row.label()]));
        }
        Some(date)
    }

    /// Every date the log scheduled.
    pub(super) fn dates(&self) -> &HashMap<DateId, ScheduledDate> {
        &self.dates
    }
}

#[cfg(test)]
mod tests;
