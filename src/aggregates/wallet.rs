//! A user's wallet: the balance never goes below zero nor above 10^12 won, a
//! reservation is paid at most once, and every won is accounted for by an event
//! that carries the resulting balance.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use cqrs_es::{event_sink::EventSink, Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::ids::{ChargeId, PaymentId, ReservationId, SeatId};
use crate::money::Won;

/// Largest single charge or payment, in won.
pub const MAX_AMOUNT: Won = Won(1_000_000_000);
/// Largest balance a wallet may hold, in won.
pub const MAX_BALANCE: Won = Won(1_000_000_000_000);
/// How many recent charges a wallet remembers to recognise retries.
const REMEMBERED_CHARGES: usize = 1_000;

/// A wallet and the payments taken from it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Wallet {
    balance: Won,
    payments: HashMap<PaymentId, TakenPayment>,
    /// (A snapshot from before amounts were kept here cannot be read, and the
    /// wallet is rebuilt from its events.)
    recent_charges: VecDeque<RecentCharge>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct RecentCharge {
    charge_id: ChargeId,
    amount: Won,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TakenPayment {
    reservation_id: ReservationId,
    amount: Won,
    refunded: bool,
}

/// What can be asked of a wallet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::AsRefStr)]
pub enum WalletCommand {
    /// Adds money. A charge id seen recently is a retry and changes nothing
    /// when it asks for the same amount; for another amount, it is refused.
    /// `amount` is in won, as on the `Pay` command; the decision and its
    /// event carry it as `Won`.
    Charge { charge_id: ChargeId, amount: Won },
    /// Takes the price of a held seat. A payment id already taken for this
    /// reservation is a retry and changes nothing; for another, it is refused.
    Pay {
        payment_id: PaymentId,
        reservation_id: ReservationId,
        seat_id: SeatId,
        amount: Won,
        now: DateTime<Utc>,
    },
    /// Gives a payment back in full, when its seat could not be sold.
    Refund { payment_id: PaymentId },
}

/// What happened to a wallet; each event carries the balance after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::AsRefStr)]
pub enum WalletEvent {
    Charged {
        charge_id: ChargeId,
        amount: Won,
        balance: Won,
    },
    Paid {
        payment_id: PaymentId,
        reservation_id: ReservationId,
        seat_id: SeatId,
        amount: Won,
        balance: Won,
        paid_at: DateTime<Utc>,
    },
    Refunded {
        payment_id: PaymentId,
        amount: Won,
        balance: Won,
    },
}

impl WalletEvent {
    /// The wallet's balance once this event happened.
    pub fn balance(&self) -> Won {
        match self {
            WalletEvent::Charged { balance, .. }
            | WalletEvent::Paid { balance, .. }
            | WalletEvent::Refunded { balance, .. } => *balance,
        }
    }
}

impl DomainEvent for WalletEvent {
    fn event_type(&self) -> String {
        // The variant name, as every stored event has it (pinned by the tests).
        self.as_ref().to_string()
    }

    fn event_version(&self) -> String {
        super::EVENT_VERSION.to_string()
    }
}

/// Why a wallet command was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum WalletError {
    #[error("amount {amount} is outside 1..={max}")]
    AmountOutOfRange { amount: Won, max: Won },
    #[error("a balance of {balance} plus {amount} would pass the limit of {max}")]
    BalanceLimitExceeded { balance: Won, amount: Won, max: Won },
    #[error("balance {balance} is below the price {amount}")]
    InsufficientBalance { balance: Won, amount: Won },
    #[error("reservation {reservation_id} is already paid by payment {payment_id}")]
    AlreadyPaid {
        reservation_id: ReservationId,
        payment_id: PaymentId,
    },
    #[error("no payment {payment_id} was taken from this wallet")]
    UnknownPayment { payment_id: PaymentId },
    #[error("payment {payment_id} was refunded: its hold lapsed before the seat was sold")]
    PaymentRefunded { payment_id: PaymentId },
    #[error("this Idempotency-Key was used for a different request: charge {charge_id} added {charged}, not {amount}")]
    ChargeIdTaken {
        charge_id: ChargeId,
        charged: Won,
        amount: Won,
    },
    #[error("payment {payment_id} already paid reservation {paid}, not {reservation_id}")]
    PaymentIdTaken {
        payment_id: PaymentId,
        paid: ReservationId,
        reservation_id: ReservationId,
    },
}

impl Aggregate for Wallet {
    const TYPE: &'static str = "Wallet";
    type Command = WalletCommand;
    type Event = WalletEvent;
    type Error = WalletError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            WalletCommand::Charge { charge_id, amount } => self.charge(charge_id, amount)?,
            WalletCommand::Pay {
                payment_id,
                reservation_id,
                seat_id,
                amount,
                now,
            } => self.pay(payment_id, reservation_id, seat_id, amount, now)?,
            WalletCommand::Refund { payment_id } => self.refund(payment_id)?,
        };
        if let Some(event) = event {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WalletEvent::Charged {
                charge_id,
                amount,
                balance,
            } => {
                self.balance = balance;
                if self.recent_charges.len() == REMEMBERED_CHARGES {
                    self.recent_charges.pop_front();
                }
                self.recent_charges
                    .push_back(RecentCharge { charge_id, amount });
            }
            WalletEvent::Paid {
                payment_id,
                reservation_id,
                amount,
                balance,
                ..
            } => {
                self.balance = balance;
                self.payments.insert(
                    payment_id,
                    TakenPayment {
                        reservation_id,
                        amount,
                        refunded: false,
                    },
                );
            }
            WalletEvent::Refunded {
                payment_id,
                balance,
                ..
            } => {
                self.balance = balance;
                if let Some(payment) = self.payments.get_mut(&payment_id) {
                    payment.refunded = true;
                }
            }
        }
    }
}

impl Wallet {
    fn charge(&self, charge_id: ChargeId, amount: Won) -> Result<Option<WalletEvent>, WalletError> {
        let seen = self
            .recent_charges
            .iter()
            .find(|charge| charge.charge_id == charge_id);
        if let Some(charged) = seen {
            // One Idempotency-Key sent with two amounts at once derives one
            // charge id: the second must not pass as the first one's retry.
            if charged.amount != amount {
                return Err(WalletError::ChargeIdTaken {
                    charge_id,
                    charged: charged.amount,
                    amount,
                });
            }
            return Ok(None);
        }
        check_amount(amount)?;
        let balance = self
            .balance
            .checked_add(amount)
            .filter(|balance| *balance <= MAX_BALANCE)
            .ok_or(WalletError::BalanceLimitExceeded {
                balance: self.balance,
                amount,
                max: MAX_BALANCE,
            })?;
        Ok(Some(WalletEvent::Charged {
            charge_id,
            amount,
            balance,
        }))
    }

    fn pay(
        &self,
        payment_id: PaymentId,
        reservation_id: ReservationId,
        seat_id: SeatId,
        amount: Won,
        now: DateTime<Utc>,
    ) -> Result<Option<WalletEvent>, WalletError> {
        if let Some(taken) = self.payments.get(&payment_id) {
            // One Idempotency-Key sent for two reservations at once derives
            // one payment id: the second must not pass as paid by the first.
            if taken.reservation_id != reservation_id {
                return Err(WalletError::PaymentIdTaken {
                    payment_id,
                    paid: taken.reservation_id,
                    reservation_id,
                });
            }
            // Given back because its seat could not be sold (the hold
            // lapsed first): a retry must not sell the seat after all.
            if taken.refunded {
                return Err(WalletError::PaymentRefunded { payment_id });
            }
            return Ok(None);
        }
        let open = self
            .payments
            .iter()
            .find(|(_, paid)| paid.reservation_id == reservation_id && !paid.refunded);
        if let Some((paid_by, _)) = open {
            return Err(WalletError::AlreadyPaid {
                reservation_id,
                payment_id: *paid_by,
            });
        }
        check_amount(amount)?;
        let balance = self
            .balance
            .checked_sub(amount)
            .filter(|balance| *balance >= Won::ZERO)
            .ok_or(WalletError::InsufficientBalance {
                balance: self.balance,
                amount,
            })?;
        Ok(Some(WalletEvent::Paid {
            payment_id,
            reservation_id,
            seat_id,
            amount,
            balance,
            paid_at: now,
        }))
    }

    fn refund(&self, payment_id: PaymentId) -> Result<Option<WalletEvent>, WalletError> {
        let payment = self
            .payments
            .get(&payment_id)
            .ok_or(WalletError::UnknownPayment { payment_id })?;
        if payment.refunded {
            return Ok(None);
        }
        // Not held to MAX_BALANCE: the money was this wallet's before it was
        // paid. Overflow is out of reach, but would be refused, not wrapped.
        let amount = payment.amount;
        let overflow = WalletError::BalanceLimitExceeded {
            balance: self.balance,
            amount,
            max: Won(i64::MAX),
        };
        let balance = self.balance.checked_add(amount).ok_or(overflow)?;
        Ok(Some(WalletEvent::Refunded {
            payment_id,
            amount,
            balance,
        }))
    }
}

fn check_amount(amount: Won) -> Result<(), WalletError> {
    if (Won(1)..=MAX_AMOUNT).contains(&amount) {
        Ok(())
    } else {
        Err(WalletError::AmountOutOfRange {
            amount,
            max: MAX_AMOUNT,
        })
    }
}

#[cfg(test)]
mod tests {
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
}
