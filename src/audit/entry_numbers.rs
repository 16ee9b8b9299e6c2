//! Entry numbers: a concert hands each out once (its `queue_lines` counter
//! only counts up, and a number released as unused is never handed out
//! again), and admission follows them. Two entries of one concert with the
//! same number mean the counter was set back.

use std::collections::HashMap;

use crate::event_log::RawEvent;
use crate::ids::ConcertId;

use super::Violation;

const RULE: &str = "entry numbers are used once a concert";

/// The entry that first used each number, by concert and number.
#[derive(Debug, Default)]
pub(super) struct EntryNumbers {
    first: HashMap<(ConcertId, i64), String>,
}

impl EntryNumbers {
    /// The ticket of `row` entered `concert`'s line as number `entry_no`.
    pub(super) fn entered(
        &mut self,
        row: &RawEvent,
        concert: ConcertId,
        entry_no: i64,
        found: &mut Vec<Violation>,
    ) {
        match self.first.get(&(concert, entry_no)) {
            Some(first) => found.push(Violation::new(
                RULE,
                format!("entry number {entry_no} of concert {concert} is used again"),
                vec![first.clone(), row.label()],
            )),
            None => {
                self.first.insert((concert, entry_no), row.label());
            }
        }
    }
}
