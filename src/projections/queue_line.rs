//! What every waiting ticket of a concert shares of its standing, read in
//! one query: the live standing streams read it once per move of the line
//! for all the watchers of a concert, instead of each reading its own.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::queue_pace::{admission_columns, RecentAdmissions, LEFT_WAITING_TOTAL};
use super::queue_tickets::StandingRow;

/// A concert's waiting line, as the standing of any ticket in it needs it.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LineRow {
    /// Tickets of the concert that left the waiting line.
    pub left_waiting: i64,
    /// Entry numbers taken and never used, ascending.
    pub unused_entries: Vec<i64>,
    #[sqlx(flatten)]
    pub admissions: RecentAdmissions,
}

/// The line of `concert_id`, counting admissions since `since` and active
/// tickets up to `active_max`.
pub async fn line(
    pool: &PgPool,
    concert_id: Uuid,
    since: DateTime<Utc>,
    active_max: i64,
) -> sqlx::Result<LineRow> {
    sqlx::query_as(&format!(
        "select {LEFT_WAITING_TOTAL}::bigint as left_waiting,
                array(select entry_no from queue_unused_entries where concert_id = $1 order by entry_no)
                    as unused_entries,
                {}",
        admission_columns("$2", "$3")
    ))
    .bind(concert_id)
    .bind(since)
    .bind(active_max)
    .fetch_one(pool)
    .await
}

impl LineRow {
    /// The standing of the waiting ticket numbered `entry_no`: what
    /// `queue_tickets::standing` reads for it, from this line.
    pub fn standing_of(&self, entry_no: i64) -> StandingRow {
        let unused_below = self
            .unused_entries
            .partition_point(|&unused| unused < entry_no);
        StandingRow {
            position: (entry_no - 1 - self.left_waiting - unused_below as i64).max(0),
            admissions: self.admissions.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_is_the_numbers_below_less_those_that_left_or_went_unused() {
        let line = LineRow {
            left_waiting: 2,
            unused_entries: vec![3, 7],
            admissions: RecentAdmissions {
                admitted_to_freed: 5,
                ..RecentAdmissions::NONE
            },
        };
        // Numbers 1..=9 below ticket 10: two left, 3 and 7 unused, five wait ahead.
        assert_eq!(line.standing_of(10).position, 5);
        assert_eq!(line.standing_of(7).position, 3);
        assert_eq!(line.standing_of(4).position, 0);
        assert_eq!(line.standing_of(1).position, 0);
        assert_eq!(line.standing_of(10).admissions, line.admissions);
    }
}
