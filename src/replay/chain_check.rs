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
