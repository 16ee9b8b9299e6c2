//! The hold and admission TTLs over the log: the service records the pair it
//! is served with and the position it started at (`served_ttls`), and a hold
//! or admission must last a TTL served by then. Any served before its
//! position may have made it: an instance started earlier can still run
//! beside a later one. The log before the first record is not checked.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

use crate::event_log::RawEvent;

use super::Violation;

/// What one serve ran with, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttls {
    /// `CONCERT_HOLD_TTL_SECS`.
    pub hold_secs: u32,
    /// `CONCERT_QUEUE_ACTIVE_TTL_SECS`.
    pub active_secs: u32,
}

/// The TTLs served, each from the position after which a serve first ran with it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedTtls {
    changes: Vec<(i64, Ttls)>,
}

impl ServedTtls {
    /// The TTLs served from each position on, as recorded; `None` when none was.
    pub fn served(mut changes: Vec<(i64, Ttls)>) -> Option<Self> {
        changes.sort_unstable_by_key(|(from, _)| *from);
        (!changes.is_empty()).then_some(Self { changes })
    }

    /// The TTLs some serve ran with before `position`.
    fn before(&self, position: i64) -> impl Iterator<Item = Ttls> + '_ {
        self.changes
            .iter()
            .take_while(move |(from, _)| *from < position)
            .map(|(_, ttls)| *ttls)
    }

    /// Names a hold from `held_at` to `until` that lasts no hold TTL served
    /// before its row.
    pub(super) fn check_hold(
        &self,
        row: &RawEvent,
        held_at: DateTime<Utc>,
        until: DateTime<Utc>,
        found: &mut Vec<Violation>,
    ) {
        let served: Vec<u32> = self
            .before(row.position)
            .map(|ttls| ttls.hold_secs)
            .collect();
        if let Some(detail) = unserved(&served, until - held_at) {
            found.push(Violation::new(
                "a hold lasts a CONCERT_HOLD_TTL_SECS the service ran with",
                format!("held from {held_at} to {until}: {detail}"),
                vec![row.label()],
            ));
        }
    }

    /// Names an admission from `admitted_at` to `expires_at` that lasts no
    /// active TTL served before its row.
    pub(super) fn check_admission(
        &self,
        row: &RawEvent,
        admitted_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        found: &mut Vec<Violation>,
    ) {
        let served: Vec<u32> = self
            .before(row.position)
            .map(|ttls| ttls.active_secs)
            .collect();
        if let Some(detail) = unserved(&served, expires_at - admitted_at) {
            found.push(Violation::new(
                "an admission lasts a CONCERT_QUEUE_ACTIVE_TTL_SECS the service ran with",
                format!("admitted from {admitted_at} to {expires_at}: {detail}"),
                vec![row.label()],
            ));
        }
    }
}

/// What is wrong with lasting `lasted` when the TTLs `served` (in seconds)
/// were: `None` when it is one of them, or when none was recorded yet.
fn unserved(served: &[u32], lasted: TimeDelta) -> Option<String> {
    if served.is_empty()
        || served
            .iter()
            .any(|secs| TimeDelta::seconds(i64::from(*secs)) == lasted)
    {
        return None;
    }
    let served: Vec<String> = served.iter().map(|secs| format!("{secs} s")).collect();
    Some(format!(
        "{} s, where the service ran with {}",
        lasted.num_milliseconds() as f64 / 1000.0,
        served.join(" or ")
    ))
}

impl fmt::Display for ServedTtls {
    /// `hold 300 s, active 600 s after position 0, then hold 60 s, active 600 s after position 57`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (from, ttls)) in self.changes.iter().enumerate() {
            if n > 0 {
                f.write_str(", then ")?;
            }
            write!(
                f,
                "CONCERT_HOLD_TTL_SECS={} and CONCERT_QUEUE_ACTIVE_TTL_SECS={} after position {from}",
                ttls.hold_secs, ttls.active_secs
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
