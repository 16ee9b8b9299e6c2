use super::*;
use crate::aggregates::stored::load;
use chrono::Duration;
use cqrs_es::test::TestFramework;

type SeatTest = TestFramework<Seat>;

#[test]
fn a_free_seat_is_held() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given_no_previous_events()
        .when(hold(r, 0))
        .then_expect_events(vec![held(r, 0)]);
}

#[test]
fn a_seat_knows_its_date_from_its_first_hold_on() {
    let r = ReservationId::new();
    let mut seat = Seat::default();
    assert_eq!(seat.date_id(), None);
    seat.apply(held(r, 0));
    seat.apply(expired(r, 300));
    assert_eq!(seat.date_id(), Some(DATE), "kept once the hold is gone");
}

#[test]
fn a_held_seat_has_one_holder() {
    SeatTest::with(())
        .given(vec![held(ReservationId::new(), 0)])
        .when(hold(ReservationId::new(), 60))
        .then_expect_error(SeatError::SeatUnavailable);
}

#[test]
fn a_lapsed_hold_is_expired_before_the_next_hold() {
    let (first, second) = (ReservationId::new(), ReservationId::new());
    SeatTest::with(())
        .given(vec![held(first, 0)])
        .when(hold(second, 300))
        .then_expect_events(vec![expired(first, 300), held(second, 300)]);
}

#[test]
fn a_reservation_that_held_the_seat_before_cannot_hold_it_again() {
    // A keyed retry arriving after its own hold lapsed: holding again
    // would be a hold the reservations' read model never shows.
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0), expired(r, 300)])
        .when(hold(r, 400))
        .then_expect_error(SeatError::ReservationUsed { reservation_id: r });
}

#[test]
fn a_sold_seat_cannot_be_held() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0), sold(r, PAYMENT)])
        .when(hold(ReservationId::new(), 10_000))
        .then_expect_error(SeatError::SeatUnavailable);
}

#[test]
fn a_hold_must_end_after_it_starts() {
    let command = SeatCommand::HoldSeat {
        reservation_id: ReservationId::new(),
        user_id: USER,
        date_id: DATE,
        seat_no: 7,
        price: PRICE,
        now: at(10),
        until: at(10),
    };
    SeatTest::with(())
        .given_no_previous_events()
        .when(command)
        .then_expect_error(SeatError::HoldEndsBeforeItStarts);
}

#[test]
fn a_hold_past_its_deadline_expires() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0)])
        .when(SeatCommand::ExpireHold {
            reservation_id: r,
            now: at(300),
        })
        .then_expect_events(vec![expired(r, 300)]);
}

#[test]
fn a_hold_does_not_expire_early() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0)])
        .when(SeatCommand::ExpireHold {
            reservation_id: r,
            now: at(299),
        })
        .then_expect_error(SeatError::HoldNotDue {
            reservation_id: r,
            until: at(300),
        });
}

#[test]
fn expiring_a_confirmed_hold_does_nothing() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0), sold(r, PAYMENT)])
        .when(SeatCommand::ExpireHold {
            reservation_id: r,
            now: at(301),
        })
        .then_expect_events(vec![]);
}

#[test]
fn expiring_an_expired_or_released_hold_does_nothing() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0), expired(r, 300)])
        .when(SeatCommand::ExpireHold {
            reservation_id: r,
            now: at(400),
        })
        .then_expect_events(vec![]);
    SeatTest::with(())
        .given(vec![
            held(r, 0),
            SeatEvent::HoldReleased { reservation_id: r },
        ])
        .when(SeatCommand::ExpireHold {
            reservation_id: r,
            now: at(400),
        })
        .then_expect_events(vec![]);
}

#[test]
fn the_holder_can_release_the_seat() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0)])
        .when(SeatCommand::ReleaseHold { reservation_id: r })
        .then_expect_events(vec![SeatEvent::HoldReleased { reservation_id: r }]);
}

#[test]
fn releasing_another_reservation_does_nothing() {
    SeatTest::with(())
        .given(vec![held(ReservationId::new(), 0)])
        .when(SeatCommand::ReleaseHold {
            reservation_id: ReservationId::new(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_live_hold_is_sold_to_its_holder() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0)])
        .when(confirm(r, PAYMENT, 299))
        .then_expect_events(vec![sold(r, PAYMENT)]);
}

#[test]
fn a_lapsed_hold_cannot_be_confirmed() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0)])
        .when(confirm(r, PAYMENT, 300))
        .then_expect_error(SeatError::HoldLapsed { reservation_id: r });
}

#[test]
fn confirming_needs_the_same_reservation() {
    let other = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(ReservationId::new(), 0)])
        .when(confirm(other, PAYMENT, 10))
        .then_expect_error(SeatError::HoldLapsed {
            reservation_id: other,
        });
}

#[test]
fn a_sold_seat_stays_sold() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0), sold(r, PAYMENT)])
        .when(confirm(r, PaymentId::new(), 10))
        .then_expect_error(SeatError::AlreadySold { reservation_id: r });
}

#[test]
fn confirming_the_same_payment_twice_does_nothing() {
    let r = ReservationId::new();
    SeatTest::with(())
        .given(vec![held(r, 0), sold(r, PAYMENT)])
        .when(confirm(r, PAYMENT, 10))
        .then_expect_events(vec![]);
}

#[test]
fn a_stored_seat_held_still_loads() {
    let payload = r#"{"SeatHeld":{"reservation_id":"00000000-0000-0000-0000-000000000004","user_id":"00000000-0000-0000-0000-000000000001","date_id":"00000000-0000-0000-0000-000000000002","seat_no":7,"price":150000,"held_at":"2024-10-04T00:00:00Z","until":"2024-10-04T00:05:00Z"}}"#;

    let event: SeatEvent = load("SeatHeld", "1", payload);

    assert_eq!(event, held(RESERVATION, 0));
}

#[test]
fn a_stored_hold_expired_still_loads() {
    let payload = r#"{"HoldExpired":{"reservation_id":"00000000-0000-0000-0000-000000000004","expired_at":"2024-10-04T00:05:00.250Z"}}"#;

    let event: SeatEvent = load("HoldExpired", "1", payload);

    let expired_at = at(300) + Duration::milliseconds(250);
    assert_eq!(
        event,
        SeatEvent::HoldExpired {
            reservation_id: RESERVATION,
            expired_at
        }
    );
}

#[test]
fn a_stored_hold_released_still_loads() {
    let payload = r#"{"HoldReleased":{"reservation_id":"00000000-0000-0000-0000-000000000004"}}"#;

    let event: SeatEvent = load("HoldReleased", "1", payload);

    assert_eq!(
        event,
        SeatEvent::HoldReleased {
            reservation_id: RESERVATION
        }
    );
}

#[test]
fn a_stored_seat_sold_still_loads() {
    let payload = r#"{"SeatSold":{"reservation_id":"00000000-0000-0000-0000-000000000004","payment_id":"00000000-0000-0000-0000-000000000003","user_id":"00000000-0000-0000-0000-000000000001","price":150000}}"#;

    let event: SeatEvent = load("SeatSold", "1", payload);

    let without_ticket = SeatEvent::SeatSold {
        reservation_id: RESERVATION,
        payment_id: PAYMENT,
        user_id: USER,
        price: PRICE,
        ticket_id: None,
    };
    assert_eq!(event, without_ticket);
}

#[test]
fn a_sale_names_the_ticket_that_paid_as_version_2() {
    let payload = r#"{"SeatSold":{"reservation_id":"00000000-0000-0000-0000-000000000004","payment_id":"00000000-0000-0000-0000-000000000003","user_id":"00000000-0000-0000-0000-000000000001","price":150000,"ticket_id":"00000000-0000-0000-0000-000000000005"}}"#;

    let event: SeatEvent = load("SeatSold", "2", payload);

    assert_eq!(event, sold(RESERVATION, PAYMENT));
    assert_eq!(serde_json::to_string(&event).unwrap(), payload);
}

#[test]
fn a_recovered_payment_whose_ticket_is_unknown_sells_without_one() {
    let r = ReservationId::new();
    let unknown_ticket = SeatCommand::ConfirmSeat {
        reservation_id: r,
        payment_id: PAYMENT,
        ticket_id: None,
        now: at(10),
    };
    SeatTest::with(())
        .given(vec![held(r, 0)])
        .when(unknown_ticket)
        .then_expect_events(vec![SeatEvent::SeatSold {
            reservation_id: r,
            payment_id: PAYMENT,
            user_id: USER,
            price: PRICE,
            ticket_id: None,
        }]);
}

const USER: UserId = UserId(uuid::Uuid::from_u128(1));
const DATE: DateId = DateId(uuid::Uuid::from_u128(2));
const PAYMENT: PaymentId = PaymentId(uuid::Uuid::from_u128(3));
const RESERVATION: ReservationId = ReservationId(uuid::Uuid::from_u128(4));
const TICKET: TicketId = TicketId(uuid::Uuid::from_u128(5));
const PRICE: Won = Won(150_000);

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(seconds)
}

fn hold(reservation_id: ReservationId, now: i64) -> SeatCommand {
    SeatCommand::HoldSeat {
        reservation_id,
        user_id: USER,
        date_id: DATE,
        seat_no: 7,
        price: PRICE,
        now: at(now),
        until: at(now + 300),
    }
}

fn held(reservation_id: ReservationId, now: i64) -> SeatEvent {
    SeatEvent::SeatHeld {
        reservation_id,
        user_id: USER,
        date_id: DATE,
        seat_no: 7,
        price: PRICE,
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

fn confirm(reservation_id: ReservationId, payment_id: PaymentId, now: i64) -> SeatCommand {
    SeatCommand::ConfirmSeat {
        reservation_id,
        payment_id,
        ticket_id: Some(TICKET),
        now: at(now),
    }
}

fn sold(reservation_id: ReservationId, payment_id: PaymentId) -> SeatEvent {
    SeatEvent::SeatSold {
        reservation_id,
        payment_id,
        user_id: USER,
        price: PRICE,
        ticket_id: Some(TICKET),
    }
}
