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
fn a_hold_dated_before_the_last_hold_of_its_seat_ended_is_named() {
    let (first, second) = (reservation(1), reservation(2));
    // In order after the expiry, but dated inside the first hold, or before
    // it began (appended by hand, each passed before).
    for dated in [200, -100] {
        let (_, found) = run(vec![
            held(first, 0),
            expired(first, 300),
            held(second, dated),
        ]);
        assert_eq!(rules(&found), ["one holder at a time"], "held at {dated}");
        assert_eq!(
            found[0].events,
            ["#2 Seat/s seq 2 HoldExpired", "#3 Seat/s seq 3 SeatHeld"]
        );
    }
    // Within the clocks' agreement of the expiry, a hold is as honest as one after it.
    let (_, found) = run(vec![held(first, 0), expired(first, 300), held(second, 300)]);
    assert!(found.is_empty(), "{found:?}");
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
        ticket_id: None,
    }
}
