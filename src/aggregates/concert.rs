//! A concert and its dates: a concert is scheduled once, with every date's
//! start, seat count and price fixed from then on.

use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, Utc};
use cqrs_es::{event_sink::EventSink, Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::DateId;
use crate::money::Won;

mod title;

/// Most dates one concert may have.
pub const MAX_DATES: usize = 100;
/// Most seats one date may have (a stadium).
pub const MAX_SEATS_PER_DATE: u32 = 50_000;
/// Most seats one concert may have across its dates.
pub const MAX_SEATS_PER_CONCERT: u64 = 1_000_000;
/// Highest price of one seat, in won.
pub const MAX_PRICE: Won = Won(1_000_000_000);
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// A date starts in the years 1970 to 9999: every start is then written back
/// as RFC 3339 (four-digit years) and fits PostgreSQL's timestamps, which end
/// at 4713 BC (an earlier one failed its whole batch's commit).
pub const STARTS_AT_YEARS: RangeInclusive<i32> = 1970..=9999;

/// A scheduled concert.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Concert {
    scheduled: bool,
}

/// One date of a concert, as scheduled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConcertDate {
    pub date_id: DateId,
    pub starts_at: DateTime<Utc>,
    pub seats: u32,
    pub price: Won,
}

/// What can be asked of a concert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::AsRefStr)]
pub enum ConcertCommand {
    /// Puts a concert with its dates on sale.
    ScheduleConcert {
        title: String,
        dates: Vec<ConcertDate>,
    },
}

/// What happened to a concert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::AsRefStr)]
pub enum ConcertEvent {
    /// The concert and its dates exist; seats are numbered 1..=seats per date.
    ConcertScheduled {
        title: String,
        dates: Vec<ConcertDate>,
    },
}

impl DomainEvent for ConcertEvent {
    fn event_type(&self) -> String {
        // The variant name, as every stored event has it (pinned by the tests).
        self.as_ref().to_string()
    }

    fn event_version(&self) -> String {
        super::EVENT_VERSION.to_string()
    }
}

/// Why a concert command was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ConcertError {
    #[error("the concert is already scheduled")]
    AlreadyScheduled,
    #[error("the title must have 1 to {max} characters, at least one of them visible, and no control or reordering characters")]
    TitleInvalid { max: usize },
    #[error("a concert has 1 to {max} dates, not {count}")]
    DateCountOutOfRange { count: usize, max: usize },
    #[error("date {date_id} has {seats} seats; a date has 1 to {max}")]
    SeatsOutOfRange {
        date_id: DateId,
        seats: u32,
        max: u32,
    },
    #[error("the concert has {total} seats; at most {max} are allowed")]
    TooManySeats { total: u64, max: u64 },
    #[error("date {date_id} costs {price}; a price is 1 to {max}")]
    PriceOutOfRange {
        date_id: DateId,
        price: Won,
        max: Won,
    },
    #[error("date {date_id} starts at {starts_at}; a date starts in the years 1970 to 9999")]
    StartsAtOutOfRange {
        date_id: DateId,
        starts_at: DateTime<Utc>,
    },
    #[error("date {date_id} appears twice")]
    DuplicateDate { date_id: DateId },
}

impl Aggregate for Concert {
    const TYPE: &'static str = "Concert";
    type Command = ConcertCommand;
    type Event = ConcertEvent;
    type Error = ConcertError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            ConcertCommand::ScheduleConcert { title, dates } => self.schedule(title, dates)?,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ConcertEvent::ConcertScheduled { .. } => self.scheduled = true,
        }
    }
}

impl Concert {
    fn schedule(
        &self,
        title: String,
        dates: Vec<ConcertDate>,
    ) -> Result<ConcertEvent, ConcertError> {
        if self.scheduled {
            return Err(ConcertError::AlreadyScheduled);
        }
        let title = title.trim().to_string();
        if !title::acceptable(&title, MAX_TITLE_CHARS) {
            return Err(ConcertError::TitleInvalid {
                max: MAX_TITLE_CHARS,
            });
        }
        if dates.is_empty() || dates.len() > MAX_DATES {
            return Err(ConcertError::DateCountOutOfRange {
                count: dates.len(),
                max: MAX_DATES,
            });
        }
        let mut total: u64 = 0;
        for (index, date) in dates.iter().enumerate() {
            if date.seats == 0 || date.seats > MAX_SEATS_PER_DATE {
                return Err(ConcertError::SeatsOutOfRange {
                    date_id: date.date_id,
                    seats: date.seats,
                    max: MAX_SEATS_PER_DATE,
                });
            }
            if !STARTS_AT_YEARS.contains(&date.starts_at.year()) {
                return Err(ConcertError::StartsAtOutOfRange {
                    date_id: date.date_id,
                    starts_at: date.starts_at,
                });
            }
            if !(Won(1)..=MAX_PRICE).contains(&date.price) {
                return Err(ConcertError::PriceOutOfRange {
                    date_id: date.date_id,
                    price: date.price,
                    max: MAX_PRICE,
                });
            }
            if dates[..index]
                .iter()
                .any(|other| other.date_id == date.date_id)
            {
                return Err(ConcertError::DuplicateDate {
                    date_id: date.date_id,
                });
            }
            total += u64::from(date.seats);
        }
        if total > MAX_SEATS_PER_CONCERT {
            return Err(ConcertError::TooManySeats {
                total,
                max: MAX_SEATS_PER_CONCERT,
            });
        }
        Ok(ConcertEvent::ConcertScheduled { title, dates })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::stored::load;
    use cqrs_es::test::TestFramework;

    type ConcertTest = TestFramework<Concert>;

    #[test]
    fn scheduling_a_concert_records_its_dates() {
        let dates = vec![date(50, 150_000)];
        ConcertTest::with(())
            .given_no_previous_events()
            .when(schedule("Winter Gala", dates.clone()))
            .then_expect_events(vec![scheduled("Winter Gala", dates)]);
    }

    #[test]
    fn a_concert_is_scheduled_only_once() {
        ConcertTest::with(())
            .given(vec![scheduled("Winter Gala", vec![date(50, 1)])])
            .when(schedule("Winter Gala", vec![date(50, 1)]))
            .then_expect_error(ConcertError::AlreadyScheduled);
    }

    #[test]
    fn a_blank_title_is_refused() {
        ConcertTest::with(())
            .given_no_previous_events()
            .when(schedule("  ", vec![date(50, 1)]))
            .then_expect_error(ConcertError::TitleInvalid {
                max: MAX_TITLE_CHARS,
            });
    }

    #[test]
    fn a_title_that_shows_nothing_is_refused() {
        ConcertTest::with(())
            .given_no_previous_events()
            .when(schedule("\u{200B}\u{FEFF}", vec![date(50, 1)]))
            .then_expect_error(ConcertError::TitleInvalid {
                max: MAX_TITLE_CHARS,
            });
    }

    #[test]
    fn a_title_of_hangul_fillers_shows_nothing_and_is_refused() {
        ConcertTest::with(())
            .given_no_previous_events()
            .when(schedule("\u{3164}\u{3164}\u{3164}", vec![date(50, 1)]))
            .then_expect_error(ConcertError::TitleInvalid {
                max: MAX_TITLE_CHARS,
            });
    }

    #[test]
    fn a_title_with_control_characters_is_refused() {
        ConcertTest::with(())
            .given_no_previous_events()
            .when(schedule("Gala\u{0}Night", vec![date(50, 1)]))
            .then_expect_error(ConcertError::TitleInvalid {
                max: MAX_TITLE_CHARS,
            });
    }

    #[test]
    fn a_concert_needs_one_to_a_hundred_dates() {
        ConcertTest::with(())
            .given_no_previous_events()
            .when(schedule("Gala", vec![]))
            .then_expect_error(ConcertError::DateCountOutOfRange {
                count: 0,
                max: MAX_DATES,
            });
        let dates = (0..=MAX_DATES).map(|_| date(1, 1)).collect();
        ConcertTest::with(())
            .given_no_previous_events()
            .when(schedule("Gala", dates))
            .then_expect_error(ConcertError::DateCountOutOfRange {
                count: 101,
                max: MAX_DATES,
            });
    }

    #[test]
    fn a_date_has_one_to_fifty_thousand_seats() {
        for seats in [0, MAX_SEATS_PER_DATE + 1] {
            let bad = date(seats, 1);
            ConcertTest::with(())
                .given_no_previous_events()
                .when(schedule("Gala", vec![bad.clone()]))
                .then_expect_error(ConcertError::SeatsOutOfRange {
                    date_id: bad.date_id,
                    seats,
                    max: MAX_SEATS_PER_DATE,
                });
        }
    }

    #[test]
    fn a_concert_has_at_most_a_million_seats() {
        let dates = (0..21).map(|_| date(MAX_SEATS_PER_DATE, 1)).collect();
        ConcertTest::with(())
            .given_no_previous_events()
            .when(schedule("Gala", dates))
            .then_expect_error(ConcertError::TooManySeats {
                total: 1_050_000,
                max: MAX_SEATS_PER_CONCERT,
            });
    }

    #[test]
    fn a_price_is_one_to_a_billion_won() {
        for price in [0, -5, MAX_PRICE.0 + 1] {
            let bad = date(10, price);
            ConcertTest::with(())
                .given_no_previous_events()
                .when(schedule("Gala", vec![bad.clone()]))
                .then_expect_error(ConcertError::PriceOutOfRange {
                    date_id: bad.date_id,
                    price: Won(price),
                    max: MAX_PRICE,
                });
        }
    }

    #[test]
    fn a_date_starts_in_the_years_1970_to_9999() {
        for starts_at in [
            "-4713-11-23T23:59:59Z",
            "1969-12-31T23:59:59.999999Z",
            "+10000-01-01T00:00:00Z",
        ] {
            let bad = ConcertDate {
                starts_at: starts_at.parse().unwrap(),
                ..date(10, 1)
            };
            ConcertTest::with(())
                .given_no_previous_events()
                .when(schedule("Gala", vec![bad.clone()]))
                .then_expect_error(ConcertError::StartsAtOutOfRange {
                    date_id: bad.date_id,
                    starts_at: bad.starts_at,
                });
        }
        let edges: Vec<ConcertDate> = ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z"]
            .into_iter()
            .map(|starts_at| ConcertDate {
                starts_at: starts_at.parse().unwrap(),
                ..date(10, 1)
            })
            .collect();
        ConcertTest::with(())
            .given_no_previous_events()
            .when(schedule("Gala", edges.clone()))
            .then_expect_events(vec![ConcertEvent::ConcertScheduled {
                title: "Gala".into(),
                dates: edges,
            }]);
    }

    #[test]
    fn a_date_cannot_appear_twice() {
        let twice = date(10, 1);
        ConcertTest::with(())
            .given_no_previous_events()
            .when(schedule("Gala", vec![twice.clone(), twice.clone()]))
            .then_expect_error(ConcertError::DuplicateDate {
                date_id: twice.date_id,
            });
    }

    #[test]
    fn a_stored_concert_scheduled_still_loads() {
        let payload = r#"{"ConcertScheduled":{"title":"Gala","dates":[{"date_id":"0190a5b0-0000-7000-8000-000000000001","starts_at":"2026-12-24T19:00:00Z","seats":50,"price":150000}]}}"#;

        let event: ConcertEvent = load("ConcertScheduled", "1", payload);

        let date = ConcertDate {
            date_id: DateId("0190a5b0-0000-7000-8000-000000000001".parse().unwrap()),
            starts_at: "2026-12-24T19:00:00Z".parse().unwrap(),
            seats: 50,
            price: Won(150_000),
        };
        assert_eq!(event, scheduled("Gala", vec![date]));
    }

    fn date(seats: u32, price: i64) -> ConcertDate {
        let starts_at = "2026-12-24T19:00:00Z".parse().unwrap();
        ConcertDate {
            date_id: DateId::new(),
            starts_at,
            seats,
            price: Won(price),
        }
    }

    fn schedule(title: &str, dates: Vec<ConcertDate>) -> ConcertCommand {
        ConcertCommand::ScheduleConcert {
            title: title.to_string(),
            dates,
        }
    }

    fn scheduled(title: &str, dates: Vec<ConcertDate>) -> ConcertEvent {
        ConcertEvent::ConcertScheduled {
            title: title.to_string(),
            dates,
        }
    }
}
