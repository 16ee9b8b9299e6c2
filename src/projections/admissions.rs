//! Which waiting tickets of a concert the scheduler admits next: the oldest,
//! in entry order, but none behind an entry that took its number before it
//! and has not committed yet. Entries through several instances take their
//! numbers in one order and commit in another; admitting whatever has
//! committed let a later entry in ahead of earlier ones still committing.
//! The look counts the line's numbers, not each ticket below a candidate: a
//! ticket that left the line ahead of its turn makes it one short below
//! that ticket (README, "Admission in entry order across instances").

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::queue_tickets::position_column;

/// How long a waiting ticket waits for an entry numbered before it to
/// commit. An entry commits within milliseconds of taking its number; one
/// that has not after this is stuck (its instance was killed) and is passed
/// over (its number is released as unused later, by the scheduler's look for
/// abandoned numbers).
pub const UNCOMMITTED_AHEAD_WAIT: TimeDelta = TimeDelta::seconds(3);

/// A waiting ticket, with what stands before it in the line.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Candidate {
    pub ticket_id: Uuid,
    pub entered_at: DateTime<Utc>,
    /// Entry numbers below this ticket's that are neither a ticket nor
    /// released as unused: entries still committing (or stuck).
    pub uncommitted_ahead: i64,
}

/// The `limit` oldest waiting tickets of `concert_id`, in entry order.
pub async fn candidates(
    db: impl sqlx::PgExecutor<'_>,
    concert_id: Uuid,
    limit: i64,
) -> sqlx::Result<Vec<Candidate>> {
    // A waiting ticket's position counts the waiting tickets ahead of it
    // and the entries not committed yet: less the candidates ahead, the
    // latter are left.
    sqlx::query_as(&format!(
        "select ticket_id, entered_at,
                position - (row_number() over (order by entry_no) - 1) as uncommitted_ahead
         from (select ticket_id, entry_no, entered_at, {}
               from (select ticket_id, entry_no, entered_at from queue_tickets
                     where concert_id = $1 and status = 'waiting'
                     order by entry_no limit $2) w) p
         order by entry_no",
        position_column("w.entry_no")
    ))
    .bind(concert_id)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Of `candidates` (in entry order), those to admit at `now`: each in turn,
/// until one stands behind an entry still committing that it has not waited
/// `UNCOMMITTED_AHEAD_WAIT` for.
pub fn admissible(candidates: &[Candidate], now: DateTime<Utc>) -> Vec<Uuid> {
    let waited_enough = now - UNCOMMITTED_AHEAD_WAIT;
    // Entries still committing that an earlier candidate was let past.
    let mut passed = 0;
    let mut admitted = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        if candidate.uncommitted_ahead > passed {
            if candidate.entered_at > waited_enough {
                break;
            }
            passed = candidate.uncommitted_ahead;
        }
        admitted.push(candidate.ticket_id);
    }
    admitted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(uncommitted_ahead: i64, entered_secs_ago: i64, now: DateTime<Utc>) -> Candidate {
        Candidate {
            ticket_id: Uuid::new_v4(),
            entered_at: now - TimeDelta::seconds(entered_secs_ago),
            uncommitted_ahead,
        }
    }

    #[test]
    fn a_ticket_behind_an_entry_still_committing_waits_and_so_do_those_behind_it() {
        let now = Utc::now();
        let line = [
            candidate(0, 0, now),
            candidate(1, 0, now),
            candidate(1, 0, now),
        ];
        assert_eq!(admissible(&line, now), vec![line[0].ticket_id]);
    }

    #[test]
    fn an_entry_stuck_for_the_wait_is_passed_over_once() {
        let now = Utc::now();
        let line = [
            candidate(1, 4, now),
            // Behind the same stuck entry: not held up again.
            candidate(1, 0, now),
            // Behind another one, which has had no time yet.
            candidate(2, 0, now),
        ];
        assert_eq!(
            admissible(&line, now),
            vec![line[0].ticket_id, line[1].ticket_id]
        );
    }

    #[test]
    fn a_line_with_nothing_committing_is_admitted_whole() {
        let now = Utc::now();
        // A ticket of the line that expired while waiting counts below zero.
        let line = [candidate(0, 0, now), candidate(-1, 0, now)];
        assert_eq!(admissible(&line, now).len(), 2);
    }
}
