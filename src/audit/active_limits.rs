//! The queue's active limit over the log: the service records each limit it
//! is served with and the position it started at (`served_limits`), and an
//! admission is held to the limit of its time.

use std::fmt;

/// The active limit at each position of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveLimits {
    /// (the last position before the limit took effect, the limit), by position.
    changes: Vec<(i64, u32)>,
}

impl ActiveLimits {
    /// One limit for the whole log.
    pub fn constant(limit: u32) -> Self {
        Self {
            changes: vec![(0, limit)],
        }
    }

    /// The limits served from each position on (`from_position`, limit), as
    /// recorded; the first also holds for the log before it. `None` when
    /// none was recorded. A change back to the limit before it (a limit
    /// raised and lowered again at one position) is no change.
    pub fn served(mut changes: Vec<(i64, u32)>) -> Option<Self> {
        changes.sort_unstable();
        changes.dedup_by(|later, earlier| later.1 == earlier.1);
        (!changes.is_empty()).then_some(Self { changes })
    }

    /// The limit an admission at `position` was held to.
    pub fn at(&self, position: i64) -> u32 {
        let after = self.changes.partition_point(|(from, _)| *from < position);
        // The first change also covers the log before it.
        self.changes[after.saturating_sub(1)].1
    }
}

impl From<u32> for ActiveLimits {
    fn from(limit: u32) -> Self {
        Self::constant(limit)
    }
}

impl fmt::Display for ActiveLimits {
    /// `3`, or `3, then 2 after position 57`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (_, first) = self.changes[0];
        write!(f, "{first}")?;
        for (from, limit) in &self.changes[1..] {
            write!(f, ", then {limit} after position {from}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admission_is_held_to_the_limit_served_at_its_position() {
        let limits = ActiveLimits::served(vec![(57, 2), (0, 3), (90, 5)]).unwrap();

        assert_eq!(
            [0, 1, 57, 58, 90, 91, 10_000].map(|position| limits.at(position)),
            [3, 3, 3, 2, 2, 5, 5]
        );
        assert_eq!(
            limits.to_string(),
            "3, then 2 after position 57, then 5 after position 90"
        );
    }

    #[test]
    fn a_limit_served_again_after_the_same_limit_is_no_change() {
        // 1, then 100 and 1 again at position 22: the store keeps (22, 1).
        let limits = ActiveLimits::served(vec![(0, 1), (22, 1), (40, 3), (41, 3)]).unwrap();

        assert_eq!(limits.to_string(), "1, then 3 after position 40");
        assert_eq!(
            [22, 23, 40, 41].map(|position| limits.at(position)),
            [1, 1, 1, 3]
        );
    }

    #[test]
    fn the_first_limit_recorded_also_holds_before_it_and_none_recorded_is_none() {
        let limits = ActiveLimits::served(vec![(40, 7)]).unwrap();

        assert_eq!(limits.at(1), 7);
        assert_eq!(ActiveLimits::served(Vec::new()), None);
        assert_eq!(ActiveLimits::constant(4).to_string(), "4");
    }
}
