//! What entering a concert's queue reads and takes from the queue's read
//! model: in one statement for every entry waiting at the moment, since every
//! round trip to PostgreSQL is most of an entry's cost under load, and every
//! entry of a concert takes its counter's lock.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::queue_pace::{admission_columns, LEFT_WAITING_TOTAL};
use super::queue_tickets::{position_column, StandingRow, TicketRow};

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
    /// The moment the plan was read at: "live" and the rate are as of then.
    pub planned_at: DateTime<Utc>,
    /// When the database server started, as the number was taken
    /// (`release_entry_no` says why).
    pub server_started: DateTime<Utc>,
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
    server_started: DateTime<Utc>,
    #[sqlx(flatten)]
    standing: StandingRow,
}

/// Plans the entries of `users` into one concert's queue, in their order, in
/// one statement: each reads the user's tickets and, when the user has no
/// ticket live at `now` and the line has room, takes the concert's next entry
/// number. The line has room for an entry while fewer than `waiting_max`
/// wait ahead of it (0: no limit; numbers taken for entries still being
/// written count as waiting). `since` starts the window of the admission
/// rate. A user named twice takes two numbers, as two separate entries would.
///
/// "Live" is `TicketRow::is_live_at`'s rule: waiting, or active and not past
/// its deadline.
///
/// The numbers are taken by one update of the concert's one counter row, so
/// its lock is taken once for all of `users` rather than once each. That
/// commit waits for the WAL flush like every other: when it did not, a
/// crash of PostgreSQL could lose numbers whose entries were still to
/// commit, and such an entry, committed after the restart, shared its
/// number with one entered since (the audit's "entry numbers are used once
/// a concert" then failed an honest store: the supervision test's SIGKILL,
/// once in many runs). The admission rate (the slowest part) is read before
/// the lock, and only the positions after.
pub async fn plan_entries<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    concert_id: Uuid,
    users: &[Uuid],
    now: DateTime<Utc>,
    since: DateTime<Utc>,
    waiting_max: i64,
    active_max: i64,
) -> sqlx::Result<Vec<EntryPlan>> {
    let rows: Vec<EntryPlanRow> = sqlx::query_as(&format!(
        "with asked as (select user_id, ord from unnest($2::uuid[]) with ordinality as a(user_id, ord)),
         latest as (
            select a.ord, l.ticket_id, l.entry_no, l.status, l.expires_at,
                (select count(*) from queue_tickets t where t.concert_id = $1 and t.user_id = a.user_id) as tickets_of_user,
                coalesce(l.status = 'waiting' or (l.status = 'active' and l.expires_at > $3), false) as live
            from asked a left join lateral (
                select ticket_id, entry_no, status, expires_at from queue_tickets
                where concert_id = $1 and user_id = a.user_id order by entry_no desc limit 1) l on true),
         known as (
            select exists (select 1 from concerts where concert_id = $1) as concert_exists,
                greatest(0, coalesce((select issued from queue_lines where concert_id = $1), 0)
                  - {LEFT_WAITING_TOTAL}
                  - (select count(*) from queue_unused_entries where concert_id = $1))::bigint as waiting,
                {rates}),
         wanting as (
            select l.ord, row_number() over (order by l.ord) as nth
            from latest l cross join known k where k.concert_exists and not l.live),
         granted as (
            select w.ord, w.nth from wanting w cross join known k where $5 = 0 or k.waiting + w.nth <= $5),
         taken as (
            insert into queue_lines (concert_id, issued) select $1, (select count(*) from granted)
            where exists (select 1 from granted)
            on conflict (concert_id) do update set issued = queue_lines.issued + excluded.issued
            returning issued),
         numbered as (
            select g.ord, t.issued - (select count(*) from granted) + g.nth as entry_no
            from granted g cross join taken t),
         placed as (
            select l.ord, n.entry_no as new_entry_no, coalesce(n.entry_no, l.entry_no, 1) as entry_no
            from latest l left join numbered n on n.ord = l.ord)
         select k.concert_exists, l.tickets_of_user,
            l.ticket_id, l.entry_no as latest_entry_no, l.status, l.expires_at,
            p.new_entry_no, pg_postmaster_start_time() as server_started,
            {position}, k.admitted_to_freed, k.freed, k.sample_start, k.last_admitted, k.last_round, k.active_until, k.active
         from latest l join placed p on p.ord = l.ord cross join known k
         order by l.ord",
        rates = admission_columns("$4", "$6"),
        position = position_column("p.entry_no"),
    ))
    .bind(concert_id)
    .bind(users)
    .bind(now)
    .bind(since)
    .bind(waiting_max)
    .bind(active_max)
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .zip(users)
        .map(|(row, &user_id)| entry_plan(row, concert_id, user_id, now))
        .collect())
}

/// `user_id`'s plan from its row of the statement.
fn entry_plan(row: EntryPlanRow, concert_id: Uuid, user_id: Uuid, now: DateTime<Utc>) -> EntryPlan {
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
    EntryPlan {
        concert_exists: row.concert_exists,
        latest,
        tickets_of_user: row.tickets_of_user,
        entry_no: row.new_entry_no,
        standing: row.standing,
        planned_at: now,
        server_started: row.server_started,
    }
}

/// The channel on which a concert's line is announced to have moved with no
/// event in the log: a number released as unused moves up everyone behind
/// it. The payload is the concert's id; every instance's standing streams
/// of that concert read its line again.
pub const LINES_CHANNEL: &str = "concert_lines";

/// Records an entry number that was taken but will never be used, so the
/// positions behind it stay exact; unless the database server restarted
/// since `taken_under` (its start then). When the counter committed without
/// waiting for the WAL flush, a number taken before a crash could be lost
/// and handed out again to an entry since, and recorded as unused it made
/// every place behind that ticket read one too short, for good (2 of 4 runs
/// of a probe that crashed PostgreSQL under entries); stores from then may
/// still hold such numbers. Left alone, it is found by the look for
/// abandoned numbers if it really is unused.
pub async fn release_entry_no(
    pool: &PgPool,
    concert_id: Uuid,
    entry_no: i64,
    taken_under: DateTime<Utc>,
) -> sqlx::Result<()> {
    let released = sqlx::query(
        "insert into queue_unused_entries (concert_id, entry_no)
         select $1, $2 where pg_postmaster_start_time() = $3
         on conflict do nothing",
    )
    .bind(concert_id)
    .bind(entry_no)
    .bind(taken_under)
    .execute(pool)
    .await?
    .rows_affected();
    if released > 0 {
        announce_line_moves(pool, &[concert_id]).await;
    }
    Ok(())
}

/// Tells every instance that the lines of `concerts` moved (`LINES_CHANNEL`).
/// Best effort: the numbers are recorded whatever comes of it, and a
/// stream that missed it is corrected by the line's next move.
async fn announce_line_moves(pool: &PgPool, concerts: &[Uuid]) {
    if concerts.is_empty() {
        return;
    }
    let announced =
        sqlx::query("select pg_notify($1, concert_id::text) from unnest($2::uuid[]) as concert_id")
            .bind(LINES_CHANNEL)
            .bind(concerts)
            .execute(pool)
            .await;
    if let Err(error) = announced {
        tracing::warn!(%error, "the moves of queue lines were not announced");
    }
}

/// Records as unused every entry number a concert handed out that no ticket
/// has. Safe only while nothing enters the queue, as an entry's number is
/// taken a moment before its ticket commits: a restore runs it, since a copy
/// taken in that moment holds the number without its ticket, which no
/// request will ever enter or release there.
pub async fn release_numbers_without_tickets(pool: &PgPool) -> sqlx::Result<u64> {
    let bounds = "select concert_id, 1::bigint as from_no, issued as upto from queue_lines";
    let released: Vec<(Uuid, i64, i64)> = sqlx::query_as(&release_within(bounds))
        .fetch_all(pool)
        .await?;
    Ok(announce_and_count(pool, &released).await)
}

/// Announces the moves of the lines where `released` (each concert, its
/// `upto`, the numbers released there) recorded numbers, and counts them.
async fn announce_and_count(pool: &PgPool, released: &[(Uuid, i64, i64)]) -> u64 {
    let moved: Vec<Uuid> = released
        .iter()
        .filter(|(_, _, count)| *count > 0)
        .map(|(concert_id, _, _)| *concert_id)
        .collect();
    announce_line_moves(pool, &moved).await;
    released.iter().map(|(_, _, count)| *count as u64).sum()
}

/// Records as unused the numbers of entries that never committed (their
/// instance was killed after taking the number): those without a ticket
/// below a ticket that entered before `entered_before`, in concerts with
/// tickets waiting (the only ones whose positions they skew). `settled` is
/// each concert's number up to which this was done before, and is moved on.
/// Counted as waiting, such a number put every ticket behind it one place
/// too far back for good.
pub async fn release_abandoned_numbers(
    pool: &PgPool,
    entered_before: DateTime<Utc>,
    settled: &mut HashMap<Uuid, i64>,
) -> sqlx::Result<u64> {
    let (concerts, upto): (Vec<Uuid>, Vec<i64>) = settled.iter().map(|(c, n)| (*c, *n)).unzip();
    let bounds = "select t.concert_id, coalesce(s.settled, 0) + 1 as from_no, max(t.entry_no) as upto
         from queue_tickets t
         left join unnest($2::uuid[], $3::bigint[]) as s(concert_id, settled) on s.concert_id = t.concert_id
         where t.entered_at < $1
           and t.concert_id in (select concert_id from queue_tickets where status = 'waiting')
         group by t.concert_id, s.settled
         having max(t.entry_no) > coalesce(s.settled, 0)";
    let released: Vec<(Uuid, i64, i64)> = sqlx::query_as(&release_within(bounds))
        .bind(entered_before)
        .bind(concerts)
        .bind(upto)
        .fetch_all(pool)
        .await?;
    for (concert_id, upto, _) in &released {
        settled.insert(*concert_id, *upto);
    }
    Ok(announce_and_count(pool, &released).await)
}

/// The statement that records as unused the numbers without a ticket from
/// `from_no` to `upto` of each concert `bounds` selects, and answers each
/// concert's `upto` with the count released there. Set differences, not a
/// look-up per number: only tickets waiting have an index by number.
fn release_within(bounds: &str) -> String {
    format!(
        "with bounds as materialized ({bounds}),
         released as (
            insert into queue_unused_entries (concert_id, entry_no)
            select b.concert_id, missing.entry_no
            from bounds b cross join lateral (
               select generate_series(b.from_no, b.upto) as entry_no
               except select entry_no from queue_tickets
                      where concert_id = b.concert_id and entry_no between b.from_no and b.upto
               except select entry_no from queue_unused_entries
                      where concert_id = b.concert_id and entry_no between b.from_no and b.upto
            ) missing
            on conflict do nothing
            returning concert_id)
         select b.concert_id, b.upto,
                (select count(*) from released r where r.concert_id = b.concert_id)
         from bounds b"
    )
}
