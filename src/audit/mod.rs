//! `concert audit`: reads the whole log once, in commit order, and passes each
//! event through a set of checks, each a fold over the events it cares about:
//! the log itself (positions, sequences, hash chain, and a checkpoint taken
//! before), the catalogue, seats, wallets, payments, the queue and the
//! stored snapshots; then compares the read models with what the log says.
//! Memory grows with the number of aggregates, not events.

mod active_limits;
mod active_times;
mod admission_order;
mod catalogue;
mod catalogue_rows;
mod charge_ids;
mod checkpoint;
mod decode;
mod entry_numbers;
mod holders;
mod log_chain;
mod payments;
mod queue;
mod read_models;
mod sale_tickets;
mod seats;
mod served_ttls;
mod snapshots;
mod wallets;

#[cfg(test)]
mod fixtures;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sqlx::PgPool;

use crate::aggregates::{QueueTicketEvent, SeatEvent, WalletEvent};
use crate::event_log::{self, RawEvent};
pub use active_limits::ActiveLimits;
use catalogue::CatalogueCheck;
use charge_ids::ChargeIds;
use checkpoint::LogDigest;
pub use checkpoint::{holds_checkpoint, Checkpoint, RULE as CHECKPOINT_RULE};
use decode::Decoded;
use log_chain::LogChain;
use payments::PaymentCheck;
use queue::QueueCheck;
use sale_tickets::SaleTicketCheck;
use seats::SeatCheck;
use served_ttls::Lasting;
pub use served_ttls::{ServedTtls, Ttls};
use snapshots::SnapshotCheck;
use wallets::WalletCheck;

/// A broken rule and the events that show it.
#[derive(Debug, Clone)]
pub struct Violation {
    /// The rule, as `concert audit` prints it, e.g. `hash chain intact`.
    pub rule: &'static str,
    /// What the log shows against it.
    pub detail: String,
    /// The events that show it, as labelled by `RawEvent::label`, or the
    /// stream (`Wallet/<id>`) of a read-model row.
    pub events: Vec<String>,
}

impl Violation {
    fn new(rule: &'static str, detail: impl Into<String>, events: Vec<String>) -> Self {
        Self {
            rule,
            detail: detail.into(),
            events,
        }
    }
}

/// The outcome of an audit.
#[derive(Debug)]
pub struct AuditReport {
    /// How many events were read.
    pub events: u64,
    /// The log's digest at the last event read, for a later audit to be
    /// held to (`Checkpoint`).
    pub checkpoint: Checkpoint,
    /// Every violation, in the order the log shows them; the end-of-log
    /// payment rules and the read models come last.
    pub violations: Vec<Violation>,
    /// The TTLs holds and admissions were held to; `None` when no serve
    /// recorded any, and they were not.
    pub ttls: Option<ServedTtls>,
}

/// Why the audit could not run.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the audit was called off")]
    CalledOff,
}

/// Calls an audit off when dropped. A request's handler holds it while the
/// audit runs on a thread of its own, which dropping the request does not
/// stop: without it, each timed-out request left a whole audit running.
#[derive(Debug, Default)]
pub struct CallOff(Arc<AtomicBool>);

impl CallOff {
    /// The flag to give `audit_unless_called_off`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Drop for CallOff {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Audits the whole log; `limits` is the queue's active-token limit (over
/// the log, or one for all of it), and the log up to `against`, when given,
/// must be the one it was taken of.
pub async fn audit(
    pool: &PgPool,
    limits: impl Into<ActiveLimits>,
    against: Option<Checkpoint>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AuditReport, AuditError> {
    let never = AtomicBool::new(false);
    audit_unless_called_off(pool, limits.into(), against, progress, &never).await
}

/// `audit`, which stops with `AuditError::CalledOff` at the next batch once
/// `called_off` is set (by a dropped `CallOff`).
pub async fn audit_unless_called_off(
    pool: &PgPool,
    limits: ActiveLimits,
    against: Option<Checkpoint>,
    progress: &mut dyn FnMut(u64, u64),
    called_off: &AtomicBool,
) -> Result<AuditReport, AuditError> {
    let mut checks = Checks::new(limits);
    // Before the log's end is taken, so every event a snapshot covers is
    // walked.
    checks.snapshots = SnapshotCheck::load(pool).await?;
    event_log::assign_positions(pool).await?;
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(pool)
        .await?;
    let mut digest = LogDigest::new(against);
    let mut events = 0;
    let upto = event_log::last_position(pool).await?;
    // After the log's end is read: a serve that starts in between records
    // its TTLs before any hold or admission of its own, all of them past
    // the end if its record is not read.
    checks.ttls = crate::served_settings::served_ttls(pool).await?;
    // From below 1, so that a position set to 0 or less is walked and named.
    let mut after = i64::MIN;
    loop {
        if called_off.load(Ordering::Relaxed) {
            return Err(AuditError::CalledOff);
        }
        let batch = event_log::raw_batch(pool, after, upto).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        for row in &batch {
            digest.apply(row, &mut checks.found);
            checks.apply(row);
        }
        events += batch.len() as u64;
        progress(events, total as u64);
    }
    progress(events, total as u64);
    if called_off.load(Ordering::Relaxed) {
        return Err(AuditError::CalledOff);
    }
    let checkpoint = digest.finish(&mut checks.found);
    let ttls = checks.ttls.clone();
    let violations = checks.finish(pool, upto).await?;
    Ok(AuditReport {
        events,
        checkpoint,
        violations,
        ttls,
    })
}

/// Checks a history read from elsewhere (the audit API, `concert events
/// --json`) against the domain's rules: the catalogue, seats, wallets,
/// payments and the queue (a hold's concert and tickets must be in the
/// history given). The log chain, the events' versions, the charge ids made
/// twice and the read models are properties of the stored rows, which
/// `audit` checks on the database. Load tests and reliability tests judge what they did with
/// these same rules.
pub fn check_history(
    events: impl IntoIterator<Item = RawEvent>,
    active_limit: u32,
) -> Vec<Violation> {
    let mut checks = Checks::new(ActiveLimits::constant(active_limit));
    checks.log = None;
    checks.charge_ids = None;
    for row in events {
        checks.apply(&row);
    }
    checks.payments.finish(&mut checks.found);
    checks.queue.check_active_times(&mut checks.found);
    (checks.sale_tickets).finish(checks.queue.spent(), &mut checks.found);
    checks.found
}

/// Every check, and the violations in the order the log shows them.
struct Checks {
    log: Option<LogChain>,
    catalogue: CatalogueCheck,
    seats: SeatCheck,
    wallets: WalletCheck,
    /// `None` where no database can confirm a repeat (`check_history`).
    charge_ids: Option<ChargeIds>,
    payments: PaymentCheck,
    sale_tickets: SaleTicketCheck,
    queue: QueueCheck,
    snapshots: SnapshotCheck,
    /// The TTLs served over the log, when recorded.
    ttls: Option<ServedTtls>,
    found: Vec<Violation>,
}

impl Checks {
    fn new(limits: ActiveLimits) -> Self {
        Self {
            log: Some(LogChain::default()),
            catalogue: CatalogueCheck::default(),
            seats: SeatCheck::default(),
            wallets: WalletCheck::default(),
            charge_ids: Some(ChargeIds::default()),
            payments: PaymentCheck::default(),
            sale_tickets: SaleTicketCheck::default(),
            queue: QueueCheck::new(limits),
            snapshots: SnapshotCheck::default(),
            ttls: None,
            found: Vec::new(),
        }
    }

    fn apply(&mut self, row: &RawEvent) {
        let found = &mut self.found;
        if let Some(log) = &mut self.log {
            log.apply(row, found);
        }
        // Payments first: a sale or refund is matched before the seat or the
        // balance it changes, so a row's violations read in that order.
        match decode::decode(row) {
            Ok(Decoded::Seat(event)) => {
                let date = holders::check_hold(&self.catalogue, &self.queue, row, &event, found);
                if let (Some(ttls), SeatEvent::SeatHeld { held_at, until, .. }) =
                    (&self.ttls, &event)
                {
                    let date_begins = date.map(|date| date.starts_at);
                    ttls.check(Lasting::Hold { date_begins }, row, *held_at, *until, found);
                }
                let hold_until = self.seats.held_until(&row.aggregate_id);
                self.payments.apply_seat(row, &event, hold_until, found);
                let concert = self
                    .seats
                    .held_date(&row.aggregate_id)
                    .and_then(|date| self.catalogue.dates().get(&date))
                    .map(|date| date.concert);
                let owner = |ticket: &str| self.queue.owner(ticket);
                self.sale_tickets.apply(row, &event, concert, owner, found);
                self.seats.apply(row, event, found);
            }
            Ok(Decoded::Wallet(event)) => {
                if let (Some(ids), WalletEvent::Charged { charge_id, .. }) =
                    (&mut self.charge_ids, &event)
                {
                    ids.apply(*charge_id);
                }
                self.payments.apply_wallet(row, &event, found);
                self.snapshots.apply(row, &event, found);
                self.wallets.apply(row, event, found);
            }
            Ok(Decoded::QueueTicket(event)) => {
                if let (
                    Some(ttls),
                    QueueTicketEvent::TicketAdmitted {
                        admitted_at,
                        expires_at,
                    },
                ) = (&self.ttls, &event)
                {
                    ttls.check(Lasting::Admission, row, *admitted_at, *expires_at, found);
                }
                self.queue.apply(row, event, found)
            }
            Ok(Decoded::Concert(event)) => self.catalogue.apply(row, event, found),
            Err(violation) => found.push(violation),
        }
    }

    /// The rules that need the whole log, then the read models against the
    /// log up to `upto`, the last position walked.
    async fn finish(mut self, pool: &PgPool, upto: i64) -> Result<Vec<Violation>, AuditError> {
        if let Some(log) = self.log.take() {
            log.finish(&mut self.found);
        }
        self.payments.finish(&mut self.found);
        self.queue.finish(&mut self.found);
        (self.sale_tickets).finish(self.queue.spent(), &mut self.found);
        self.snapshots.finish(&mut self.found);
        if let Some(ids) = self.charge_ids.take() {
            ids.finish(pool, upto, &mut self.found).await?;
        }
        let rows = read_models::ReadModelRows::load(pool, upto).await?;
        rows.compare(&self.wallets, &self.seats, &self.queue, &mut self.found);
        let moved = |stream: &str| rows.moved(stream);
        let dates = self.catalogue.dates();
        rows.catalogue.compare(dates, moved, &mut self.found);
        Ok(self.found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::{row, rules, stored};

    #[test]
    fn a_row_is_checked_as_log_entry_then_payment_then_balance() {
        let refund = r#"{"Refunded":{"payment_id":"00000000-0000-0000-0000-000000000001","amount":100,"balance":0}}"#;
        let mut checks = Checks::new(1.into());

        checks.apply(&stored(row(1, "Wallet/w", 1, "Refunded", refund)));

        assert_eq!(
            rules(&checks.found),
            [
                "hash chain intact",
                "refunds return a payment once",
                "balances add up"
            ]
        );
    }

    #[test]
    fn a_history_from_elsewhere_is_judged_by_the_domain_rules_alone() {
        // No hash (a copy of the log carries none), and one payment refunded twice.
        let refund = r#"{"Refunded":{"payment_id":"00000000-0000-0000-0000-000000000001","amount":100,"balance":100}}"#;
        let refund_again = r#"{"Refunded":{"payment_id":"00000000-0000-0000-0000-000000000001","amount":100,"balance":200}}"#;
        let history = vec![
            row(1, "Wallet/w", 1, "Refunded", refund),
            row(2, "Wallet/w", 2, "Refunded", refund_again),
        ];

        let found = check_history(history, 1);

        let rules = rules(&found);
        assert!(!rules.contains(&"hash chain intact"), "{rules:?}");
        assert!(
            rules.contains(&"refunds return a payment once"),
            "{rules:?}"
        );
    }

    #[test]
    fn a_clean_history_from_elsewhere_has_no_violation() {
        assert!(check_history(Vec::new(), 1).is_empty());
    }

    #[test]
    fn an_unreadable_row_is_still_checked_as_a_log_entry() {
        let mut checks = Checks::new(1.into());

        checks.apply(&stored(row(1, "Seat/s", 1, "SeatHeld", "{broken")));

        assert_eq!(
            rules(&checks.found),
            ["hash chain intact", "events deserialize"]
        );
    }
}
