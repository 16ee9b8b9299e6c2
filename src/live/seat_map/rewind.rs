//! A map's first read, put back to the position the feed has handed to the
//! maps: the read model may already show commits the feed brings after it
//! (another instance's, a moment ago), which a snapshot named by that
//! position must not hold and which the feed then brings once.

use std::collections::HashMap;

use sqlx::PgPool;
use uuid::Uuid;

use super::super::changes::SeatStatus;
use super::seats::Seats;

/// Most events past the position a load puts back; a feed further behind
/// leaves the map as the read model shows it, and a change may come twice.
const REWIND_MOST: i64 = 10_000;

/// One of this instance's own commits of a seat, kept a few seconds so
/// that a map read for the first time still shows it at once.
#[derive(Debug, Clone, Copy)]
pub struct OwnCommit {
    /// Known for a hold; otherwise the seat is looked for in the map.
    pub date_id: Option<Uuid>,
    pub seat_id: Uuid,
    pub sequence: i64,
    pub status: SeatStatus,
}

/// Puts back each seat of `seats` whose events go past `position` (or are
/// not positioned yet) as the log stood there: the status and sequence of
/// its last event up to it, free before any. `own` commits among those
/// events show again at once, ahead of the log, as they did before the read.
pub async fn rewind(
    seats: &mut Seats,
    pool: &PgPool,
    position: i64,
    own: &[OwnCommit],
) -> sqlx::Result<()> {
    let Some(later) = seat_events_after(pool, position).await? else {
        return Ok(());
    };
    let first_later = first_later_of_each_seat(seats, later);
    if first_later.is_empty() {
        return Ok(());
    }
    for (seat_id, sequence, status) in last_before(pool, &first_later).await? {
        seats.put_back(seat_id, sequence, status);
    }
    for commit in own {
        if first_later
            .get(&commit.seat_id)
            .is_some_and(|first| commit.sequence >= *first)
        {
            seats.set_own(commit.seat_id, commit.sequence, commit.status);
        }
    }
    Ok(())
}

/// Every seat event after `position` or not positioned yet, as (seat,
/// sequence); `None` when there are more than `REWIND_MOST`. Each branch
/// reads a bounded range of an index.
async fn seat_events_after(
    pool: &PgPool,
    position: i64,
) -> sqlx::Result<Option<Vec<(String, i64)>>> {
    // The log's end is an index probe whatever the plan; `exists (... where
    // position > $1)` became a scan of the whole log once the statement's
    // plan turned generic (0.1 s a load at 300,000 events).
    if crate::event_log::last_position(pool).await? > position + REWIND_MOST {
        return Ok(None);
    }
    let later: Vec<(String, i64)> = sqlx::query_as(
        "(select aggregate_id, sequence from events
          where position > $1 and position <= $1 + $2 and aggregate_type = 'Seat')
         union all
         (select aggregate_id, sequence from events
          where position is null and aggregate_type = 'Seat' limit $2 + 1)",
    )
    .bind(position)
    .bind(REWIND_MOST)
    .fetch_all(pool)
    .await?;
    Ok((later.len() <= REWIND_MOST as usize).then_some(later))
}

/// The first of `later`'s sequences of each seat that `seats` has.
fn first_later_of_each_seat(seats: &Seats, later: Vec<(String, i64)>) -> HashMap<Uuid, i64> {
    let mut first_later: HashMap<Uuid, i64> = HashMap::new();
    for (seat_id, sequence) in later {
        if let Some(seat_id) = Uuid::parse_str(&seat_id)
            .ok()
            .filter(|id| seats.contains(*id))
        {
            let first = first_later.entry(seat_id).or_insert(sequence);
            *first = (*first).min(sequence);
        }
    }
    first_later
}

/// Each seat's last event before its first later one, by key: (seat,
/// sequence, status); sequence 0 and free before any. A seat whose last
/// event is of a kind the map does not know is left out.
async fn last_before(
    pool: &PgPool,
    first_later: &HashMap<Uuid, i64>,
) -> sqlx::Result<Vec<(Uuid, i64, SeatStatus)>> {
    let (seat_ids, firsts): (Vec<String>, Vec<i64>) = first_later
        .iter()
        .map(|(seat_id, first)| (seat_id.to_string(), *first))
        .unzip();
    let rows: Vec<(String, Option<i64>, Option<String>)> = sqlx::query_as(
        "select u.id, p.sequence, p.event_type
         from unnest($1::text[], $2::bigint[]) as u(id, first_later)
         left join lateral (
             select sequence, event_type from events
             where aggregate_type = 'Seat' and aggregate_id = u.id and sequence < u.first_later
             order by sequence desc limit 1) p on true",
    )
    .bind(&seat_ids)
    .bind(&firsts)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(seat_id, sequence, event_type)| {
            let status = match event_type.as_deref() {
                None => SeatStatus::Free,
                Some(event_type) => SeatStatus::after(event_type)?,
            };
            Some((
                Uuid::parse_str(&seat_id).ok()?,
                sequence.unwrap_or(0),
                status,
            ))
        })
        .collect())
}
