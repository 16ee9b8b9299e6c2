//! Read models against the log: every wallet's balance row says what its
//! events add up to, the seats listed as held or sold are exactly those the
//! log leaves held or sold, and no queue ticket the log expired is listed as
//! active (that would let its token in again). Only that direction of the
//! tickets is checked: a ticket admitted or expired while the audit runs
//! is not yet in the log it read, but an expiry is for good.

use std::collections::HashSet;

use sqlx::PgPool;
use uuid::Uuid;

use super::catalogue_rows::CatalogueRows;
use super::queue::QueueCheck;
use super::seats::SeatCheck;
use super::wallets::WalletCheck;
use super::Violation;

const AGREE: &str = "read models agree with the log";

/// The read-model rows the audit compares.
#[derive(Debug)]
pub(super) struct ReadModelRows {
    balances: Vec<BalanceRow>,
    taken_seats: Vec<SeatRow>,
    active_tickets: Vec<Uuid>,
    /// The dates and the seats of each.
    pub catalogue: CatalogueRows,
    /// Streams (`Type/id`) with events the audit did not walk, committed
    /// while it ran: their rows may already show those events, and are
    /// not compared.
    moved: HashSet<String>,
}

/// One row of `balances`.
#[derive(Debug, sqlx::FromRow)]
struct BalanceRow {
    user_id: Uuid,
    balance: i64,
}

/// One row of `seats` that is not free.
#[derive(Debug, sqlx::FromRow)]
struct SeatRow {
    seat_id: Uuid,
    status: String,
}

impl ReadModelRows {
    /// Every balance, every seat not listed as free, every active ticket,
    /// and the streams that moved past `upto`, the last position walked.
    pub(super) async fn load(pool: &PgPool, upto: i64) -> sqlx::Result<Self> {
        let balances = sqlx::query_as("select user_id, balance from balances")
            .fetch_all(pool)
            .await?;
        let taken_seats =
            sqlx::query_as("select seat_id, status from seats where status <> 'free'")
                .fetch_all(pool)
                .await?;
        let active_tickets =
            sqlx::query_scalar("select ticket_id from queue_tickets where status = 'active'")
                .fetch_all(pool)
                .await?;
        let catalogue = CatalogueRows::load(pool).await?;
        // Read after the rows: every event a row shows is committed by now,
        // so an event the walk missed is found here (unpositioned, or placed
        // after `upto` since).
        let moved = sqlx::query_scalar(
            "select distinct aggregate_type || '/' || aggregate_id from events
             where position > $1 or position is null",
        )
        .bind(upto)
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect();
        Ok(Self {
            balances,
            taken_seats,
            active_tickets,
            catalogue,
            moved,
        })
    }

    /// Names each row that disagrees with the log, and each wallet or taken
    /// seat of the log that has no row.
    pub(super) fn compare(
        &self,
        wallets: &WalletCheck,
        seats: &SeatCheck,
        queue: &QueueCheck,
        found: &mut Vec<Violation>,
    ) {
        let mut listed = HashSet::new();
        for BalanceRow { user_id, balance } in &self.balances {
            listed.insert(user_id.to_string());
            if self.moved(&format!("Wallet/{user_id}")) {
                continue;
            }
            let expected = wallets.balance(&user_id.to_string());
            if expected != *balance {
                found.push(Violation::new(
                    AGREE,
                    format!("balances says {balance} for {user_id}, the log says {expected}"),
                    vec![format!("Wallet/{user_id}")],
                ));
            }
        }
        let unlisted = wallets.wallets().filter(|wallet| !listed.contains(*wallet));
        for wallet in unlisted.filter(|wallet| !self.moved(&format!("Wallet/{wallet}"))) {
            found.push(Violation::new(
                AGREE,
                format!("no balance row for {wallet}"),
                vec![format!("Wallet/{wallet}")],
            ));
        }
        let mut listed = HashSet::new();
        for SeatRow { seat_id, status } in &self.taken_seats {
            listed.insert(seat_id.to_string());
            if self.moved(&format!("Seat/{seat_id}")) {
                continue;
            }
            let expected = seats.status(&seat_id.to_string());
            if expected != status {
                found.push(Violation::new(
                    AGREE,
                    format!("seats says {status} for {seat_id}, the log says {expected}"),
                    vec![format!("Seat/{seat_id}")],
                ));
            }
        }
        let unlisted = seats.taken().filter(|seat| !listed.contains(*seat));
        for seat in unlisted.filter(|seat| !self.moved(&format!("Seat/{seat}"))) {
            found.push(Violation::new(
                AGREE,
                format!("seat {seat} is listed as free"),
                vec![format!("Seat/{seat}")],
            ));
        }
        for ticket in self.active_tickets.iter().map(Uuid::to_string) {
            if queue.expired(&ticket) && !self.moved(&format!("QueueTicket/{ticket}")) {
                found.push(Violation::new(
                    AGREE,
                    format!("queue_tickets lists {ticket} as active, the log expired it"),
                    vec![format!("QueueTicket/{ticket}")],
                ));
            }
        }
    }

    pub(super) fn moved(&self, stream: &str) -> bool {
        self.moved.contains(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::{ExpiryReason, QueueTicketEvent, SeatEvent, WalletEvent};
    use crate::audit::fixtures::logged;
    use crate::ids::{ChargeId, ConcertId, DateId, ReservationId, UserId};
    use crate::money::Won;
    use chrono::{DateTime, Utc};

    #[test]
    fn read_models_that_agree_have_no_violation() {
        let (wallets, seats) = log();
        let rows = ReadModelRows {
            catalogue: CatalogueRows::default(),
            balances: vec![balance(WALLET, 500)],
            taken_seats: vec![seat(SEAT, "held")],
            active_tickets: vec![],
            moved: HashSet::new(),
        };

        assert!(compare(&rows, &wallets, &seats).is_empty());
    }

    #[test]
    fn a_balance_row_that_disagrees_is_named() {
        let (wallets, seats) = log();
        let rows = ReadModelRows {
            catalogue: CatalogueRows::default(),
            balances: vec![balance(WALLET, 400)],
            taken_seats: vec![seat(SEAT, "held")],
            active_tickets: vec![],
            moved: HashSet::new(),
        };

        let found = compare(&rows, &wallets, &seats);

        assert_eq!(found.len(), 1);
        assert_eq!(found[0].rule, "read models agree with the log");
        assert_eq!(
            found[0].detail,
            format!("balances says 400 for {WALLET}, the log says 500")
        );
        assert_eq!(found[0].events, [format!("Wallet/{WALLET}")]);
    }

    #[test]
    fn a_wallet_without_a_balance_row_is_named() {
        let (wallets, seats) = log();
        let rows = ReadModelRows {
            catalogue: CatalogueRows::default(),
            balances: vec![],
            taken_seats: vec![seat(SEAT, "held")],
            active_tickets: vec![],
            moved: HashSet::new(),
        };

        let found = compare(&rows, &wallets, &seats);

        assert_eq!(found.len(), 1);
        assert_eq!(found[0].detail, format!("no balance row for {WALLET}"));
    }

    #[test]
    fn a_seat_row_that_disagrees_is_named() {
        let (wallets, seats) = log();
        let other = Uuid::from_u128(9);
        let rows = ReadModelRows {
            catalogue: CatalogueRows::default(),
            balances: vec![balance(WALLET, 500)],
            taken_seats: vec![seat(SEAT, "sold"), seat(other, "held")],
            active_tickets: vec![],
            moved: HashSet::new(),
        };

        let found = compare(&rows, &wallets, &seats);

        let details: Vec<_> = found.iter().map(|v| v.detail.clone()).collect();
        assert_eq!(
            details,
            [
                format!("seats says sold for {SEAT}, the log says held"),
                format!("seats says held for {other}, the log says free"),
            ]
        );
    }

    #[test]
    fn a_taken_seat_listed_as_free_is_named() {
        let (wallets, seats) = log();
        let rows = ReadModelRows {
            catalogue: CatalogueRows::default(),
            balances: vec![balance(WALLET, 500)],
            taken_seats: vec![],
            active_tickets: vec![],
            moved: HashSet::new(),
        };

        let found = compare(&rows, &wallets, &seats);

        assert_eq!(found.len(), 1);
        assert_eq!(found[0].detail, format!("seat {SEAT} is listed as free"));
        assert_eq!(found[0].events, [format!("Seat/{SEAT}")]);
    }

    #[test]
    fn a_ticket_listed_as_active_that_the_log_expired_is_named() {
        let (wallets, seats) = log();
        let (expired, admitted) = (Uuid::from_u128(7), Uuid::from_u128(8));
        let mut queue = QueueCheck::new(5.into());
        let mut ignored = Vec::new();
        let concert_id = ConcertId(Uuid::from_u128(6));
        for ticket in [expired, admitted] {
            let stream = format!("QueueTicket/{ticket}");
            let entered = QueueTicketEvent::QueueEntered {
                concert_id,
                user_id: UserId(WALLET),
                entry_no: 1,
                entered_at: DateTime::<Utc>::UNIX_EPOCH,
            };
            queue.apply(&logged(1, &stream, "QueueEntered"), entered, &mut ignored);
        }
        let lapsed = QueueTicketEvent::TicketExpired {
            reason: ExpiryReason::Timeout,
            expired_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let stream = format!("QueueTicket/{expired}");
        queue.apply(&logged(2, &stream, "TicketExpired"), lapsed, &mut ignored);
        // Admitted after the audit read the log: not in it yet, not named.
        let rows = ReadModelRows {
            catalogue: CatalogueRows::default(),
            balances: vec![balance(WALLET, 500)],
            taken_seats: vec![seat(SEAT, "held")],
            active_tickets: vec![expired, admitted],
            moved: HashSet::new(),
        };

        let mut found = Vec::new();
        rows.compare(&wallets, &seats, &queue, &mut found);

        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].detail,
            format!("queue_tickets lists {expired} as active, the log expired it")
        );
        assert_eq!(found[0].events, [format!("QueueTicket/{expired}")]);
    }

    #[test]
    fn rows_of_streams_that_moved_while_the_audit_ran_are_not_compared() {
        let (wallets, seats) = log();
        let other = Uuid::from_u128(9);
        let rows = ReadModelRows {
            catalogue: CatalogueRows::default(),
            balances: vec![balance(WALLET, 900)],
            taken_seats: vec![seat(other, "held")],
            active_tickets: vec![],
            moved: HashSet::from([format!("Wallet/{WALLET}"), format!("Seat/{SEAT}")]),
        };

        let found = compare(&rows, &wallets, &seats);

        // The seat that did not move is still compared.
        let details: Vec<_> = found.iter().map(|v| v.detail.clone()).collect();
        assert_eq!(
            details,
            [format!("seats says held for {other}, the log says free")]
        );
    }

    const WALLET: Uuid = Uuid::from_u128(1);
    const SEAT: Uuid = Uuid::from_u128(2);

    /// A log of one wallet charged 500 and one seat held.
    fn log() -> (WalletCheck, SeatCheck) {
        let mut ignored = Vec::new();
        let mut wallets = WalletCheck::default();
        let charged = WalletEvent::Charged {
            charge_id: ChargeId(Uuid::from_u128(3)),
            amount: Won(500),
            balance: Won(500),
        };
        let row = logged(1, &format!("Wallet/{WALLET}"), "Charged");
        wallets.apply(&row, charged, &mut ignored);
        let mut seats = SeatCheck::default();
        let held = SeatEvent::SeatHeld {
            reservation_id: ReservationId(Uuid::from_u128(4)),
            user_id: UserId(WALLET),
            date_id: DateId(Uuid::from_u128(5)),
            seat_no: 1,
            price: Won(100),
            held_at: DateTime::<Utc>::UNIX_EPOCH,
            until: DateTime::<Utc>::UNIX_EPOCH,
        };
        let row = logged(2, &format!("Seat/{SEAT}"), "SeatHeld");
        seats.apply(&row, held, &mut ignored);
        (wallets, seats)
    }

    fn compare(rows: &ReadModelRows, wallets: &WalletCheck, seats: &SeatCheck) -> Vec<Violation> {
        let mut found = Vec::new();
        rows.compare(wallets, seats, &QueueCheck::new(1.into()), &mut found);
        found
    }

    fn balance(user_id: Uuid, balance: i64) -> BalanceRow {
        BalanceRow { user_id, balance }
    }

    fn seat(seat_id: Uuid, status: &str) -> SeatRow {
        SeatRow {
            seat_id,
            status: status.to_string(),
        }
    }
}
