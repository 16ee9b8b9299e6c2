//! Wallets: the balance each event states is the sum of the charges, minus the
//! payments, plus the refunds before it; it never goes below zero nor, by a
//! charge, above the largest balance, and each charge is within the limits
//! of one.

use std::collections::HashMap;

use crate::aggregates::wallet::{MAX_AMOUNT, MAX_BALANCE};
use crate::aggregates::WalletEvent;
use crate::event_log::RawEvent;
use crate::money::Won;

use super::Violation;

/// Each wallet's balance as the log adds it up, by user id.
#[derive(Debug, Default)]
pub(super) struct WalletCheck {
    balances: HashMap<String, i64>,
}

impl WalletCheck {
    /// Adds `event` to the balance of the wallet of `row`.
    pub(super) fn apply(&mut self, row: &RawEvent, event: WalletEvent, found: &mut Vec<Violation>) {
        if let WalletEvent::Charged { amount, .. } = event {
            if amount < Won(1) || amount > MAX_AMOUNT {
                found.push(Violation::new(
                    "a charge is 1 to 10^9 won",
                    format!("a charge of {amount}"),
                    vec![row.label()],
                ));
            }
        }
        let balance = self.balance(&row.aggregate_id);
        let (computed, stated) = match event {
            WalletEvent::Charged {
                amount,
                balance: stated,
                ..
            } => (balance + amount.0, stated.0),
            WalletEvent::Paid {
                amount,
                balance: stated,
                ..
            } => (balance - amount.0, stated.0),
            WalletEvent::Refunded {
                amount,
                balance: stated,
                ..
            } => (balance + amount.0, stated.0),
        };
        if computed != stated {
            let detail =
                format!("charges - payments + refunds = {computed}, the event says {stated}");
            found.push(Violation::new("balances add up", detail, vec![row.label()]));
        }
        if computed < 0 {
            found.push(Violation::new(
                "balances never go negative",
                format!("balance {computed}"),
                vec![row.label()],
            ));
        }
        // Only a charge is held to the largest balance: a refund returns a
        // payment whatever the balance has reached since.
        let charged = matches!(event, WalletEvent::Charged { .. });
        if charged && computed > MAX_BALANCE.0 {
            found.push(Violation::new(
                "a charge leaves at most 10^12 won",
                format!("balance {computed}"),
                vec![row.label()],
            ));
        }
        self.balances.insert(row.aggregate_id.clone(), computed);
    }

    /// The balance of one wallet; 0 for a wallet the log never mentions.
    pub(super) fn balance(&self, user_id: &str) -> i64 {
        self.balances.get(user_id).copied().unwrap_or(0)
    }

    /// The wallets the log mentions.
    pub(super) fn wallets(&self) -> impl Iterator<Item = &str> {
        self.balances.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixtures::{logged, rules};
    use crate::ids::{ChargeId, PaymentId, ReservationId, SeatId};
    use crate::money::Won;
    use chrono::{DateTime, Utc};
    use cqrs_es::DomainEvent;

    #[test]
    fn charges_payments_and_refunds_that_add_up_have_no_violation() {
        let (check, found) = run(vec![charged(500, 500), paid(200, 300), refunded(200, 500)]);

        assert!(found.is_empty(), "{found:?}");
        assert_eq!(check.balance("w"), 500);
        assert_eq!(check.wallets().collect::<Vec<_>>(), ["w"]);
    }

    #[test]
    fn a_stated_balance_that_does_not_add_up_is_named() {
        let (check, found) = run(vec![charged(500, 500), paid(200, 400)]);

        assert_eq!(rules(&found), ["balances add up"]);
        assert_eq!(
            found[0].detail,
            "charges - payments + refunds = 300, the event says 400"
        );
        assert_eq!(found[0].events, ["#2 Wallet/w seq 2 Paid"]);
        // The audit goes on from what the log adds up to, not what it states.
        assert_eq!(check.balance("w"), 300);
    }

    #[test]
    fn a_negative_balance_is_named() {
        let (_, found) = run(vec![charged(100, 100), paid(200, -100)]);

        assert_eq!(rules(&found), ["balances never go negative"]);
        assert_eq!(found[0].detail, "balance -100");
    }

    #[test]
    fn a_wallet_the_log_never_mentions_holds_nothing() {
        assert_eq!(WalletCheck::default().balance("nobody"), 0);
    }

    /// Feeds the events to one wallet `w`, one position each.
    #[test]
    fn a_charge_out_of_range_and_a_balance_over_the_largest_are_named() {
        let (_, found) = run(vec![
            charged(0, 0),
            charged(1_000_000_001, 1_000_000_001),
            charged(999_999_999, 2_000_000_000),
        ]);
        let mut over = Vec::new();
        let mut balance = 0;
        for _ in 0..1_001 {
            balance += 1_000_000_000;
            over.push(charged(1_000_000_000, balance));
        }
        let (_, found_over) = run(over);

        assert_eq!(
            rules(&found),
            ["a charge is 1 to 10^9 won", "a charge is 1 to 10^9 won"]
        );
        assert_eq!(rules(&found_over), ["a charge leaves at most 10^12 won"]);
    }

    #[test]
    fn a_refund_past_the_largest_balance_is_not_named() {
        let (_, found) = run(vec![
            charged(1_000_000_000, 1_000_000_000),
            paid(1_000, 999_999_000),
            charged(1_000, 1_000_000_000),
            refunded(1_000, 1_000_001_000),
        ]);

        assert!(found.is_empty(), "{found:?}");
    }

    fn run(events: Vec<WalletEvent>) -> (WalletCheck, Vec<Violation>) {
        let mut check = WalletCheck::default();
        let mut found = Vec::new();
        for (position, event) in (1..).zip(events) {
            let row = logged(position, "Wallet/w", &event.event_type());
            check.apply(&row, event, &mut found);
        }
        (check, found)
    }

    const PAYMENT: PaymentId = PaymentId(uuid::Uuid::from_u128(1));

    fn charged(amount: i64, balance: i64) -> WalletEvent {
        WalletEvent::Charged {
            charge_id: ChargeId(uuid::Uuid::from_u128(2)),
            amount: Won(amount),
            balance: Won(balance),
        }
    }

    fn paid(amount: i64, balance: i64) -> WalletEvent {
        WalletEvent::Paid {
            payment_id: PAYMENT,
            reservation_id: ReservationId(uuid::Uuid::from_u128(3)),
            seat_id: SeatId(uuid::Uuid::from_u128(4)),
            amount: Won(amount),
            balance: Won(balance),
            paid_at: DateTime::<Utc>::UNIX_EPOCH,
        }
    }

    fn refunded(amount: i64, balance: i64) -> WalletEvent {
        WalletEvent::Refunded {
            payment_id: PAYMENT,
            amount: Won(amount),
            balance: Won(balance),
        }
    }
}
