//! What entering a concert's queue reads and takes from the queue's read
//! model: in one statement, since every round trip to PostgreSQL is most of
//! an entry's cost under load.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::queue_tickets::{
    position_column, rate_columns, StandingRow, TicketRow, LEFT_WAITING_TOTAL,
};

/// What one user's entry into one concert's queue found, and the number it
/// took.
pub struct EntryPlan {
    pub concert_exists: bool,
    /// The user's most recent ticket for the concert.
    pub latest: Option<TicketRow>,
    /// How many tickets the user ever had for the concert.
    pub tickets_of_user: i64,
    /// The concert's next entry number, taken only when the concert exists,
    /// the latest ticket is not live at the moment asked about and the line
    /// has room: the new ticket's place in the FIFO order.
    pub entry_no: Option<i64>,
    /// Where the new entry stands, or else the latest ticket.
    pub standing: StandingRow,
}

#[derive(Debug, sqlx::FromRow)]
struct EntryPlanRow {
    concert_exists: bool,
    tickets_of_user: i64,
    ticket_id: Option<Uuid>,
    latest_entry_no: Option<i64>,
    status: Option<String>,
    expires_at: Option<DateTime<Utc>>,
    new_entry_no: Option<i64>,
    #[sqlx(flatten)]
    standing: StandingRow,
}

/// Reads what an entry needs and takes the concert's next entry number when
/// the user has no ticket live at `now` and fewer than `waiting_max` wait (0:
/// no limit; numbers taken for entries still being written count as
/// waiting). `since` starts the window of the admission rate.
///
/// "Live" is `TicketRow::is_live_at`'s rule: waiting, or active and not past
/// its deadline.
///
/// The number is taken by an update of the concert's one counter row, whose
/// commit does not wait for the WAL flush (the row lock is released at once).
/// That is safe: the entry's event commits later and durably, which flushes
/// this change too, so a number lost in a crash was never used and is simply
/// handed out again. Every entry of a concert takes that lock in turn, so the
/// admission rate (the slowest part) is read before it, and only the position
/// after.
pub async fn plan_entry(
    pool: &PgPool,
    concert_id: Uuid,
    user_id: Uuid,
    now: DateTime<Utc>,
    since: DateTime<Utc>,
    waiting_max: i64,
) -> sqlx::Result<EntryPlan> {
    let row: EntryPlanRow = sqlx::query_as(&format!(
        "with latest as (select ticket_id, entry_no, status, expires_at from queue_tickets
                         where concert_id = $1 and user_id = $2 order by entry_no desc limit 1),
         known as (
            select exists (select 1 from concerts where concert_id = $1) as concert_exists,
                (select count(*) from queue_tickets where concert_id = $1 and user_id = $2) as tickets_of_user,
                greatest(0, coalesce((select issued from queue_lines where concert_id = $1), 0)
                  - {LEFT_WAITING_TOTAL}
                  - (select count(*) from queue_unused_entries where concert_id = $1))::bigint as waiting,
                exists (select 1 from latest where status = 'waiting' or (status = 'active' and expires_at > $3)) as live,
                {rates}),
         no_flush as materialized (
            select set_config('synchronous_commit', 'off', true) from known
            where concert_exists and not live and ($5 = 0 or waiting < $5)),
         taken as (
            insert into queue_lines (concert_id, issued) select $1, 1 from no_flush
            on conflict (concert_id) do update set issued = queue_lines.issued + 1
            returning issued),
         placed as (select coalesce((select issued from taken), (select entry_no from latest), 1) as entry_no)
         select k.concert_exists, k.tickets_of_user,
            l.ticket_id, l.entry_no as latest_entry_no, l.status, l.expires_at,
            (select issued from taken) as new_entry_no,
            {position}, k.admitted, k.sample_start
         from known k cross join placed p left join latest l on true",
        rates = rate_columns("$4"),
        position = position_column("p.entry_no"),
    ))
    .bind(concert_id)
    .bind(user_id)
    .bind(now)
    .bind(since)
    .bind(waiting_max)
    .fetch_one(pool)
    .await?;
    let latest = match (row.ticket_id, row.latest_entry_no, row.status) {
        (Some(ticket_id), Some(entry_no), Some(status)) => Some(TicketRow {
            ticket_id,
            concert_id,
            user_id,
            entry_no,
            status,
            expires_at: row.expires_at,
        }),
        _ => None,
    };
    Ok(EntryPlan {
        concert_exists: row.concert_exists,
        latest,
        tickets_of_user: row.tickets_of_user,
        entry_no: row.new_entry_no,
        standing: row.standing,
    })
}

/// Records an entry number that was taken but will never be used, so the
/// positions behind it stay exact.
pub async fn release_entry_no(pool: &PgPool, concert_id: Uuid, entry_no: i64) -> sqlx::Result<()> {
    sqlx::query("insert into queue_unused_entries (concert_id, entry_no) values ($1, $2) on conflict do nothing")
        .bind(concert_id)
        .bind(entry_no)
        .execute(pool)
        .await?;
    Ok(())
}
