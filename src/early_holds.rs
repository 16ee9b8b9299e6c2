//! Holds that end before the holds duty may look again. A hold lasts its TTL
//! or until its date begins, whichever is first, and the duty looks at least
//! once a TTL, so only a hold its date's start cuts short can fall due before
//! the next look: it was recorded up to a beat late
//! (`CONCERT_SCHEDULER_INTERVAL_MS`). Its deadline is handed to this
//! instance's holds duty, which wakes for it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// The earliest deadline of a hold cut short that is still ahead.
#[derive(Clone)]
pub struct EarlyHoldDeadlines(Arc<watch::Sender<Option<DateTime<Utc>>>>);

impl Default for EarlyHoldDeadlines {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(None)))
    }
}

impl EarlyHoldDeadlines {
    /// A hold committed here ends at `deadline`, sooner than a TTL on.
    pub fn hold_ends(&self, deadline: DateTime<Utc>) {
        let now = crate::clock::now();
        self.0.send_if_modified(|earliest| match earliest {
            Some(earliest) if *earliest > now && *earliest <= deadline => false,
            _ => {
                *earliest = Some(deadline);
                true
            }
        });
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<DateTime<Utc>>> {
        self.0.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    #[test]
    fn the_earliest_deadline_ahead_is_kept() {
        let deadlines = EarlyHoldDeadlines::default();
        let mut told = deadlines.subscribe();
        let now = Utc::now();
        deadlines.hold_ends(now + TimeDelta::seconds(5));
        assert!(told.has_changed().unwrap());
        assert_eq!(*told.borrow_and_update(), Some(now + TimeDelta::seconds(5)));
        // A later one changes nothing; a sooner one replaces it.
        deadlines.hold_ends(now + TimeDelta::seconds(9));
        assert!(!told.has_changed().unwrap());
        deadlines.hold_ends(now + TimeDelta::seconds(2));
        assert_eq!(*told.borrow_and_update(), Some(now + TimeDelta::seconds(2)));
        // One already past is replaced by any.
        let past = EarlyHoldDeadlines::default();
        past.hold_ends(now - TimeDelta::seconds(1));
        past.hold_ends(now + TimeDelta::seconds(30));
        assert_eq!(
            *past.subscribe().borrow(),
            Some(now + TimeDelta::seconds(30))
        );
    }
}
