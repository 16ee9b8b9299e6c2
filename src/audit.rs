//! `concert audit`: reads the whole log once, in commit order, and checks the
//! log itself (positions, sequences, hash chain) and the booking invariants
//! (seats, money, payments, holds, admissions), then compares the read models
//! with what the log says. Memory grows with the number of aggregates, not events.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::aggregates::{ConcertEvent, QueueTicketEvent, SeatEvent, WalletEvent};
use crate::event_log::{self, RawEvent};
use crate::ids::{PaymentId, ReservationId, SeatId};

/// A broken rule and the events that show it.
#[derive(Debug, Clone)]
pub struct Violation {
    pub rule: &'static str,
    pub detail: String,
    pub events: Vec<String>,
}

/// The outcome of an audit.
#[derive(Debug, Default)]
pub struct AuditReport {
    pub events: u64,
    pub violations: Vec<Violation>,
}

/// Why the audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

#[derive(Clone)]
enum SeatState {
    Free,
    Held {
        reservation: ReservationId,
        until: DateTime<Utc>,
        at: String,
    },
    Sold {
        at: String,
    },
}

struct Payment {
    wallet: String,
    seat: SeatId,
    amount: i64,
    refunded: bool,
    at: String,
}

#[derive(Default)]
struct Auditor {
    active_limit: i64,
    report: AuditReport,
    streams: HashMap<(String, String), (i64, Vec<u8>)>,
    last_position: i64,
    seats: HashMap<String, SeatState>,
    sales: HashMap<PaymentId, (String, i64, String)>,
    wallets: HashMap<String, i64>,
    payments: HashMap<PaymentId, Payment>,
    tickets: HashMap<String, (String, bool)>,
    active: HashMap<String, i64>,
}

/// Audits the whole log; `active_limit` is the queue's active-token limit.
pub async fn audit(
    pool: &PgPool,
    active_limit: u32,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AuditReport, AuditError> {
    event_log::assign_positions(pool).await?;
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(pool)
        .await?;
    let mut auditor = Auditor {
        active_limit: i64::from(active_limit),
        ..Default::default()
    };
    let upto = event_log::last_position(pool).await?;
    let mut after = 0;
    loop {
        let batch = event_log::raw_batch(pool, after, upto).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for row in &batch {
            auditor.check_log(row);
            auditor.check_domain(row);
        }
        auditor.report.events += batch.len() as u64;
        progress(auditor.report.events, total as u64);
    }
    progress(auditor.report.events, total as u64);
    auditor.check_payments();
    auditor.check_read_models(pool).await?;
    Ok(auditor.report)
}

impl Auditor {
    fn violation(&mut self, rule: &'static str, detail: String, events: Vec<String>) {
        self.report.violations.push(Violation {
            rule,
            detail,
            events,
        });
    }

    fn check_log(&mut self, row: &RawEvent) {
        if row.position <= self.last_position {
            self.violation(
                "positions ascend",
                format!("position {} after {}", row.position, self.last_position),
                vec![row.label()],
            );
        }
        self.last_position = row.position;
        let key = (row.aggregate_type.clone(), row.aggregate_id.clone());
        let (last_sequence, previous_hash) =
            self.streams.get(&key).cloned().unwrap_or((0, Vec::new()));
        if row.sequence != last_sequence + 1 {
            let detail = format!(
                "sequence {} follows {}: events are missing or reordered",
                row.sequence, last_sequence
            );
            self.violation("stream sequences have no gaps", detail, vec![row.label()]);
        }
        let text = format!(
            "{}/{}/{}/{}/{}/{}/{}",
            row.aggregate_type,
            row.aggregate_id,
            row.sequence,
            row.event_type,
            row.event_version,
            row.payload,
            row.metadata
        );
        let mut hasher = Sha256::new();
        hasher.update(&previous_hash);
        hasher.update(text.as_bytes());
        let expected = hasher.finalize().to_vec();
        if row.hash.as_deref() != Some(expected.as_slice()) {
            let detail = "the stored hash does not match the event and its predecessor: edited, deleted or reordered".to_string();
            self.violation("hash chain intact", detail, vec![row.label()]);
        }
        // Continue the chain from the stored hash, so one edit is reported once.
        self.streams
            .insert(key, (row.sequence, row.hash.clone().unwrap_or(expected)));
    }

    fn check_domain(&mut self, row: &RawEvent) {
        let payload: serde_json::Value = match serde_json::from_str(&row.payload) {
            Ok(payload) => payload,
            Err(error) => {
                return self.violation("events deserialize", error.to_string(), vec![row.label()])
            }
        };
        let outcome = match row.aggregate_type.as_str() {
            "Seat" => serde_json::from_value(payload).map(|event| self.seat(row, event)),
            "Wallet" => serde_json::from_value(payload).map(|event| self.wallet(row, event)),
            "QueueTicket" => serde_json::from_value(payload).map(|event| self.ticket(row, event)),
            "Concert" => serde_json::from_value::<ConcertEvent>(payload).map(|_| ()),
            _ => {
                let detail = format!("unknown type {}", row.aggregate_type);
                self.violation("known aggregate types", detail, vec![row.label()]);
                Ok(())
            }
        };
        if let Err(error) = outcome {
            self.violation("events deserialize", error.to_string(), vec![row.label()]);
        }
    }

    fn seat(&mut self, row: &RawEvent, event: SeatEvent) {
        if let SeatEvent::SeatSold {
            payment_id, price, ..
        } = &event
        {
            let sale = (row.aggregate_id.clone(), *price, row.label());
            if let Some((_, _, earlier)) = self.sales.insert(*payment_id, sale) {
                let detail = format!("payment {payment_id} sold two seats");
                self.violation(
                    "a payment buys one seat",
                    detail,
                    vec![earlier, row.label()],
                );
            }
        }
        let state = self
            .seats
            .get(&row.aggregate_id)
            .cloned()
            .unwrap_or(SeatState::Free);
        let next =
            match (&state, event) {
                (
                    SeatState::Free,
                    SeatEvent::SeatHeld {
                        reservation_id,
                        until,
                        ..
                    },
                ) => SeatState::Held {
                    reservation: reservation_id,
                    until,
                    at: row.label(),
                },
                (
                    SeatState::Held {
                        reservation,
                        until,
                        at,
                    },
                    SeatEvent::HoldExpired {
                        reservation_id,
                        expired_at,
                    },
                ) if *reservation == reservation_id => {
                    if expired_at < *until {
                        let detail =
                            format!("hold expired at {expired_at}, before its deadline {until}");
                        self.violation(
                            "holds expire at or after their deadline",
                            detail,
                            vec![at.clone(), row.label()],
                        );
                    }
                    SeatState::Free
                }
                (
                    SeatState::Held { reservation, .. },
                    SeatEvent::HoldReleased { reservation_id },
                ) if *reservation == reservation_id => SeatState::Free,
                (
                    SeatState::Held { reservation, .. },
                    SeatEvent::SeatSold { reservation_id, .. },
                ) if *reservation == reservation_id => SeatState::Sold { at: row.label() },
                (SeatState::Sold { at }, _) => {
                    self.violation(
                        "a sold seat stays sold",
                        "event after the sale".into(),
                        vec![at.clone(), row.label()],
                    );
                    state.clone()
                }
                (SeatState::Held { at, .. }, _) => {
                    self.violation(
                        "one holder at a time",
                        "event does not fit the live hold".into(),
                        vec![at.clone(), row.label()],
                    );
                    state.clone()
                }
                (SeatState::Free, _) => {
                    self.violation(
                        "seat events follow a hold",
                        "event on a free seat".into(),
                        vec![row.label()],
                    );
                    state.clone()
                }
            };
        self.seats.insert(row.aggregate_id.clone(), next);
    }

    fn wallet(&mut self, row: &RawEvent, event: WalletEvent) {
        let balance = self.wallets.get(&row.aggregate_id).copied().unwrap_or(0);
        let (computed, stated) = match event {
            WalletEvent::Charged {
                amount,
                balance: stated,
                ..
            } => (balance + amount, stated),
            WalletEvent::Paid {
                payment_id,
                seat_id,
                amount,
                balance: stated,
                ..
            } => {
                let payment = Payment {
                    wallet: row.aggregate_id.clone(),
                    seat: seat_id,
                    amount,
                    refunded: false,
                    at: row.label(),
                };
                self.payments.insert(payment_id, payment);
                (balance - amount, stated)
            }
            WalletEvent::Refunded {
                payment_id,
                amount,
                balance: stated,
            } => {
                match self.payments.get_mut(&payment_id) {
                    Some(payment)
                        if payment.wallet == row.aggregate_id
                            && payment.amount == amount
                            && !payment.refunded =>
                    {
                        payment.refunded = true;
                    }
                    _ => self.violation(
                        "refunds return a payment once",
                        format!("refund of {payment_id}"),
                        vec![row.label()],
                    ),
                }
                (balance + amount, stated)
            }
        };
        if computed != stated {
            let detail =
                format!("charges - payments + refunds = {computed}, the event says {stated}");
            self.violation("balances add up", detail, vec![row.label()]);
        }
        if computed < 0 {
            self.violation(
                "balances never go negative",
                format!("balance {computed}"),
                vec![row.label()],
            );
        }
        self.wallets.insert(row.aggregate_id.clone(), computed);
    }

    fn ticket(&mut self, row: &RawEvent, event: QueueTicketEvent) {
        match event {
            QueueTicketEvent::QueueEntered { concert_id, .. } => {
                self.tickets
                    .insert(row.aggregate_id.clone(), (concert_id.to_string(), false));
            }
            QueueTicketEvent::TicketAdmitted { .. } => {
                let Some((concert, active)) = self.tickets.get_mut(&row.aggregate_id) else {
                    return self.violation(
                        "tickets are entered first",
                        "admission of an unknown ticket".into(),
                        vec![row.label()],
                    );
                };
                *active = true;
                let count = self.active.entry(concert.clone()).or_default();
                *count += 1;
                if *count > self.active_limit {
                    let detail =
                        format!("{count} active tokens, the limit is {}", self.active_limit);
                    self.violation(
                        "admissions stay within the active limit",
                        detail,
                        vec![row.label()],
                    );
                }
            }
            QueueTicketEvent::TicketExpired { .. } => {
                if let Some((concert, active)) = self.tickets.get_mut(&row.aggregate_id) {
                    if *active {
                        *active = false;
                        *self.active.entry(concert.clone()).or_default() -= 1;
                    }
                }
            }
        }
    }

    fn check_payments(&mut self) {
        let mut problems = Vec::new();
        for (payment_id, (seat, price, at)) in &self.sales {
            match self.payments.get(payment_id) {
                Some(payment)
                    if payment.amount == *price
                        && payment.seat.to_string() == *seat
                        && !payment.refunded => {}
                Some(payment) => problems.push((
                    "a sold seat has one completed payment at its price",
                    format!(
                        "payment {payment_id}: {} for seat {}, refunded {}",
                        payment.amount, payment.seat, payment.refunded
                    ),
                    vec![payment.at.clone(), at.clone()],
                )),
                None => problems.push((
                    "a sold seat has one completed payment at its price",
                    format!("seat {seat} sold for payment {payment_id}, which no wallet paid"),
                    vec![at.clone()],
                )),
            }
        }
        for (payment_id, payment) in &self.payments {
            if !payment.refunded && !self.sales.contains_key(payment_id) {
                problems.push((
                    "every payment sold a seat or was refunded",
                    format!(
                        "payment {payment_id} of {} neither sold a seat nor was refunded",
                        payment.amount
                    ),
                    vec![payment.at.clone()],
                ));
            }
        }
        for (rule, detail, events) in problems {
            self.violation(rule, detail, events);
        }
    }

    async fn check_read_models(&mut self, pool: &PgPool) -> Result<(), AuditError> {
        let balances: Vec<(uuid::Uuid, i64)> =
            sqlx::query_as("select user_id, balance from balances")
                .fetch_all(pool)
                .await?;
        let mut seen = HashSet::new();
        for (user, balance) in balances {
            let key = user.to_string();
            let expected = self.wallets.get(&key).copied().unwrap_or(0);
            if expected != balance {
                let detail = format!("balances says {balance} for {user}, the log says {expected}");
                self.violation(
                    "read models agree with the log",
                    detail,
                    vec![format!("Wallet/{user}")],
                );
            }
            seen.insert(key);
        }
        let missing: Vec<String> = self
            .wallets
            .keys()
            .filter(|wallet| !seen.contains(*wallet))
            .cloned()
            .collect();
        for wallet in missing {
            self.violation(
                "read models agree with the log",
                format!("no balance row for {wallet}"),
                vec![format!("Wallet/{wallet}")],
            );
        }
        let taken: Vec<(uuid::Uuid, String)> =
            sqlx::query_as("select seat_id, status from seats where status <> 'free'")
                .fetch_all(pool)
                .await?;
        let mut listed = HashSet::new();
        for (seat, status) in taken {
            let expected = match self.seats.get(&seat.to_string()) {
                Some(SeatState::Held { .. }) => "held",
                Some(SeatState::Sold { .. }) => "sold",
                _ => "free",
            };
            if expected != status {
                let detail = format!("seats says {status} for {seat}, the log says {expected}");
                self.violation(
                    "read models agree with the log",
                    detail,
                    vec![format!("Seat/{seat}")],
                );
            }
            listed.insert(seat.to_string());
        }
        let unlisted: Vec<String> = self
            .seats
            .iter()
            .filter(|(seat, state)| !matches!(state, SeatState::Free) && !listed.contains(*seat))
            .map(|(seat, _)| seat.clone())
            .collect();
        for seat in unlisted {
            self.violation(
                "read models agree with the log",
                format!("seat {seat} is listed as free"),
                vec![format!("Seat/{seat}")],
            );
        }
        Ok(())
    }
}
