//! Queue tickets with their status, FIFO entry number and admission times.

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::queue_pace::{admission_columns, RecentAdmissions, LEFT_WAITING_TOTAL};
use super::queue_ticket_batches::{apply_moves, insert_entries, NUMBERS_IN_USE_AFTER_ALL};
use super::{apply_each, stream_uuid, Projection, SET_BASED_FROM};
use crate::aggregates::{QueueTicket, QueueTicketEvent};

/// Writes `queue_tickets`.
pub struct QueueTickets;

/// One ticket.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TicketRow {
    pub ticket_id: Uuid,
    pub concert_id: Uuid,
    pub user_id: Uuid,
    pub entry_no: i64,
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Where a ticket stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketStatus {
    Waiting,
    Active,
    Expired,
}

impl TicketStatus {
    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            TicketStatus::Waiting => "waiting",
            TicketStatus::Active => "active",
            TicketStatus::Expired => "expired",
        }
    }
}

impl TicketRow {
    /// The ticket's status at `now`. The one place of the rule that an active
    /// ticket past its deadline is expired, whether or not the scheduler has
    /// recorded it yet.
    pub fn status_at(&self, now: DateTime<Utc>) -> TicketStatus {
        match self.recorded_status() {
            TicketStatus::Active if self.expires_at.is_none_or(|until| until <= now) => {
                TicketStatus::Expired
            }
            recorded => recorded,
        }
    }

    /// The status the log has recorded so far, whatever the time.
    pub fn recorded_status(&self) -> TicketStatus {
        match self.status.as_str() {
            "waiting" => TicketStatus::Waiting,
            "active" => TicketStatus::Active,
            _ => TicketStatus::Expired,
        }
    }

    /// Admitted and then spent (by its holder's payment) before its
    /// deadline: expired in the log with the deadline still ahead of `now`.
    /// A ticket that lapsed was active for its whole time, and one never
    /// admitted has no deadline.
    pub fn spent_before_deadline(&self, now: DateTime<Utc>) -> bool {
        self.recorded_status() == TicketStatus::Expired
            && self.expires_at.is_some_and(|deadline| deadline > now)
    }

    /// Active and not past its deadline.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.status_at(now) == TicketStatus::Active
    }

    /// Waiting, or active and not past its deadline.
    pub fn is_live_at(&self, now: DateTime<Utc>) -> bool {
        self.status_at(now) != TicketStatus::Expired
    }
}

#[async_trait]
impl Projection<QueueTicket> for QueueTickets {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        aggregate_id: &str,
        event: &QueueTicketEvent,
    ) -> sqlx::Result<()> {
        let ticket_id = stream_uuid(aggregate_id)?;
        match event {
            QueueTicketEvent::QueueEntered {
                concert_id,
                user_id,
                entry_no,
                entered_at,
            } => {
                sqlx::query(&format!(
                    "with entered as (
                        insert into queue_tickets (ticket_id, concert_id, user_id, entry_no, status, entered_at)
                        values ($1, $2, $3, $4, 'waiting', $5) on conflict do nothing
                        returning concert_id, entry_no)
                     {NUMBERS_IN_USE_AFTER_ALL}"
                ))
                .bind(ticket_id)
                .bind(concert_id.0)
                .bind(user_id.0)
                .bind(*entry_no)
                .bind(*entered_at)
                .execute(conn)
                .await?;
            }
            QueueTicketEvent::TicketAdmitted {
                admitted_at,
                expires_at,
            } => {
                sqlx::query(&format!(
                    "with prior as (select concert_id, status, entry_no from queue_tickets where ticket_id = $1),
                     changed as (update queue_tickets set status = 'active', admitted_at = $2, expires_at = $3
                                 where ticket_id = $1)
                     {LEFT_WAITING}"
                ))
                .bind(ticket_id)
                .bind(*admitted_at)
                .bind(*expires_at)
                .execute(conn)
                .await?;
            }
            QueueTicketEvent::TicketExpired { expired_at, .. } => {
                sqlx::query(&format!(
                    "with prior as (select concert_id, status, entry_no from queue_tickets where ticket_id = $1),
                     changed as (update queue_tickets set status = 'expired', expired_at = $2 where ticket_id = $1)
                     {LEFT_WAITING}"
                ))
                    .bind(ticket_id)
                    .bind(*expired_at)
                    .execute(conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// The entries of the batch in one statement (one at a time when they are
    /// few), then its admissions and expiries (a ticket entered in the batch
    /// exists before either) in one more. Admissions and expiries move the
    /// concerts' `queue_progress` stripes, taken in (concert, stripe) order,
    /// since two batches committing side by side would otherwise deadlock,
    /// and PostgreSQL takes a second (`deadlock_timeout`) to break that.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[(&str, &QueueTicketEvent)],
    ) -> sqlx::Result<()> {
        let (entries, moves): (Vec<_>, Vec<_>) = events
            .iter()
            .copied()
            .partition(|(_, event)| matches!(event, QueueTicketEvent::QueueEntered { .. }));
        if entries.len() < SET_BASED_FROM {
            apply_each(self, conn, &entries).await?;
        } else {
            insert_entries(conn, &entries).await?;
        }
        if moves.len() < 2 {
            return apply_each(self, conn, &moves).await;
        }
        let moved = moves
            .iter()
            .map(|(aggregate_id, _)| stream_uuid(aggregate_id))
            .collect::<sqlx::Result<Vec<Uuid>>>()?;
        if moved.iter().collect::<HashSet<_>>().len() == moved.len() {
            return apply_moves(conn, &moves).await;
        }
        // A ticket moved twice in one batch: one statement cannot update a row twice.
        sqlx::query(LOCK_STRIPES)
            .bind(moved)
            .execute(&mut *conn)
            .await?;
        apply_each(self, conn, &moves).await
    }

    /// Every batch of more than one event, however small: its stripes must
    /// be locked in order, which one statement per event cannot do.
    fn set_based_from(&self) -> usize {
        2
    }
}

/// Locks the `queue_progress` stripes of the concerts of tickets `$1` in
/// (concert, stripe) order. A stripe not yet written is created by the first
/// ticket to leave it, unordered; that can happen only 16 times a concert,
/// and creating rows here would make the read model differ from a rebuild.
const LOCK_STRIPES: &str = "select 1 from queue_progress
     where concert_id in (select concert_id from queue_tickets where ticket_id = any($1))
     order by concert_id, stripe
     for update";

/// Counts a ticket that was waiting (in `prior`) as having left the line. The
/// count is spread over 16 rows by entry number (`LOCK_STRIPES` knows them), so admissions
/// of one concert running side by side do not queue on one row.
const LEFT_WAITING: &str = "insert into queue_progress (concert_id, stripe, left_waiting)
     select concert_id, entry_no % 16, 1 from prior where status = 'waiting'
     on conflict (concert_id, stripe) do update set left_waiting = queue_progress.left_waiting + 1";

const TICKET_COLUMNS: &str = "ticket_id, concert_id, user_id, entry_no, status, expires_at";

/// One ticket by id.
pub async fn find_ticket(pool: &PgPool, ticket_id: Uuid) -> sqlx::Result<Option<TicketRow>> {
    sqlx::query_as(&format!(
        "select {TICKET_COLUMNS} from queue_tickets where ticket_id = $1"
    ))
    .bind(ticket_id)
    .fetch_optional(pool)
    .await
}

/// A user's most recent ticket for a concert, and how many they ever had.
pub async fn latest_ticket(
    pool: &PgPool,
    concert_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<(Option<TicketRow>, i64)> {
    let tickets: Vec<TicketRow> = sqlx::query_as(&format!(
        "select {TICKET_COLUMNS} from queue_tickets where concert_id = $1 and user_id = $2 order by entry_no desc"
    ))
    .bind(concert_id)
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    let count = tickets.len() as i64;
    Ok((tickets.into_iter().next(), count))
}

/// Where a waiting ticket stands, and the concert's recent admissions.
#[derive(Debug, sqlx::FromRow)]
pub struct StandingRow {
    /// Waiting tickets of the concert that entered before this one.
    pub position: i64,
    #[sqlx(flatten)]
    pub admissions: RecentAdmissions,
}

/// The `position` column: waiting tickets ahead of number `entry_no`.
pub(super) fn position_column(entry_no: &str) -> String {
    format!(
        "greatest(0, {entry_no} - 1 - {LEFT_WAITING_TOTAL}
            - (select count(*) from queue_unused_entries where concert_id = $1 and entry_no < {entry_no}))::bigint as position"
    )
}

/// The `StandingRow` of a ticket with `entry_no`, counting admissions since
/// `since` and active tickets up to `active_max`. Both parts take constant
/// time, however long the queue: entry numbers are dense per concert, so the position is the numbers below this
/// one, less the tickets that left the line and the unused numbers (admission
/// is FIFO, so the tickets that left were ahead of a waiting one); and the rate
/// is read from the last `RATE_SAMPLE` admissions only.
pub async fn standing(
    pool: &PgPool,
    concert_id: Uuid,
    entry_no: i64,
    since: DateTime<Utc>,
    active_max: i64,
) -> sqlx::Result<StandingRow> {
    sqlx::query_as(&format!(
        "select {}, {}",
        position_column("$2"),
        admission_columns("$3", "$4")
    ))
    .bind(concert_id)
    .bind(entry_no)
    .bind(since)
    .bind(active_max)
    .fetch_one(pool)
    .await
}

/// Concerts that have waiting tickets, with their count of active ones.
pub async fn concerts_waiting(db: impl sqlx::PgExecutor<'_>) -> sqlx::Result<Vec<(Uuid, i64)>> {
    sqlx::query_as(CONCERTS_WAITING).fetch_all(db).await
}

/// Each concert with tickets waiting, and its active tickets: the concerts
/// are found by skipping through the index of waiting tickets one concert at
/// a time, not by reading every waiting ticket (a line of 9,000 cost 7–29 ms
/// on every scheduler round).
pub const CONCERTS_WAITING: &str = "with recursive waiting(concert_id) as (
        (select concert_id from queue_tickets where status = 'waiting' order by concert_id limit 1)
        union all
        select (select t.concert_id from queue_tickets t
                where t.status = 'waiting' and t.concert_id > w.concert_id
                order by t.concert_id limit 1)
        from waiting w where w.concert_id is not null)
     select w.concert_id,
            (select count(*) from queue_tickets a where a.concert_id = w.concert_id and a.status = 'active')
     from waiting w where w.concert_id is not null";

/// Active tickets whose time ran out.
pub async fn overdue_active(
    db: impl sqlx::PgExecutor<'_>,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "select ticket_id from queue_tickets where status = 'active' and expires_at <= $1 order by expires_at limit $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn ticket(status: &str, expires_in: Option<i64>, now: DateTime<Utc>) -> TicketRow {
        TicketRow {
            ticket_id: Uuid::nil(),
            concert_id: Uuid::nil(),
            user_id: Uuid::nil(),
            entry_no: 1,
            status: status.to_string(),
            expires_at: expires_in.map(|seconds| now + Duration::seconds(seconds)),
        }
    }

    #[test]
    fn only_a_ticket_expired_with_its_deadline_ahead_was_spent_before_it() {
        let now = Utc::now();
        assert!(ticket("expired", Some(60), now).spent_before_deadline(now));
        assert!(!ticket("expired", Some(-1), now).spent_before_deadline(now));
        assert!(!ticket("expired", None, now).spent_before_deadline(now));
        assert!(!ticket("active", Some(60), now).spent_before_deadline(now));
        assert!(!ticket("waiting", None, now).spent_before_deadline(now));
    }

    #[test]
    fn an_active_ticket_past_its_deadline_is_expired_before_the_scheduler_says_so() {
        let now = Utc::now();
        let cases = [
            ("waiting", None, TicketStatus::Waiting),
            ("active", Some(60), TicketStatus::Active),
            ("active", Some(0), TicketStatus::Expired),
            ("active", Some(-1), TicketStatus::Expired),
            ("active", None, TicketStatus::Expired),
            ("expired", Some(60), TicketStatus::Expired),
        ];
        for (status, expires_in, expected) in cases {
            let row = ticket(status, expires_in, now);
            assert_eq!(row.status_at(now), expected, "{status} {expires_in:?}");
            assert_eq!(row.is_active_at(now), expected == TicketStatus::Active);
            assert_eq!(row.is_live_at(now), expected != TicketStatus::Expired);
        }
    }
}
