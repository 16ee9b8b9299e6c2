//! Payments: a payment is debited once and buys one seat, a refund returns
//! one payment once, and at the end of the log every sold seat has a
//! completed payment at its price, taken from its buyer's wallet for its
//! reservation, while every payment either sold a seat or was refunded.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use crate::aggregates::{SeatEvent, WalletEvent};
use crate::event_log::RawEvent;
use crate::ids::{PaymentId, ReservationId, SeatId, UserId};
use crate::money::Won;

use super::Violation;

const SALE_IS_PAID: &str = "a sold seat has one completed payment at its price";
const SOLD_TO_PAYER: &str = "a seat is sold to the wallet that paid, for the reservation paid";

/// Sales and payments by payment id, matched up at the end of the log.
#[derive(Debug, Default)]
pub(super) struct PaymentCheck {
    sales: HashMap<PaymentId, Sale>,
    payments: HashMap<PaymentId, Payment>,
}

/// A seat sold for a payment.
#[derive(Debug)]
struct Sale {
    seat: String,
    price: Won,
    user: UserId,
    reservation: ReservationId,
    at: String,
}

/// Money taken from a wallet (its user's id) for a seat.
#[derive(Debug)]
struct Payment {
    wallet: String,
    seat: SeatId,
    reservation: ReservationId,
    amount: Won,
    refunded: bool,
    at: String,
}

impl PaymentCheck {
    /// Records a sale.
    pub(super) fn apply_seat(
        &mut self,
        row: &RawEvent,
        event: &SeatEvent,
        found: &mut Vec<Violation>,
    ) {
        let SeatEvent::SeatSold {
            payment_id,
            price,
            user_id,
            reservation_id,
        } = event
        else {
            return;
        };
        let sale = Sale {
            seat: row.aggregate_id.clone(),
            price: *price,
            user: *user_id,
            reservation: *reservation_id,
            at: row.label(),
        };
        if let Some(earlier) = self.sales.insert(*payment_id, sale) {
            found.push(Violation::new(
                "a payment buys one seat",
                format!("payment {payment_id} sold two seats"),
                vec![earlier.at, row.label()],
            ));
        }
    }

    /// Records a payment, or matches a refund with its payment.
    pub(super) fn apply_wallet(
        &mut self,
        row: &RawEvent,
        event: &WalletEvent,
        found: &mut Vec<Violation>,
    ) {
        match *event {
            WalletEvent::Charged { .. } => {}
            WalletEvent::Paid {
                payment_id,
                reservation_id,
                seat_id,
                amount,
                ..
            } => match self.payments.entry(payment_id) {
                // Money taken twice for one seat: the first debit is the
                // payment, and stays the one its sale and refund are matched with.
                Entry::Occupied(first) => found.push(Violation::new(
                    "a payment is debited once",
                    format!("payment {payment_id} debited twice"),
                    vec![first.get().at.clone(), row.label()],
                )),
                Entry::Vacant(slot) => {
                    slot.insert(Payment {
                        wallet: row.aggregate_id.clone(),
                        seat: seat_id,
                        reservation: reservation_id,
                        amount,
                        refunded: false,
                        at: row.label(),
                    });
                }
            },
            WalletEvent::Refunded {
                payment_id, amount, ..
            } => match self.payments.get_mut(&payment_id) {
                Some(payment)
                    if payment.wallet == row.aggregate_id
                        && payment.amount == amount
                        && !payment.refunded =>
                {
                    payment.refunded = true;
                }
                _ => found.push(Violation::new(
                    "refunds return a payment once",
                    format!("refund of {payment_id}"),
                    vec![row.label()],
                )),
            },
        }
    }

    /// Matches every sale with its payment, and every payment with a sale or a refund.
    pub(super) fn finish(&self, found: &mut Vec<Violation>) {
        for (payment_id, sale) in &self.sales {
            let Some(payment) = self.payments.get(payment_id) else {
                found.push(Violation::new(
                    SALE_IS_PAID,
                    format!(
                        "seat {} sold for payment {payment_id}, which no wallet paid",
                        sale.seat
                    ),
                    vec![sale.at.clone()],
                ));
                continue;
            };
            let events = || vec![payment.at.clone(), sale.at.clone()];
            if payment.amount != sale.price
                || payment.seat.to_string() != sale.seat
                || payment.refunded
            {
                let detail = format!(
                    "payment {payment_id}: {} for seat {}, refunded {}",
                    payment.amount, payment.seat, payment.refunded
                );
                found.push(Violation::new(SALE_IS_PAID, detail, events()));
            }
            // A wallet's id is its user's.
            if payment.wallet != sale.user.to_string() || payment.reservation != sale.reservation {
                let detail = format!(
                    "payment {payment_id} taken from wallet {} for reservation {}; \
                     seat {} sold to user {} for reservation {}",
                    payment.wallet, payment.reservation, sale.seat, sale.user, sale.reservation
                );
                found.push(Violation::new(SOLD_TO_PAYER, detail, events()));
            }
        }
        for (payment_id, payment) in &self.payments {
            if !payment.refunded && !self.sales.contains_key(payment_id) {
                found.push(Violation::new(
                    "every payment sold a seat or was refunded",
                    format!(
                        "payment {payment_id} of {} neither sold a seat nor was refunded",
                        payment.amount
                    ),
                    vec![payment.at.clone()],
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
                    check.apply_seat(&row, &event, &mut found);
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

    const PAYMENT: PaymentId = PaymentId(uuid::Uuid::from_u128(1));
    const OTHER_PAYMENT: PaymentId = PaymentId(uuid::Uuid::from_u128(2));
    const SEAT: SeatId = SeatId(uuid::Uuid::from_u128(3));
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
        };
        Logged::Seat { seat, event }
    }
}
