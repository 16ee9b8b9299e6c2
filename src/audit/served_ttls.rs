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

    /// Names a hold or admission (`lasting`) from `start` to `end` that
    /// lasts no TTL of its kind served before its row.
    pub(super) fn check(
        &self,
        lasting: Lasting,
        row: &RawEvent,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        found: &mut Vec<Violation>,
    ) {
        let served: Vec<u32> = self
            .before(row.position)
            .map(|ttls| lasting.ttl(ttls))
            .collect();
        // A hold its date's beginning cut short lasts less than a TTL.
        if let Lasting::Hold {
            date_begins: Some(begins),
        } = lasting
        {
            let within_a_ttl = served
                .iter()
                .any(|secs| end - start <= TimeDelta::seconds(i64::from(*secs)));
            if end == begins && within_a_ttl {
                return;
            }
        }
        if let Some(detail) = unserved(&served, end - start) {
            found.push(Violation::new(
                lasting.rule(),
                format!("{} from {start} to {end}: {detail}", lasting.verb()),
                vec![row.label()],
            ));
        }
    }
}

/// What lasts a TTL: a hold (or less, up to when its date begins, if
/// known), or an admission.
#[derive(Debug, Clone, Copy)]
pub(super) enum Lasting {
    Hold { date_begins: Option<DateTime<Utc>> },
    Admission,
}

impl Lasting {
    fn ttl(self, ttls: Ttls) -> u32 {
        match self {
            Lasting::Hold { .. } => ttls.hold_secs,
            Lasting::Admission => ttls.active_secs,
        }
    }

    fn rule(self) -> &'static str {
        match self {
            Lasting::Hold { .. } => "a hold lasts a CONCERT_HOLD_TTL_SECS the service ran with",
            Lasting::Admission => {
                "an admission lasts a CONCERT_QUEUE_ACTIVE_TTL_SECS the service ran with"
            }
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Lasting::Hold { .. } => "held",
            Lasting::Admission => "admitted",
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
    /// `CONCERT_HOLD_TTL_SECS=300 and CONCERT_QUEUE_ACTIVE_TTL_SECS=600 after
    /// position 0, then …=60 and …=600 after position 57`.
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
