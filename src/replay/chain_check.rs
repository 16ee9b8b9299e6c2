//! The hash chain, verified as the replay reads the log: a rebuild from an
//! edited log would otherwise pass it off as whole (a probe's replay of a
//! payload edited behind the service's back said only "read models rebuilt").

use std::collections::HashMap;

use crate::event_log::{chained_hash, RawEvent};

/// Each stream's last stored hash, and the events that do not match theirs.
#[derive(Debug, Default)]
pub(super) struct ChainCheck {
    tips: HashMap<(String, String), Vec<u8>>,
    pub breaks: u64,
    /// The position of the first event that does not match its hash.
    pub first_break: Option<i64>,
}

impl ChainCheck {
    pub(super) fn read(&mut self, row: &RawEvent) {
        let key = (row.aggregate_type.clone(), row.aggregate_id.clone());
        let tip = self.tips.entry(key).or_default();
        let expected = chained_hash(tip, row);
        if row.hash.as_deref() != Some(expected.as_slice()) {
            self.breaks += 1;
            self.first_break.get_or_insert(row.position);
        }
        // From the stored hash, as `concert audit` goes on: one edit counts once.
        *tip = row.hash.clone().unwrap_or(expected);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events of two streams, each with the hash the insert trigger stores.
    fn chained() -> Vec<RawEvent> {
        let mut tips: HashMap<String, Vec<u8>> = HashMap::new();
        (1..=4)
            .map(|position| {
                let stream = if position % 2 == 0 { "a" } else { "b" };
                let payload = serde_json::json!({ "Charged": { "amount": position } });
                let sequence = (position + 1) / 2;
                let mut row = RawEvent::from_logged(
                    position, "Wallet", stream, sequence, "Charged", &payload, None,
                );
                let tip = tips.entry(stream.to_string()).or_default();
                *tip = chained_hash(tip, &row);
                row.hash = Some(tip.clone());
                row
            })
            .collect()
    }

    fn check(rows: &[RawEvent]) -> ChainCheck {
        let mut chain = ChainCheck::default();
        rows.iter().for_each(|row| chain.read(row));
        chain
    }

    #[test]
    fn an_honest_log_has_no_break_and_an_edited_event_is_counted_once() {
        let rows = chained();
        let whole = check(&rows);
        assert_eq!((whole.breaks, whole.first_break), (0, None));

        // An amount edited under its old hash: that event alone.
        let mut edited = rows.clone();
        edited[2].payload = edited[2].payload.replace('3', "30");
        let broken = check(&edited);
        assert_eq!((broken.breaks, broken.first_break), (1, Some(3)));
    }
}
