//! Checkpoints: one digest of the whole log up to a position, for auditors
//! to keep outside the database. The hash chain of each stream is computed
//! in the database and has no key, so a writer who recomputes it, or cuts
//! off the newest events, leaves every chain intact; a checkpoint kept
//! elsewhere still tells that the log up to it is no longer what it was.
//!
//! The digest runs over the events in position order:
//! `digest(0)` is 32 zero bytes and `digest(p)` is SHA-256 of `digest(p-1)`,
//! the position (8 bytes, big-endian), the event's stored hash (32 bytes;
//! 32 zero bytes if it has none) and its `recorded_at` in microseconds since
//! the Unix epoch (8 bytes, big-endian; 0 if it has none). It thereby covers each event's content, its stream and
//! sequence (through the stored hash), its place in the global order and
//! the time it was recorded.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::event_log::RawEvent;

use super::Violation;

/// The log's digest at a position, written `POSITION:HEX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: i64,
    pub digest: [u8; 32],
}

impl Checkpoint {
    /// The checkpoint of an empty log.
    const START: Checkpoint = Checkpoint {
        position: 0,
        digest: [0; 32],
    };

    /// Reads `POSITION:HEX` (64 hex digits), as `concert audit` prints it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let wrong = || format!("a checkpoint is POSITION:DIGEST (64 hex digits), not {text:?}");
        let (position, digest) = text.trim().split_once(':').ok_or_else(wrong)?;
        let position: i64 = position.parse().map_err(|_| wrong())?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(digest, &mut bytes).map_err(|_| wrong())?;
        let checkpoint = Self {
            position,
            digest: bytes,
        };
        // An empty store's audit prints the empty log's checkpoint, and a
        // monitor that keeps the last one passes it back: every log extends it.
        if position < 1 && checkpoint != Self::START {
            return Err(format!(
                "a checkpoint's position is 1 or more (or it is the empty log's, {}), not {position}",
                Self::START
            ));
        }
        Ok(checkpoint)
    }

    pub fn digest_hex(&self) -> String {
        hex::encode(self.digest)
    }

    /// The digest one event further.
    fn extended(&self, row: &RawEvent) -> Checkpoint {
        let mut hasher = Sha256::new();
        hasher.update(self.digest);
        hasher.update(row.position.to_be_bytes());
        // A row without a hash (itself a broken chain) counts as 32 zero bytes.
        hasher.update(row.hash.as_deref().unwrap_or(&[0; 32]));
        let recorded_us = row.recorded_at.map_or(0, |at| at.timestamp_micros());
        hasher.update(recorded_us.to_be_bytes());
        Checkpoint {
            position: row.position,
            digest: hasher.finalize().into(),
        }
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.position, self.digest_hex())
    }
}

/// The rule a log that differs from its checkpoint breaks.
pub const RULE: &str = "log matches the checkpoint";

/// The rules that name an event no longer as it was written: the
/// checkpoint's digest covers the stored hashes, not the events, so an
/// event edited under its old hash leaves the digest as it was.
const EDITED: [&str; 4] = [
    "hash chain intact",
    "stream sequences have no gaps",
    "positions ascend",
    "positions have no holes",
];

/// Whether `violations` leave the log up to `position` the one its
/// checkpoint was taken of: its digest matched, and no event up to there
/// was edited, moved or deleted under hashes kept as they were (a
/// payload edited so was said to be "the one checkpointed").
pub fn holds_checkpoint(violations: &[super::Violation], position: i64) -> bool {
    let at_or_before = |label: &String| {
        let number = label
            .strip_prefix('#')
            .and_then(|rest| rest.split(' ').next());
        number
            .and_then(|number| number.parse::<i64>().ok())
            .is_some_and(|at| at <= position)
    };
    !violations.iter().any(|violation| {
        violation.rule == RULE
            || (EDITED.contains(&violation.rule) && violation.events.iter().any(at_or_before))
    })
}

/// The digest of the events walked so far, and the checkpoint they are held to.
#[derive(Debug)]
pub(super) struct LogDigest {
    current: Checkpoint,
    against: Option<Checkpoint>,
}

impl LogDigest {
    pub(super) fn new(against: Option<Checkpoint>) -> Self {
        Self {
            current: Checkpoint::START,
            // The empty log's checkpoint holds every log to nothing.
            against: against.filter(|against| *against != Checkpoint::START),
        }
    }

    pub(super) fn apply(&mut self, row: &RawEvent, found: &mut Vec<Violation>) {
        let next = self.current.extended(row);
        if let Some(against) = self.against {
            // The checkpoint's own position is compared once reached; a log
            // that skips it (the event is gone) is compared at the next one.
            if row.position >= against.position {
                self.against = None;
                let same = row.position == against.position && next.digest == against.digest;
                if !same {
                    // A digest cannot tell which event changed: naming the
                    // one it was compared at sent auditors to an event
                    // nobody had touched.
                    let gone = if row.position == against.position {
                        String::new()
                    } else {
                        format!(" (position {} itself is gone)", against.position)
                    };
                    found.push(Violation::new(
                        RULE,
                        format!(
                            "the events at positions 1 to {}{gone} are not those the checkpoint was taken of: \
                             some were edited, deleted, reordered, re-timed or rewritten with a recomputed \
                             hash chain; a digest cannot tell which (or the checkpoint given is mistyped, \
                             or of another store)",
                            against.position
                        ),
                        Vec::new(),
                    ));
                }
            }
        }
        self.current = next;
    }

    /// The checkpoint at the last event walked; names a log that ended
    /// before the checkpoint it was held to.
    pub(super) fn finish(self, found: &mut Vec<Violation>) -> Checkpoint {
        if let Some(against) = self.against {
            found.push(Violation::new(
                RULE,
                format!(
                    "the log ends at position {}, before the checkpoint's position {}: events were cut off \
                     (or the checkpoint given is mistyped, or of another store)",
                    self.current.position, against.position
                ),
                Vec::new(),
            ));
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::fixtures::{row, rules};

    fn log() -> Vec<RawEvent> {
        (1..=4)
            .map(|position| {
                let mut event = row(position, "Wallet/a", position, "Charged", "5");
                event.hash = Some(vec![position as u8; 32]);
                event
            })
            .collect()
    }

    fn walk(rows: &[RawEvent], against: Option<Checkpoint>) -> (Checkpoint, Vec<Violation>) {
        let mut digest = LogDigest::new(against);
        let mut found = Vec::new();
        for row in rows {
            digest.apply(row, &mut found);
        }
        (digest.finish(&mut found), found)
    }

    fn checkpoint_at(rows: &[RawEvent], position: usize) -> Checkpoint {
        walk(&rows[..position], None).0
    }

    #[test]
    fn the_unchanged_log_matches_a_checkpoint_taken_earlier() {
        let rows = log();
        let (end, found) = walk(&rows, Some(checkpoint_at(&rows, 2)));
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(end.position, 4);
    }

    #[test]
    fn the_empty_logs_checkpoint_is_taken_back_and_every_log_extends_it() {
        let empty = Checkpoint::parse(&walk(&[], None).0.to_string()).expect("the empty log's");
        assert!(walk(&log(), Some(empty)).1.is_empty());
        assert!(Checkpoint::parse(&format!("0:{}", "1".repeat(64))).is_err());
        assert!(Checkpoint::parse(&format!("-1:{}", "0".repeat(64))).is_err());
    }

    #[test]
    fn a_rewritten_hash_before_the_checkpoint_is_named() {
        let mut rows = log();
        let checkpoint = checkpoint_at(&rows, 3);
        rows[1].hash = Some(vec![9; 32]);
        let (_, found) = walk(&rows, Some(checkpoint));
        assert_eq!(rules(&found), [RULE]);
        assert!(found[0].events.is_empty(), "{found:?}");
        assert!(found[0]
            .detail
            .starts_with("the events at positions 1 to 3 are not"));
    }

    #[test]
    fn a_changed_recorded_time_is_named() {
        let mut rows = log();
        let checkpoint = checkpoint_at(&rows, 2);
        rows[0].recorded_at = chrono::DateTime::from_timestamp(5, 0);
        assert_eq!(rules(&walk(&rows, Some(checkpoint)).1), [RULE]);
    }

    #[test]
    fn a_deleted_checkpoint_event_is_named_at_the_next() {
        let mut rows = log();
        let checkpoint = checkpoint_at(&rows, 2);
        rows.remove(1);
        let (_, found) = walk(&rows, Some(checkpoint));
        assert_eq!(rules(&found), [RULE]);
        assert!(
            found[0]
                .detail
                .contains("1 to 2 (position 2 itself is gone)"),
            "{}",
            found[0].detail
        );
    }

    #[test]
    fn a_log_cut_off_before_the_checkpoint_is_named() {
        let rows = log();
        let checkpoint = checkpoint_at(&rows, 4);
        let (end, found) = walk(&rows[..3], Some(checkpoint));
        assert_eq!(rules(&found), [RULE]);
        assert!(
            found[0].detail.contains("ends at position 3"),
            "{}",
            found[0].detail
        );
        assert_eq!(end.position, 3);
    }

    #[test]
    fn a_checkpoint_reads_back_as_it_is_written() {
        let checkpoint = checkpoint_at(&log(), 3);
        assert_eq!(Checkpoint::parse(&checkpoint.to_string()), Ok(checkpoint));
        for wrong in ["", "3", "3:zz", "x:00"] {
            assert!(Checkpoint::parse(wrong).is_err(), "{wrong}");
        }
    }
}
