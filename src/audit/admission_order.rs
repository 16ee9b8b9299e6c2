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
    /// Waiting tickets an admission passed over. The round must admit them too.
    passed: HashMap<String, Passed>,
    /// Tickets excused from a round: their entry was still committing.
    excused: HashMap<String, DateTime<Utc>>,
    /// Tickets named already (once is enough).
    named: HashSet<String>,
}

/// A round that passed over a waiting ticket.
#[derive(Debug)]
struct Passed {
    round: DateTime<Utc>,
    /// The admission that passed it over: its label and position.
    by: String,
    at: i64,
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
        if let Some(passed) = self.passed.remove(id) {
            if passed.round != at {
                let detail = format!(
                    "passed over by a round at {}, admitted at {at}",
                    passed.round
                );
                self.name(id, detail, vec![passed.by, row.label()], found);
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
                    .is_some_and(|passed| passed.round == at)
                {
                    self.passed.remove(&earlier);
                }
                continue;
            }
            if self.excused.get(&earlier) == Some(&at) {
                continue;
            }
            match self.passed.get(&earlier) {
                Some(passed) if passed.round == at => {}
                Some(passed) => {
                    let detail = format!("passed over by rounds at {} and at {at}", passed.round);
                    let events = vec![passed.by.clone(), row.label()];
                    self.name(&earlier, detail, events, found);
                }
                None => {
                    let passed = Passed {
                        round: at,
                        by: row.label(),
                        at: row.position,
                    };
                    self.passed.insert(earlier, passed);
                }
            }
        }
    }

    /// The ticket of `row` left the line (expired), admitted or not.
    pub(super) fn left(&mut self, row: &RawEvent, found: &mut Vec<Violation>) {
        let id = &row.aggregate_id;
        if let Some(entry) = self.entries.get(id) {
            if let Some(line) = self.waiting.get_mut(&entry.concert) {
                line.remove(&entry.entry_no);
            }
        }
        self.excused.remove(id);
        // Waiting tickets do not leave: one passed over had no turn at all.
        if let Some(passed) = self.passed.remove(id) {
            let detail = format!(
                "passed over by a round at {}, then left the line",
                passed.round
            );
            self.name(id, detail, vec![passed.by, row.label()], found);
        }
    }

    /// The log has ended: a round is one commit, so a ticket it passed over
    /// and did not admit was left out.
    pub(super) fn finish(&mut self, found: &mut Vec<Violation>) {
        let mut passed: Vec<(String, Passed)> = self.passed.drain().collect();
        passed.sort_by_key(|(_, passed)| passed.at);
        for (id, passed) in passed {
            let round = passed.round;
            let detail =
                format!("passed over by a round at {round}, still waiting at the log's end");
            self.name(&id, detail, vec![passed.by], found);
        }
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
