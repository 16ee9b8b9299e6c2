//! The log itself: positions run 1, 2, 3… without a hole, each stream's sequences run 1, 2, 3…
//! without a gap, each row's hash chains over its stream's previous one,
//! as the insert trigger of `migrations/0003` computed it, and each event
//! is of the version the service writes and carries a time it can have been
//! recorded at.

use std::collections::HashMap;

use crate::aggregates::versions_written;
use crate::event_log::{chained_hash, RawEvent};

use super::Violation;

/// Positions, sequences and hashes seen so far.
#[derive(Debug, Default)]
pub(super) struct LogChain {
    last_position: i64,
    streams: HashMap<StreamKey, StreamTip>,
    /// Rows walked before the event their hash chains over (by stream and
    /// that event's sequence): checked when it comes, named at the end if
    /// it never does. Only a log out of order has any.
    waiting: HashMap<(StreamKey, i64), Vec<RawEvent>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct StreamKey {
    aggregate_type: String,
    aggregate_id: String,
}

impl StreamKey {
    fn of(row: &RawEvent) -> Self {
        Self {
            aggregate_type: row.aggregate_type.clone(),
            aggregate_id: row.aggregate_id.clone(),
        }
    }
}

/// The end of one stream: the sequence of its last row walked, and the two
/// highest sequences walked with the hashes their successors chain from.
/// Checked in position order against the row walked before it, an event
/// moved one place in its stream broke the chain of the events around it,
/// whose hashes were right.
#[derive(Debug, Default)]
struct StreamTip {
    sequence: i64,
    highest: Option<Link>,
    below: Option<Link>,
}

#[derive(Debug)]
struct Link {
    sequence: i64,
    hash: Vec<u8>,
}

impl StreamTip {
    /// The hash the event of `sequence` chains over, when at hand.
    fn hash_before(&self, sequence: i64) -> Option<&[u8]> {
        if sequence == 1 {
            return Some(&[]);
        }
        [&self.highest, &self.below]
            .into_iter()
            .flatten()
            .find(|link| link.sequence == sequence - 1)
            .map(|link| link.hash.as_slice())
    }

    fn walked(&mut self, sequence: i64, hash: Vec<u8>) {
        let link = Link { sequence, hash };
        match &self.highest {
            Some(top) if top.sequence > sequence => {
                if self
                    .below
                    .as_ref()
                    .is_none_or(|below| below.sequence < sequence)
                {
                    self.below = Some(link);
                }
            }
            // The same sequence again (a duplicate) keeps what it chains over.
            Some(top) if top.sequence == sequence => {}
            _ => self.below = self.highest.replace(link),
        }
    }
}

impl LogChain {
    /// Checks one row against the rows before it.
    pub(super) fn apply(&mut self, row: &RawEvent, found: &mut Vec<Violation>) {
        if row.position < 1 {
            found.push(Violation::new(
                "positions ascend",
                format!("position {}: positions start at 1", row.position),
                vec![row.label()],
            ));
        } else if row.position <= self.last_position {
            found.push(Violation::new(
                "positions ascend",
                format!("position {} after {}", row.position, self.last_position),
                vec![row.label()],
            ));
        } else if row.position > self.last_position + 1 {
            // Handed out one after another: a hole is an event deleted, or moved.
            let detail = format!(
                "position {} follows {}: the events in between are missing",
                row.position, self.last_position
            );
            found.push(Violation::new(
                "positions have no holes",
                detail,
                vec![row.label()],
            ));
        }
        self.last_position = self.last_position.max(row.position);
        let tip = self.streams.entry(StreamKey::of(row)).or_default();
        if row.sequence != tip.sequence + 1 {
            let detail = format!(
                "sequence {} follows {}: events are missing or reordered",
                row.sequence, tip.sequence
            );
            found.push(Violation::new(
                "stream sequences have no gaps",
                detail,
                vec![row.label()],
            ));
        }
        tip.sequence = row.sequence;
        // Continue the chain from the stored hash, so one edit is reported once.
        let chains_from = match tip.hash_before(row.sequence) {
            Some(previous) => check_link(previous, row, found),
            None => {
                let waits_for = (StreamKey::of(row), row.sequence - 1);
                self.waiting.entry(waits_for).or_default().push(row.clone());
                row.hash.clone().unwrap_or_default()
            }
        };
        tip.walked(row.sequence, chains_from.clone());
        if !self.waiting.is_empty() {
            self.check_those_waiting_for(row, chains_from, found);
        }
        if row.recorded_at.is_none() {
            let detail = "recorded_at is no time the database stamps (infinity, or a year past 262,142): edited";
            found.push(Violation::new(
                "events carry the time they were recorded",
                detail,
                vec![row.label()],
            ));
        }
        // Any other version is not one the service wrote, and its payload
        // would be read as one that it did.
        let written = versions_written(&row.event_type);
        if !written.contains(&row.event_version.as_str()) {
            let detail = format!(
                "version {:?}; the service writes {} of {}",
                row.event_version,
                written.join(" or "),
                row.event_type
            );
            found.push(Violation::new(
                "events are of a version the service writes",
                detail,
                vec![row.label()],
            ));
        }
    }

    /// Checks the rows walked before `row` that chain over it, and those
    /// that chain over them.
    fn check_those_waiting_for(
        &mut self,
        row: &RawEvent,
        hash: Vec<u8>,
        found: &mut Vec<Violation>,
    ) {
        let key = StreamKey::of(row);
        let mut arrived = vec![(row.sequence, hash)];
        while let Some((sequence, hash)) = arrived.pop() {
            let waited = self.waiting.remove(&(key.clone(), sequence));
            for waited in waited.into_iter().flatten() {
                let chains_from = check_link(&hash, &waited, found);
                arrived.push((waited.sequence, chains_from));
            }
        }
    }

    /// Names the rows whose predecessor in their stream never came in
    /// reach: deleted, or moved far in the log.
    pub(super) fn finish(self, found: &mut Vec<Violation>) {
        let mut waiting: Vec<RawEvent> = self.waiting.into_values().flatten().collect();
        waiting.sort_by_key(|row| row.position);
        for row in waiting {
            let detail = format!(
                "checked against sequence {} of its stream, which is missing or too far from it \
                 in the log to check: deleted, or one of the two moved",
                row.sequence - 1
            );
            found.push(Violation::new(
                "hash chain intact",
                detail,
                vec![row.label()],
            ));
        }
    }
}

/// Checks that `row`'s stored hash chains over `previous`; returns the hash
/// its successor chains from.
fn check_link(previous: &[u8], row: &RawEvent, found: &mut Vec<Violation>) -> Vec<u8> {
    let expected = chained_hash(previous, row);
    if row.hash.as_deref() != Some(expected.as_slice()) {
        let detail = "the stored hash does not match the event and its predecessor: edited, deleted or reordered";
        found.push(Violation::new(
            "hash chain intact",
            detail,
            vec![row.label()],
        ));
    }
    row.hash.clone().unwrap_or(expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixtures::{row, rules, stored};

    #[test]
    fn a_sound_log_has_no_violation() {
        let log = chain(vec![
            event(1, "Wallet/a", 1, "5"),
            event(2, "Wallet/b", 1, "7"),
            event(3, "Wallet/a", 2, "6"),
        ]);

        assert!(check(&log).is_empty());
    }

    #[test]
    fn a_position_that_does_not_ascend_is_named() {
        let log = chain(vec![
            event(1, "Wallet/a", 1, "5"),
            event(1, "Wallet/b", 1, "7"),
        ]);

        let found = check(&log);

        assert_eq!(rules(&found), ["positions ascend"]);
        assert_eq!(found[0].detail, "position 1 after 1");
    }

    #[test]
    fn a_missing_sequence_is_named() {
        let mut log = chain(vec![
            event(1, "Wallet/a", 1, "5"),
            event(2, "Wallet/a", 2, "6"),
            event(3, "Wallet/a", 3, "7"),
        ]);
        log.remove(1);

        let found = check(&log);

        // Position 2 is gone from the log, and the hash of 3 chains over it.
        assert_eq!(
            rules(&found),
            [
                "positions have no holes",
                "stream sequences have no gaps",
                "hash chain intact"
            ]
        );
        assert_eq!(
            found[0].detail,
            "position 3 follows 1: the events in between are missing"
        );
        assert_eq!(
            found[1].detail,
            "sequence 3 follows 1: events are missing or reordered"
        );
        assert_eq!(found[1].events, ["#3 Wallet/a seq 3 Charged"]);
    }

    #[test]
    fn the_deleted_tail_of_a_stream_leaves_a_hole_in_the_positions() {
        let mut log = chain(vec![
            event(1, "Wallet/a", 1, "5"),
            event(2, "Wallet/a", 2, "6"),
            event(3, "Wallet/b", 1, "7"),
        ]);
        log.remove(1);

        let found = check(&log);

        assert_eq!(rules(&found), ["positions have no holes"]);
        assert_eq!(found[0].events, ["#3 Wallet/b seq 1 Charged"]);
    }

    #[test]
    fn a_position_below_one_is_named() {
        let log = chain(vec![
            event(0, "Wallet/a", 1, "5"),
            event(1, "Wallet/b", 1, "7"),
        ]);

        let found = check(&log);

        assert_eq!(rules(&found), ["positions ascend"]);
        assert_eq!(found[0].events, ["#0 Wallet/a seq 1 Charged"]);
    }

    #[test]
    fn an_edited_payload_breaks_the_chain_once() {
        let mut log = chain(vec![
            event(1, "Wallet/a", 1, "5"),
            event(2, "Wallet/a", 2, "6"),
            event(3, "Wallet/a", 3, "7"),
        ]);
        log[1].payload = "600".to_string();

        let found = check(&log);

        assert_eq!(rules(&found), ["hash chain intact"]);
        assert_eq!(found[0].events, ["#2 Wallet/a seq 2 Charged"]);
    }

    #[test]
    fn a_row_without_a_hash_breaks_the_chain() {
        let mut log = chain(vec![event(1, "Wallet/a", 1, "5")]);
        log[0].hash = None;

        assert_eq!(rules(&check(&log)), ["hash chain intact"]);
    }

    #[test]
    fn an_event_whose_time_could_not_be_read_is_named() {
        let mut log = chain(vec![event(1, "Wallet/a", 1, "5")]);
        log[0].recorded_at = None;

        assert_eq!(
            rules(&check(&log)),
            ["events carry the time they were recorded"]
        );
    }

    #[test]
    fn an_event_of_another_version_is_named_though_its_hash_chains() {
        let mut other = event(2, "Wallet/a", 2, "6");
        other.event_version = "2".to_string();
        let log = chain(vec![event(1, "Wallet/a", 1, "5"), other]);

        let found = check(&log);

        assert_eq!(
            rules(&found),
            ["events are of a version the service writes"]
        );
        assert_eq!(
            found[0].detail,
            "version \"2\"; the service writes 1 of Charged"
        );
    }

    #[test]
    fn a_sale_is_of_version_1_or_2_and_of_no_other() {
        let mut sales = Vec::new();
        for (sequence, version) in [(1, "1"), (2, "2"), (3, "3")] {
            let mut sale = event(sequence, "Seat/s", sequence, "{}");
            sale.event_type = "SeatSold".to_string();
            sale.event_version = version.to_string();
            sales.push(sale);
        }

        let found = check(&chain(sales));

        assert_eq!(
            rules(&found),
            ["events are of a version the service writes"]
        );
        assert_eq!(
            found[0].detail,
            "version \"3\"; the service writes 1 or 2 of SeatSold"
        );
    }

    fn event(position: i64, stream: &str, sequence: i64, payload: &str) -> RawEvent {
        stored(row(position, stream, sequence, "Charged", payload))
    }

    /// Gives each row the hash the insert trigger would have stored.
    fn chain(mut rows: Vec<RawEvent>) -> Vec<RawEvent> {
        let mut tips: HashMap<String, Vec<u8>> = HashMap::new();
        for row in &mut rows {
            let tip = tips.entry(row.aggregate_id.clone()).or_default();
            *tip = chained_hash(tip, row);
            row.hash = Some(tip.clone());
        }
        rows
    }

    fn check(rows: &[RawEvent]) -> Vec<Violation> {
        let mut chain = LogChain::default();
        let mut found = Vec::new();
        for row in rows {
            chain.apply(row, &mut found);
        }
        chain.finish(&mut found);
        found
    }

    /// `rows` chained in order, then put at the positions given.
    fn moved(rows: Vec<RawEvent>, positions: &[i64]) -> Vec<RawEvent> {
        let mut rows = chain(rows);
        for (row, position) in rows.iter_mut().zip(positions) {
            row.position = *position;
        }
        rows.sort_by_key(|row| row.position);
        rows
    }

    #[test]
    fn an_event_moved_in_the_log_breaks_no_chain_of_the_events_around_it() {
        // Sequence 2 moved after 3, and, in another stream, 1 after 2.
        let log = moved(
            vec![
                event(1, "Wallet/a", 1, "5"),
                event(2, "Wallet/a", 2, "6"),
                event(3, "Wallet/a", 3, "7"),
                event(4, "Wallet/b", 1, "8"),
                event(5, "Wallet/b", 2, "9"),
            ],
            &[1, 3, 2, 5, 4],
        );

        let found = check(&log);

        assert_eq!(
            rules(&found),
            [
                "stream sequences have no gaps",
                "stream sequences have no gaps",
                "stream sequences have no gaps",
                "stream sequences have no gaps"
            ],
            "{found:#?}"
        );
    }

    #[test]
    fn an_event_moved_far_in_its_stream_is_named_at_the_end() {
        let log = moved(
            vec![
                event(1, "Wallet/a", 1, "5"),
                event(2, "Wallet/a", 2, "6"),
                event(3, "Wallet/a", 3, "7"),
                event(4, "Wallet/a", 4, "8"),
            ],
            &[1, 4, 2, 3],
        );

        let found = check(&log);

        // Sequence 2, three places on, is out of reach of sequence 1; 3 is
        // checked against it once it comes.
        let chain_breaks: Vec<_> = (found.iter())
            .filter(|violation| violation.rule == "hash chain intact")
            .collect();
        assert_eq!(chain_breaks.len(), 1, "{found:#?}");
        assert_eq!(chain_breaks[0].events, ["#4 Wallet/a seq 2 Charged"]);
        assert!(chain_breaks[0].detail.contains("sequence 1 of its stream"));
    }

    #[test]
    fn a_position_below_one_is_named_without_a_hole_after_it() {
        let log = moved(
            vec![event(1, "Wallet/a", 1, "5"), event(2, "Wallet/b", 1, "7")],
            &[-5, 1],
        );

        let found = check(&log);

        assert_eq!(rules(&found), ["positions ascend"]);
        assert_eq!(found[0].detail, "position -5: positions start at 1");
    }
}
