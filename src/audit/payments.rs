//! Payments: a payment is debited once and buys one seat, a refund returns
//! one payment once, and at the end of the log every sold seat has a
//! completed payment at its price, taken from its buyer's wallet for its
//! reservation while the hold lasted, while every payment either sold a
//! seat or was refunded.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::aggregates::{SeatEvent, WalletEvent};
use crate::event_log::RawEvent;
use crate::ids::{PaymentId, ReservationId, SeatId, UserId};
use crate::money::Won;

use super::seats::CLOCKS_AGREE_WITHIN;
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
    /// The deadline of the hold it was sold on.
    hold_until: Option<DateTime<Utc>>,
    at: String,
}

/// Money taken from a wallet (its user's id) for a seat.
#[derive(Debug)]
struct Payment {
    wallet: String,
    seat: SeatId,
    reservation: ReservationId,
    amount: Won,
    paid_at: DateTime<Utc>,
    refunded: bool,
    at: String,
}

impl PaymentCheck {
    /// Records a sale made on a hold that lasts until `hold_until`.
    pub(super) fn apply_seat(
        &mut self,
        row: &RawEvent,
        event: &SeatEvent,
        hold_until: Option<DateTime<Utc>>,
        found: &mut Vec<Violation>,
    ) {
        let SeatEvent::SeatSold {
            payment_id,
            price,
            user_id,
            reservation_id,
            ..
        } = event
        else {
            return;
        };
        let sale = Sale {
            seat: row.aggregate_id.clone(),
            price: *price,
            user: *user_id,
            reservation: *reservation_id,
            hold_until,
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
                paid_at,
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
                        paid_at,
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
            if let Some(until) = sale.hold_until {
                // A difference, not a sum: a deadline near the end of
                // time, read from a payload, cannot overflow it.
                if payment.paid_at - until > CLOCKS_AGREE_WITHIN {
                    found.push(Violation::new(
                        "a seat is sold on a payment made while its hold lasted",
                        format!("paid at {}, the hold ended at {until}", payment.paid_at),
                        events(),
                    ));
                }
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
mod tests;
