//! Every seat of every date with its status; the free ones are listed by number.

use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{stream_uuid, Projection};
use crate::aggregates::{Concert, ConcertEvent, Seat, SeatEvent};
use crate::ids::SeatId;

/// Writes `seats`.
pub struct AvailableSeats;

/// Seats are inserted in batches of this many rows: one statement each.
const INSERT_BATCH: u32 = 50_000;

/// A free seat as listed to users.
#[derive(Debug, Clone)]
pub struct FreeSeatRow {
    pub seat_id: Uuid,
    pub seat_no: i32,
    pub price: i64,
}

/// A seat with where it is and what it costs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SeatRow {
    pub seat_id: Uuid,
    pub date_id: Uuid,
    pub concert_id: Uuid,
    pub seat_no: i32,
    pub price: i64,
    pub status: String,
}

#[async_trait]
impl Projection<Concert> for AvailableSeats {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        _aggregate_id: &str,
        event: &ConcertEvent,
    ) -> sqlx::Result<()> {
        let ConcertEvent::ConcertScheduled { dates, .. } = event;
        for date in dates {
            let mut first = 1;
            while first <= date.seats {
                let last = date.seats.min(first + INSERT_BATCH - 1);
                let numbers: Vec<i32> = (first as i32..=last as i32).collect();
                let ids: Vec<Uuid> = (first..=last)
                    .map(|seat_no| SeatId::of(date.date_id, seat_no).0)
                    .collect();
                sqlx::query(
                    "insert into seats (seat_id, date_id, seat_no, price)
                     select seat_id, $1, seat_no, $2 from unnest($3::uuid[], $4::integer[]) as s(seat_id, seat_no)
                     on conflict do nothing",
                )
                .bind(date.date_id.0)
                .bind(date.price)
                .bind(ids)
                .bind(numbers)
                .execute(&mut *conn)
                .await?;
                first = last + 1;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Projection<Seat> for AvailableSeats {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        aggregate_id: &str,
        event: &SeatEvent,
    ) -> sqlx::Result<()> {
        let status = match event {
            SeatEvent::SeatHeld { .. } => "held",
            SeatEvent::HoldExpired { .. } | SeatEvent::HoldReleased { .. } => "free",
            SeatEvent::SeatSold { .. } => "sold",
        };
        sqlx::query("update seats set status = $2 where seat_id = $1")
            .bind(stream_uuid(aggregate_id)?)
            .bind(status)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// Up to `limit` free seats numbered above `after_seat_no` of a date of the
/// concert, by number; `None` when the concert has no such date. One query.
pub async fn free_seats(
    pool: &PgPool,
    concert_id: Uuid,
    date_id: Uuid,
    after_seat_no: i32,
    limit: i64,
) -> sqlx::Result<Option<Vec<FreeSeatRow>>> {
    // The date joined with its page: no row for an unknown date, one row of
    // nulls for a date without a free seat in the page.
    let rows: Vec<(Option<Uuid>, Option<i32>, Option<i64>)> = sqlx::query_as(
        "select s.seat_id, s.seat_no, s.price from concert_dates d
         left join lateral (select seat_id, seat_no, price from seats
                            where date_id = d.date_id and seat_no > $3 and status = 'free'
                            order by seat_no limit $4) s on true
         where d.concert_id = $1 and d.date_id = $2",
    )
    .bind(concert_id)
    .bind(date_id)
    .bind(after_seat_no)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let seats = rows
        .into_iter()
        .filter_map(|row| match row {
            (Some(seat_id), Some(seat_no), Some(price)) => Some(FreeSeatRow {
                seat_id,
                seat_no,
                price,
            }),
            _ => None,
        })
        .collect();
    Ok(Some(seats))
}

/// One seat with its date's concert.
pub async fn find_seat(pool: &PgPool, seat_id: Uuid) -> sqlx::Result<Option<SeatRow>> {
    sqlx::query_as(
        "select s.seat_id, s.date_id, d.concert_id, s.seat_no, s.price, s.status
         from seats s join concert_dates d on d.date_id = s.date_id
         where s.seat_id = $1",
    )
    .bind(seat_id)
    .fetch_optional(pool)
    .await
}
