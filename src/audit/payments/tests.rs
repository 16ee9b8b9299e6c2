use super::*;
use crate::audit::fixtures::{logged, rules};
use crate::ids::ChargeId;
use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;

#[test]
fn a_paid_sale_and_a_refunded_payment_have_no_violation() {
    let found = run(vec![
        paid(PAYMENT, SEAT, 100),
        sold(PAYMENT, SEAT, 100),
        paid(OTHER_PAYMENT, SEAT, 100),
        refunded(OTHER_PAYMENT, 100),
        charged(),
    ]);

    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_sale_on_a_payment_made_after_its_hold_ended_is_named() {
    let mut late = paid(PAYMENT, SEAT, 100);
    if let Logged::Wallet {
        event: WalletEvent::Paid { paid_at, .. },
        ..
    } = &mut late
    {
        *paid_at = HOLD_UNTIL + chrono::TimeDelta::seconds(2);
    }
    let on_time = paid(OTHER_PAYMENT, OTHER_SEAT, 100);

    let found = run(vec![
        late,
        sold(PAYMENT, SEAT, 100),
        on_time,
        sold(OTHER_PAYMENT, OTHER_SEAT, 100),
    ]);

    assert_eq!(
        rules(&found),
        ["a seat is sold on a payment made while its hold lasted"]
    );
}

#[test]
fn a_hold_ending_at_the_end_of_time_is_judged_without_overflowing() {
    let mut check = PaymentCheck::default();
    let mut found = Vec::new();
    let Logged::Wallet { event: payment, .. } = paid(PAYMENT, SEAT, 100) else {
        unreachable!()
    };
    let Logged::Seat { event: sale, .. } = sold(PAYMENT, SEAT, 100) else {
        unreachable!()
    };
    let wallet_row = logged(1, &format!("Wallet/{BUYER}"), "Paid");
    check.apply_wallet(&wallet_row, &payment, &mut found);
    let seat_row = logged(2, &format!("Seat/{SEAT}"), "SeatSold");
    check.apply_seat(&seat_row, &sale, Some(DateTime::<Utc>::MAX_UTC), &mut found);

    check.finish(&mut found);

    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_payment_debited_twice_is_named() {
    let found = run(vec![
        paid(PAYMENT, SEAT, 100),
        paid(PAYMENT, SEAT, 100),
        sold(PAYMENT, SEAT, 100),
    ]);

    assert_eq!(rules(&found), ["a payment is debited once"]);
    assert_eq!(found[0].detail, format!("payment {PAYMENT} debited twice"));
    assert_eq!(
        found[0].events,
        [
            format!("#1 Wallet/{BUYER} seq 1 Paid"),
            format!("#2 Wallet/{BUYER} seq 2 Paid")
        ]
    );
}

#[test]
fn a_payment_debited_again_from_another_wallet_is_named() {
    let found = run(vec![
        paid(PAYMENT, SEAT, 100),
        paid_from(OTHER_USER, RESERVATION, PAYMENT, SEAT, 100),
        sold(PAYMENT, SEAT, 100),
    ]);

    assert_eq!(rules(&found), ["a payment is debited once"]);
    assert_eq!(
        found[0].events,
        [
            format!("#1 Wallet/{BUYER} seq 1 Paid"),
            format!("#2 Wallet/{OTHER_USER} seq 2 Paid")
        ]
    );
}

#[test]
fn a_refunded_payment_debited_again_is_named_and_stays_refunded() {
    let found = run(vec![
        paid(PAYMENT, SEAT, 100),
        refunded(PAYMENT, 100),
        paid(PAYMENT, SEAT, 100),
    ]);

    assert_eq!(rules(&found), ["a payment is debited once"]);
}

#[test]
fn a_seat_sold_to_another_user_than_the_payer_is_named() {
    let found = run(vec![
        paid_from(OTHER_USER, RESERVATION, PAYMENT, SEAT, 100),
        sold(PAYMENT, SEAT, 100),
    ]);

    assert_eq!(rules(&found), [SOLD_TO_PAYER]);
    assert_eq!(
        found[0].detail,
        format!(
            "payment {PAYMENT} taken from wallet {OTHER_USER} for reservation {RESERVATION}; \
             seat {SEAT} sold to user {BUYER} for reservation {RESERVATION}"
        )
    );
    assert_eq!(
        found[0].events,
        [
            format!("#1 Wallet/{OTHER_USER} seq 1 Paid"),
            format!("#2 Seat/{SEAT} seq 2 SeatSold")
        ]
    );
}

#[test]
fn a_sale_of_another_reservation_than_the_one_paid_is_named() {
    let other_reservation = ReservationId(uuid::Uuid::from_u128(8));
    let found = run(vec![
        paid_from(BUYER, other_reservation, PAYMENT, SEAT, 100),
        sold(PAYMENT, SEAT, 100),
    ]);

    assert_eq!(rules(&found), [SOLD_TO_PAYER]);
}

#[test]
fn a_payment_that_sold_two_seats_is_named() {
    let other_seat = SeatId(uuid::Uuid::from_u128(5));
    let found = run(vec![
        paid(PAYMENT, SEAT, 100),
        sold(PAYMENT, SEAT, 100),
        sold(PAYMENT, other_seat, 100),
    ]);

    assert_eq!(rules(&found), ["a payment buys one seat", SALE_IS_PAID]);
    assert_eq!(
        found[0].events,
        [
            format!("#2 Seat/{SEAT} seq 2 SeatSold"),
            format!("#3 Seat/{other_seat} seq 3 SeatSold")
        ]
    );
}

#[test]
fn a_refund_of_no_payment_is_named() {
    let found = run(vec![refunded(PAYMENT, 100)]);

    assert_eq!(rules(&found), ["refunds return a payment once"]);
    assert_eq!(found[0].detail, format!("refund of {PAYMENT}"));
}

#[test]
fn a_second_refund_of_a_payment_is_named() {
    let found = run(vec![
        paid(PAYMENT, SEAT, 100),
        refunded(PAYMENT, 100),
        refunded(PAYMENT, 100),
    ]);

    assert_eq!(rules(&found), ["refunds return a payment once"]);
}

#[test]
fn a_refund_of_another_amount_is_named() {
    let found = run(vec![paid(PAYMENT, SEAT, 100), refunded(PAYMENT, 50)]);

    assert_eq!(
        rules(&found),
        [
            "refunds return a payment once",
            "every payment sold a seat or was refunded"
        ]
    );
}

#[test]
fn a_sale_below_its_price_is_named() {
    let found = run(vec![paid(PAYMENT, SEAT, 1), sold(PAYMENT, SEAT, 100)]);

    assert_eq!(rules(&found), [SALE_IS_PAID]);
    assert_eq!(
        found[0].detail,
        format!("payment {PAYMENT}: 1 for seat {SEAT}, refunded false")
    );
    assert_eq!(
        found[0].events,
        [
            format!("#1 Wallet/{BUYER} seq 1 Paid"),
            format!("#2 Seat/{SEAT} seq 2 SeatSold")
        ]
    );
}

#[test]
fn a_sale_paid_for_another_seat_is_named() {
    let other_seat = SeatId(uuid::Uuid::from_u128(5));
    let found = run(vec![
        paid(PAYMENT, other_seat, 100),
        sold(PAYMENT, SEAT, 100),
    ]);

    assert_eq!(rules(&found), [SALE_IS_PAID]);
}

#[test]
fn a_sale_whose_payment_was_refunded_is_named() {
    let found = run(vec![
        paid(PAYMENT, SEAT, 100),
        refunded(PAYMENT, 100),
        sold(PAYMENT, SEAT, 100),
    ]);

    assert_eq!(rules(&found), [SALE_IS_PAID]);
}

#[test]
fn a_sale_no_wallet_paid_is_named() {
    let found = run(vec![sold(PAYMENT, SEAT, 100)]);

    assert_eq!(rules(&found), [SALE_IS_PAID]);
    assert_eq!(
        found[0].detail,
        format!("seat {SEAT} sold for payment {PAYMENT}, which no wallet paid")
    );
}

#[test]
fn a_payment_that_neither_sold_nor_was_refunded_is_named() {
    let found = run(vec![paid(PAYMENT, SEAT, 100)]);

    assert_eq!(rules(&found), ["every payment sold a seat or was refunded"]);
    assert_eq!(
        found[0].detail,
        format!("payment {PAYMENT} of 100 neither sold a seat nor was refunded")
    );
}

/// One event: of the seat or the wallet (its user) it names.
enum Logged {
    Seat { seat: SeatId, event: SeatEvent },
    Wallet { wallet: UserId, event: WalletEvent },
}

/// Feeds the events one position each, then finishes.
fn run(events: Vec<Logged>) -> Vec<Violation> {
    let mut check = PaymentCheck::default();
    let mut found = Vec::new();
    for (position, logged_event) in (1..).zip(events) {
        match logged_event {
            Logged::Seat { seat, event } => {
                let row = logged(position, &format!("Seat/{seat}"), &event.event_type());
                check.apply_seat(&row, &event, Some(HOLD_UNTIL), &mut found);
            }
            Logged::Wallet { wallet, event } => {
                let row = logged(position, &format!("Wallet/{wallet}"), &event.event_type());
                check.apply_wallet(&row, &event, &mut found);
            }
        }
    }
    check.finish(&mut found);
    found
}

/// Where every sale's hold ends: 300 s after the fixtures' payments.
const HOLD_UNTIL: DateTime<Utc> = DateTime::<Utc>::from_timestamp(300, 0).unwrap();
const PAYMENT: PaymentId = PaymentId(uuid::Uuid::from_u128(1));
const OTHER_PAYMENT: PaymentId = PaymentId(uuid::Uuid::from_u128(2));
const SEAT: SeatId = SeatId(uuid::Uuid::from_u128(3));
const OTHER_SEAT: SeatId = SeatId(uuid::Uuid::from_u128(8));
const RESERVATION: ReservationId = ReservationId(uuid::Uuid::from_u128(4));
/// The holder of `RESERVATION`, whom its seat is sold to.
const BUYER: UserId = UserId(uuid::Uuid::from_u128(6));
const OTHER_USER: UserId = UserId(uuid::Uuid::from_u128(7));

/// The buyer paying for `RESERVATION`.
fn paid(payment_id: PaymentId, seat_id: SeatId, amount: i64) -> Logged {
    paid_from(BUYER, RESERVATION, payment_id, seat_id, amount)
}

fn paid_from(
    wallet: UserId,
    reservation_id: ReservationId,
    payment_id: PaymentId,
    seat_id: SeatId,
    amount: i64,
) -> Logged {
    let event = WalletEvent::Paid {
        payment_id,
        reservation_id,
        seat_id,
        amount: Won(amount),
        balance: Won::ZERO,
        paid_at: DateTime::<Utc>::UNIX_EPOCH,
    };
    Logged::Wallet { wallet, event }
}

fn refunded(payment_id: PaymentId, amount: i64) -> Logged {
    let event = WalletEvent::Refunded {
        payment_id,
        amount: Won(amount),
        balance: Won(amount),
    };
    Logged::Wallet {
        wallet: BUYER,
        event,
    }
}

fn charged() -> Logged {
    let event = WalletEvent::Charged {
        charge_id: ChargeId(uuid::Uuid::from_u128(9)),
        amount: Won(5),
        balance: Won(5),
    };
    Logged::Wallet {
        wallet: BUYER,
        event,
    }
}

fn sold(payment_id: PaymentId, seat: SeatId, price: i64) -> Logged {
    let event = SeatEvent::SeatSold {
        reservation_id: RESERVATION,
        payment_id,
        user_id: BUYER,
        price: Won(price),
        ticket_id: None,
    };
    Logged::Seat { seat, event }
}
