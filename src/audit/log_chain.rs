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
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct StreamKey {
    aggregate_type: String,
    aggregate_id: String,
}

/// The end of one stream: its last sequence and the hash the next event chains from.
#[derive(Debug, Default)]
struct StreamTip {
    sequence: i64,
    hash: Vec<u8>,
}

impl LogChain {
    /// Checks one row against the rows before it.
    pub(super) fn apply(&mut self, row: &RawEvent, found: &mut Vec<Violation>) {
        if row.position <= self.last_position {
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
        self.last_position = row.position;
        let key = StreamKey {
            aggregate_type: row.aggregate_type.clone(),
            aggregate_id: row.aggregate_id.clone(),
        };
        let tip = self.streams.entry(key).or_default();
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
        let expected = chained_hash(&tip.hash, row);
        if row.hash.as_deref() != Some(expected.as_slice()) {
            let detail = "the stored hash does not match the event and its predecessor: edited, deleted or reordered";
            found.push(Violation::new(
                "hash chain intact",
                detail,
                vec![row.label()],
            ));
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
        // Continue the chain from the stored hash, so one edit is reported once.
        *tip = StreamTip {
            sequence: row.sequence,
            hash: row.hash.clone().unwrap_or(expected),
        };
    }
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
        found
    }
}
