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
mod tests;
