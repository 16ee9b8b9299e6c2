//! Admission in entry order: the scheduler admits a concert's oldest waiting
//! tickets first, a round at a time, each round in one commit and at one
//! time (`admitted_at`). An admission may pass over a waiting ticket with a
//! lower entry number only to admit it in the same round, or when that
//! ticket's entry was still committing as the round looked: its entry comes
//! later in the log than that of a ticket of the round that had waited the
//! scheduler's `UNCOMMITTED_AHEAD_WAIT` for it.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::event_log::RawEvent;
use crate::ids::ConcertId;
use crate::projections::admissions::UNCOMMITTED_AHEAD_WAIT;

use super::Violation;

const RULE: &str = "admissions follow entry order";

/// The waiting line of each concert, and who was passed over in it.
#[derive(Debug, Default)]
pub(super) struct AdmissionOrder {
    entries: HashMap<String, Entry>,
    /// Waiting tickets of each concert by entry number.
    waiting: HashMap<ConcertId, BTreeMap<i64, String>>,
    /// Waiting tickets an admission passed over: the round's time, and that
    /// admission's label. The round must admit them too.
    passed: HashMap<String, (DateTime<Utc>, String)>,
    /// Tickets excused from a round: their entry was still committing.
    excused: HashMap<String, DateTime<Utc>>,
    /// Tickets named already (once is enough).
    named: HashSet<String>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    concert: ConcertId,
    entry_no: i64,
    entered_at: DateTime<Utc>,
    /// The entry's place in the log.
    position: i64,
}

impl AdmissionOrder {
    /// The ticket of `row` entered `concert`'s line as number `entry_no`.
    pub(super) fn entered(
        &mut self,
        row: &RawEvent,
        concert: ConcertId,
        entry_no: i64,
        entered_at: DateTime<Utc>,
    ) {
        let entry = Entry {
            concert,
            entry_no,
            entered_at,
            position: row.position,
        };
        self.entries.insert(row.aggregate_id.clone(), entry);
        let line = self.waiting.entry(concert).or_default();
        line.insert(entry_no, row.aggregate_id.clone());
    }

    /// The waiting ticket of `row` was admitted at `at`.
    pub(super) fn admitted(
        &mut self,
        row: &RawEvent,
        at: DateTime<Utc>,
        found: &mut Vec<Violation>,
    ) {
        let id = &row.aggregate_id;
        let Some(&entry) = self.entries.get(id) else {
            return;
        };
        self.excused.remove(id);
        let line = self.waiting.entry(entry.concert).or_default();
        line.remove(&entry.entry_no);
        let ahead: Vec<String> = line
            .range(..entry.entry_no)
            .map(|(_, id)| id.clone())
            .collect();
        if let Some((round, passed_by)) = self.passed.remove(id) {
            if round != at {
                let detail = format!("passed over by a round at {round}, admitted at {at}");
                self.name(id, detail, vec![passed_by, row.label()], found);
            }
        }
        let waited_enough = at - entry.entered_at >= UNCOMMITTED_AHEAD_WAIT;
        for earlier in ahead {
            let committing = waited_enough && self.entries[&earlier].position > entry.position;
            if committing {
                // Its entry may not have committed when the round looked.
                self.excused.insert(earlier.clone(), at);
                if self
                    .passed
                    .get(&earlier)
                    .is_some_and(|(round, _)| *round == at)
                {
                    self.passed.remove(&earlier);
                }
                continue;
            }
            if self.excused.get(&earlier) == Some(&at) {
                continue;
            }
            match self.passed.get(&earlier) {
                Some((round, _)) if *round == at => {}
                Some((round, passed_by)) => {
                    let detail = format!("passed over by rounds at {round} and at {at}");
                    let events = vec![passed_by.clone(), row.label()];
                    self.name(&earlier, detail, events, found);
                }
                None => {
                    self.passed.insert(earlier, (at, row.label()));
                }
            }
        }
    }

    /// The ticket `id` left the line (expired), admitted or not.
    pub(super) fn left(&mut self, id: &str) {
        if let Some(entry) = self.entries.get(id) {
            if let Some(line) = self.waiting.get_mut(&entry.concert) {
                line.remove(&entry.entry_no);
            }
        }
        self.passed.remove(id);
        self.excused.remove(id);
    }

    fn name(&mut self, id: &str, detail: String, events: Vec<String>, found: &mut Vec<Violation>) {
        if self.named.insert(id.to_string()) {
            let entry_no = self.entries[id].entry_no;
            let detail = format!(
                "ticket {id} (entry {entry_no}) waited while a later entry was admitted: {detail}"
            );
            found.push(Violation::new(RULE, detail, events));
        }
    }
}
