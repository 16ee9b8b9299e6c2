//! Snapshots: the service decides a wallet's commands on its stored snapshot
//! and the events after it, so each snapshot must be the wallet its events
//! fold to at the snapshot's sequence. Only wallets get snapshots; one of
//! any other stream was not written by the service. Memory grows with the
//! number of snapshots: only snapshotted wallets are folded.

use std::collections::{BTreeMap, HashMap};

use cqrs_es::Aggregate;
use serde_json::Value;
use sqlx::PgPool;

use crate::aggregates::{Wallet, WalletEvent};
use crate::event_log::RawEvent;

use super::Violation;

const RULE: &str = "snapshots agree with the log";

/// A row of the `snapshots` table, its payload as stored.
#[derive(Debug, sqlx::FromRow)]
pub(super) struct StoredSnapshot {
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub last_sequence: i64,
    pub payload: String,
}

/// The snapshots still to compare, and the fold of each wallet that has one.
#[derive(Debug, Default)]
pub(super) struct SnapshotCheck {
    wallets: HashMap<String, Snapshotted>,
    /// Streams of a type the service keeps no snapshot of (`Type/id`).
    others: Vec<String>,
}

#[derive(Debug, Default)]
struct Snapshotted {
    fold: Wallet,
    /// Payloads by the sequence they were taken at, not yet reached.
    ahead: BTreeMap<i64, String>,
}

impl SnapshotCheck {
    /// Every snapshot stored. Read before the log's end is taken, so every
    /// event one covers is walked (one written later is checked next time).
    pub(super) async fn load(pool: &PgPool) -> sqlx::Result<Self> {
        let rows: Vec<StoredSnapshot> = sqlx::query_as(
            "select aggregate_type, aggregate_id, last_sequence, payload::text as payload
             from snapshots order by aggregate_type, aggregate_id, last_sequence",
        )
        .fetch_all(pool)
        .await?;
        Ok(Self::of(rows))
    }

    /// A check of the snapshots `rows`.
    pub(super) fn of(rows: impl IntoIterator<Item = StoredSnapshot>) -> Self {
        let mut check = Self::default();
        for row in rows {
            if row.aggregate_type == "Wallet" {
                let stream = check.wallets.entry(row.aggregate_id).or_default();
                stream.ahead.insert(row.last_sequence, row.payload);
            } else {
                let stream = format!("{}/{}", row.aggregate_type, row.aggregate_id);
                check.others.push(stream);
            }
        }
        check
    }

    /// Folds `event` into the wallet of `row` if it has a snapshot, and
    /// compares the snapshot taken at this event.
    pub(super) fn apply(
        &mut self,
        row: &RawEvent,
        event: &WalletEvent,
        found: &mut Vec<Violation>,
    ) {
        let Some(stream) = self.wallets.get_mut(&row.aggregate_id) else {
            return;
        };
        stream.fold.apply(event.clone());
        if let Some(payload) = stream.ahead.remove(&row.sequence) {
            if let Some(detail) = disagreement(&stream.fold, &payload) {
                let events = vec![format!("Wallet/{}", row.aggregate_id), row.label()];
                let detail = format!("the snapshot at sequence {}: {detail}", row.sequence);
                found.push(Violation::new(RULE, detail, events));
            }
        }
        if stream.ahead.is_empty() {
            self.wallets.remove(&row.aggregate_id);
        }
    }

    /// The log has ended: a snapshot it never reached, and one of a stream
    /// the service keeps none of, were not written by the service.
    pub(super) fn finish(&mut self, found: &mut Vec<Violation>) {
        let mut unreached: Vec<(&String, i64)> = self
            .wallets
            .iter()
            .flat_map(|(id, stream)| stream.ahead.keys().map(move |&sequence| (id, sequence)))
            .collect();
        unreached.sort();
        for (id, sequence) in unreached {
            found.push(Violation::new(
                RULE,
                format!("a snapshot at sequence {sequence}, past the stream's last event"),
                vec![format!("Wallet/{id}")],
            ));
        }
        for stream in self.others.drain(..) {
            found.push(Violation::new(
                RULE,
                "a snapshot of a stream the service keeps none of (only wallets have them)",
                vec![stream],
            ));
        }
    }
}

/// How the stored `payload` differs from `fold`, if the service would
/// decide on it. A snapshot it cannot read as a wallet (one taken before
/// the wallet's shape changed, as a store upgraded from an older release
/// keeps until the next snapshot replaces it) is passed over by the service,
/// which folds that wallet from its events (`pipeline::load`), so it is no
/// violation; one that is not JSON it can parse stops the wallet's commands.
fn disagreement(fold: &Wallet, payload: &str) -> Option<String> {
    let stored: Value = match serde_json::from_str(payload) {
        Ok(stored) => stored,
        Err(error) => return Some(format!("its payload does not parse: {error}")),
    };
    let Ok(read) = serde_json::from_value::<Wallet>(stored) else {
        return None;
    };
    // Compared as the service reads them: fields it does not know are not kept.
    let (stored, folded) = match (serde_json::to_value(&read), serde_json::to_value(fold)) {
        (Ok(Value::Object(stored)), Ok(Value::Object(folded))) => (stored, folded),
        _ => return Some("the wallets do not serialize as objects".to_string()),
    };
    if stored == folded {
        return None;
    }
    let mut fields: Vec<&str> = folded
        .keys()
        .chain(stored.keys())
        .filter(|field| stored.get(*field) != folded.get(*field))
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    fields.dedup();
    Some(format!(
        "{} differ from the wallet its events fold to",
        fields.join(", ")
    ))
}

#[cfg(test)]
mod tests;
