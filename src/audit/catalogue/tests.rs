use super::*;
use crate::aggregates::ConcertDate;
use crate::audit::fixtures::{logged, rules};
use chrono::{DateTime, Utc};
use uuid::Uuid;

const CONCERT: &str = "00000000-0000-0000-0000-000000000001";
const DATE: DateId = DateId(Uuid::from_u128(2));

fn scheduled(concert: &str, date_id: DateId) -> (RawEvent, ConcertEvent) {
    let event = ConcertEvent::ConcertScheduled {
        title: "t".into(),
        dates: vec![ConcertDate {
            date_id,
            starts_at: DateTime::<Utc>::UNIX_EPOCH,
            seats: 10,
            price: Won(100),
        }],
    };
    (
        logged(1, &format!("Concert/{concert}"), "ConcertScheduled"),
        event,
    )
}

/// The catalogue of one concert with one date of 10 seats at 100.
fn catalogue() -> CatalogueCheck {
    let mut check = CatalogueCheck::default();
    let (row, event) = scheduled(CONCERT, DATE);
    check.apply(&row, event, &mut Vec::new());
    check
}

fn hold(check: &CatalogueCheck, stream_seat: SeatId, seat_no: u32, price: i64) -> Vec<Violation> {
    let mut found = Vec::new();
    let row = logged(2, &format!("Seat/{stream_seat}"), "SeatHeld");
    check.check_hold(&row, DATE, seat_no, Won(price), &mut found);
    found
}

#[test]
fn a_hold_of_one_of_the_date_s_seats_at_its_price_has_no_violation() {
    let check = catalogue();

    assert!(hold(&check, SeatId::of(DATE, 10), 10, 100).is_empty());
    assert_eq!(
        check.dates()[&DATE],
        ScheduledDate {
            concert: ConcertId(CONCERT.parse().unwrap()),
            seats: 10,
            price: Won(100),
            starts_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    );
}

#[test]
fn a_seat_beyond_its_date_or_on_another_stream_or_at_another_price_is_named() {
    let check = catalogue();

    let beyond = hold(&check, SeatId::of(DATE, 11), 11, 100);
    let elsewhere = hold(&check, SeatId::of(DATE, 2), 1, 100);
    let cheaper = hold(&check, SeatId::of(DATE, 1), 1, 99);

    assert_eq!(rules(&beyond), [SEAT_OF_ITS_DATE]);
    assert_eq!(rules(&elsewhere), [SEAT_OF_ITS_DATE]);
    assert_eq!(rules(&cheaper), [HELD_AT_ITS_PRICE]);
}

#[test]
fn a_hold_of_a_date_never_scheduled_is_named_and_has_no_date() {
    let check = CatalogueCheck::default();
    let mut found = Vec::new();
    let row = logged(1, &format!("Seat/{}", SeatId::of(DATE, 1)), "SeatHeld");

    let date = check.check_hold(&row, DATE, 1, Won(100), &mut found);

    assert_eq!(date, None);
    assert_eq!(rules(&found), [SEAT_OF_ITS_DATE]);
}

#[test]
fn a_concert_or_a_date_scheduled_twice_is_named() {
    let mut check = catalogue();
    let mut found = Vec::new();

    let (again, event) = scheduled(CONCERT, DateId(Uuid::from_u128(3)));
    check.apply(&again, event, &mut found);
    let (other, event) = scheduled("00000000-0000-0000-0000-000000000009", DATE);
    check.apply(&other, event, &mut found);

    assert_eq!(rules(&found), [SCHEDULED_ONCE, SCHEDULED_ONCE]);
    assert_eq!(found[0].detail, "the concert was scheduled before");
    assert_eq!(found[1].detail, format!("date {DATE} was scheduled before"));
}
