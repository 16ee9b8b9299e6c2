use super::*;
use crate::aggregates::stored::load;
use cqrs_es::test::TestFramework;

type WalletTest = TestFramework<Wallet>;

#[test]
fn a_charge_raises_the_balance() {
    WalletTest::with(())
        .given(vec![charged(CHARGE, 100, 100)])
        .when(charge(ChargeId(uuid::Uuid::from_u128(9)), 50))
        .then_expect_events(vec![charged(ChargeId(uuid::Uuid::from_u128(9)), 50, 150)]);
}

#[test]
fn a_charge_is_one_to_a_billion_won() {
    for amount in [0, -1, i64::MIN, MAX_AMOUNT.0 + 1, i64::MAX] {
        WalletTest::with(())
            .given_no_previous_events()
            .when(charge(ChargeId::new(), amount))
            .then_expect_error(WalletError::AmountOutOfRange {
                amount: Won(amount),
                max: MAX_AMOUNT,
            });
    }
}

#[test]
fn the_balance_stays_at_most_a_trillion_won() {
    WalletTest::with(())
        .given(vec![charged(CHARGE, MAX_AMOUNT.0, MAX_BALANCE.0)])
        .when(charge(ChargeId::new(), 1))
        .then_expect_error(WalletError::BalanceLimitExceeded {
            balance: MAX_BALANCE,
            amount: Won(1),
            max: MAX_BALANCE,
        });
}

#[test]
fn a_retried_charge_changes_nothing() {
    WalletTest::with(())
        .given(vec![charged(CHARGE, 100, 100)])
        .when(charge(CHARGE, 100))
        .then_expect_events(vec![]);
}

#[test]
fn a_charge_id_taken_for_another_amount_is_refused() {
    WalletTest::with(())
        .given(vec![charged(CHARGE, 100, 100)])
        .when(charge(CHARGE, 200))
        .then_expect_error(WalletError::ChargeIdTaken {
            charge_id: CHARGE,
            charged: Won(100),
            amount: Won(200),
        });
}

#[test]
fn a_snapshot_from_before_charge_amounts_were_kept_is_not_read() {
    let mut wallet = Wallet::default();
    wallet.apply(charged(CHARGE, 100, 100));
    let mut snapshot = serde_json::to_value(&wallet).unwrap();
    assert!(serde_json::from_value::<Wallet>(snapshot.clone()).is_ok());
    // What an older snapshot holds: the recent charges as bare ids.
    snapshot["recent_charges"] = serde_json::json!([CHARGE]);
    assert!(serde_json::from_value::<Wallet>(snapshot).is_err());
}

#[test]
fn paying_takes_the_price_from_the_balance() {
    WalletTest::with(())
        .given(vec![charged(CHARGE, 200, 200)])
        .when(pay(PAYMENT, RESERVATION, 150))
        .then_expect_events(vec![paid(PAYMENT, RESERVATION, 150, 50)]);
}

#[test]
fn paying_more_than_the_balance_is_rejected() {
    WalletTest::with(())
        .given(vec![charged(CHARGE, 100, 100)])
        .when(pay(PAYMENT, RESERVATION, 150))
        .then_expect_error(WalletError::InsufficientBalance {
            balance: Won(100),
            amount: Won(150),
        });
}

#[test]
fn a_payment_amount_must_be_in_range() {
    WalletTest::with(())
        .given(vec![charged(CHARGE, 100, 100)])
        .when(pay(PAYMENT, RESERVATION, -5))
        .then_expect_error(WalletError::AmountOutOfRange {
            amount: Won(-5),
            max: MAX_AMOUNT,
        });
}

#[test]
fn a_payment_id_taken_for_another_reservation_is_refused() {
    let other = ReservationId(uuid::Uuid::from_u128(5));
    WalletTest::with(())
        .given(vec![
            charged(CHARGE, 300, 300),
            paid(PAYMENT, RESERVATION, 100, 200),
        ])
        .when(pay(PAYMENT, other, 100))
        .then_expect_error(WalletError::PaymentIdTaken {
            payment_id: PAYMENT,
            paid: RESERVATION,
            reservation_id: other,
        });
}

#[test]
fn a_reservation_is_paid_once() {
    WalletTest::with(())
        .given(vec![
            charged(CHARGE, 300, 300),
            paid(PAYMENT, RESERVATION, 100, 200),
        ])
        .when(pay(PaymentId::new(), RESERVATION, 100))
        .then_expect_error(WalletError::AlreadyPaid {
            reservation_id: RESERVATION,
            payment_id: PAYMENT,
        });
}

#[test]
fn a_retried_payment_changes_nothing() {
    WalletTest::with(())
        .given(vec![
            charged(CHARGE, 300, 300),
            paid(PAYMENT, RESERVATION, 100, 200),
        ])
        .when(pay(PAYMENT, RESERVATION, 100))
        .then_expect_events(vec![]);
}

#[test]
fn a_retry_of_a_refunded_payment_is_refused() {
    // Selling the seat for it now would leave the seat sold and the
    // money given back.
    WalletTest::with(())
        .given(vec![
            charged(CHARGE, 300, 300),
            paid(PAYMENT, RESERVATION, 100, 200),
            refunded(PAYMENT, 100, 300),
        ])
        .when(pay(PAYMENT, RESERVATION, 100))
        .then_expect_error(WalletError::PaymentRefunded {
            payment_id: PAYMENT,
        });
}

#[test]
fn a_refund_gives_the_payment_back() {
    WalletTest::with(())
        .given(vec![
            charged(CHARGE, 300, 300),
            paid(PAYMENT, RESERVATION, 100, 200),
        ])
        .when(WalletCommand::Refund {
            payment_id: PAYMENT,
        })
        .then_expect_events(vec![refunded(PAYMENT, 100, 300)]);
}

#[test]
fn a_payment_is_refunded_once() {
    WalletTest::with(())
        .given(vec![
            charged(CHARGE, 300, 300),
            paid(PAYMENT, RESERVATION, 100, 200),
            refunded(PAYMENT, 100, 300),
        ])
        .when(WalletCommand::Refund {
            payment_id: PAYMENT,
        })
        .then_expect_events(vec![]);
}

#[test]
fn an_unknown_payment_cannot_be_refunded() {
    WalletTest::with(())
        .given(vec![charged(CHARGE, 300, 300)])
        .when(WalletCommand::Refund {
            payment_id: PAYMENT,
        })
        .then_expect_error(WalletError::UnknownPayment {
            payment_id: PAYMENT,
        });
}

#[test]
fn a_refunded_reservation_can_be_paid_again() {
    let again = PaymentId::new();
    WalletTest::with(())
        .given(vec![
            charged(CHARGE, 300, 300),
            paid(PAYMENT, RESERVATION, 100, 200),
            refunded(PAYMENT, 100, 300),
        ])
        .when(pay(again, RESERVATION, 100))
        .then_expect_events(vec![paid(again, RESERVATION, 100, 200)]);
}

#[test]
fn a_stored_charge_still_loads() {
    let payload = r#"{"Charged":{"charge_id":"00000000-0000-0000-0000-000000000001","amount":5,"balance":5}}"#;

    let event: WalletEvent = load("Charged", "1", payload);

    assert_eq!(event, charged(CHARGE, 5, 5));
}

#[test]
fn a_stored_payment_still_loads() {
    let payload = r#"{"Paid":{"payment_id":"00000000-0000-0000-0000-000000000002","reservation_id":"00000000-0000-0000-0000-000000000003","seat_id":"00000000-0000-0000-0000-000000000004","amount":150000,"balance":50000,"paid_at":"1970-01-01T00:00:00Z"}}"#;

    let event: WalletEvent = load("Paid", "1", payload);

    assert_eq!(event, paid(PAYMENT, RESERVATION, 150_000, 50_000));
}

#[test]
fn a_stored_refund_still_loads() {
    let payload = r#"{"Refunded":{"payment_id":"00000000-0000-0000-0000-000000000002","amount":150000,"balance":200000}}"#;

    let event: WalletEvent = load("Refunded", "1", payload);

    assert_eq!(event, refunded(PAYMENT, 150_000, 200_000));
}

const CHARGE: ChargeId = ChargeId(uuid::Uuid::from_u128(1));
const PAYMENT: PaymentId = PaymentId(uuid::Uuid::from_u128(2));
const RESERVATION: ReservationId = ReservationId(uuid::Uuid::from_u128(3));
const SEAT: SeatId = SeatId(uuid::Uuid::from_u128(4));
const PAID_AT: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

fn charge(charge_id: ChargeId, amount: i64) -> WalletCommand {
    WalletCommand::Charge {
        charge_id,
        amount: Won(amount),
    }
}

fn charged(charge_id: ChargeId, amount: i64, balance: i64) -> WalletEvent {
    WalletEvent::Charged {
        charge_id,
        amount: Won(amount),
        balance: Won(balance),
    }
}

fn pay(payment_id: PaymentId, reservation_id: ReservationId, amount: i64) -> WalletCommand {
    WalletCommand::Pay {
        payment_id,
        reservation_id,
        seat_id: SEAT,
        amount: Won(amount),
        now: PAID_AT,
    }
}

fn paid(
    payment_id: PaymentId,
    reservation_id: ReservationId,
    amount: i64,
    balance: i64,
) -> WalletEvent {
    WalletEvent::Paid {
        payment_id,
        reservation_id,
        seat_id: SEAT,
        amount: Won(amount),
        balance: Won(balance),
        paid_at: PAID_AT,
    }
}

fn refunded(payment_id: PaymentId, amount: i64, balance: i64) -> WalletEvent {
    WalletEvent::Refunded {
        payment_id,
        amount: Won(amount),
        balance: Won(balance),
    }
}
