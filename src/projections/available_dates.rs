//! Concerts and their dates, with how many seats of each date are still free.
//!
//! A date's free seats are counted in `STRIPES` rows by seat number, so holds
//! of different seats of one date rarely wait for each other's commit.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{stream_uuid, Projection};
use crate::aggregates::{Concert, ConcertEvent, Seat, SeatEvent};

/// Writes `concerts`, `concert_dates` and `concert_date_free_seats`.
pub struct AvailableDates;

/// Rows a date's free-seat count is spread over (seat `n` counts in stripe `n % STRIPES`).
const STRIPES: u32 = 16;

/// Seats numbered 1..=`seats` that fall in `stripe`.
fn seats_in_stripe(seats: u32, stripe: u32) -> u32 {
    if stripe == 0 {
        seats / STRIPES
    } else if stripe <= seats {
        (seats - stripe) / STRIPES + 1
    } else {
        0
    }
}

/// One concert in the catalog.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConcertRow {
    pub concert_id: Uuid,
    pub title: String,
}

/// One date of a concert with its free seat count.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DateRow {
    pub date_id: Uuid,
    pub concert_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub price: i64,
    pub total_seats: i32,
    pub available_seats: i32,
}

#[async_trait]
impl Projection<Concert> for AvailableDates {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        aggregate_id: &str,
        event: &ConcertEvent,
    ) -> sqlx::Result<()> {
        let ConcertEvent::ConcertScheduled { title, dates } = event;
        let concert_id = stream_uuid(aggregate_id)?;
        sqlx::query(
            "insert into concerts (concert_id, title) values ($1, $2) on conflict do nothing",
        )
        .bind(concert_id)
        .bind(title)
        .execute(&mut *conn)
        .await?;
        let ids: Vec<Uuid> = dates.iter().map(|date| date.date_id.0).collect();
        let starts: Vec<DateTime<Utc>> = dates.iter().map(|date| date.starts_at).collect();
        let prices: Vec<i64> = dates.iter().map(|date| date.price).collect();
        let seats: Vec<i32> = dates.iter().map(|date| date.seats as i32).collect();
        sqlx::query(
            "insert into concert_dates (date_id, concert_id, starts_at, price, total_seats)
             select date_id, $1, starts_at, price, seats
             from unnest($2::uuid[], $3::timestamptz[], $4::bigint[], $5::integer[]) as d(date_id, starts_at, price, seats)
             on conflict do nothing",
        )
        .bind(concert_id)
        .bind(ids)
        .bind(starts)
        .bind(prices)
        .bind(seats)
        .execute(&mut *conn)
        .await?;
        let (mut stripe_dates, mut stripes, mut free) = (Vec::new(), Vec::new(), Vec::new());
        for date in dates {
            for stripe in 0..STRIPES {
                let seats = seats_in_stripe(date.seats, stripe);
                if seats > 0 {
                    stripe_dates.push(date.date_id.0);
                    stripes.push(stripe as i16);
                    free.push(seats as i32);
                }
            }
        }
        sqlx::query(
            "insert into concert_date_free_seats (date_id, stripe, free)
             select * from unnest($1::uuid[], $2::smallint[], $3::integer[])
             on conflict do nothing",
        )
        .bind(stripe_dates)
        .bind(stripes)
        .bind(free)
        .execute(conn)
        .await?;
        Ok(())
    }
}

#[async_trait]
impl Projection<Seat> for AvailableDates {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        aggregate_id: &str,
        event: &SeatEvent,
    ) -> sqlx::Result<()> {
        let change = match event {
            SeatEvent::SeatHeld { .. } => -1,
            SeatEvent::HoldExpired { .. } | SeatEvent::HoldReleased { .. } => 1,
            SeatEvent::SeatSold { .. } => return Ok(()),
        };
        sqlx::query(&format!(
            "update concert_date_free_seats set free = free + $2
             where (date_id, stripe) = (select date_id, seat_no % {STRIPES} from seats where seat_id = $1)"
        ))
        .bind(stream_uuid(aggregate_id)?)
        .bind(change)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Every concert, newest first (concert ids are time-ordered).
pub async fn list_concerts(pool: &PgPool) -> sqlx::Result<Vec<ConcertRow>> {
    sqlx::query_as("select concert_id, title from concerts order by concert_id desc")
        .fetch_all(pool)
        .await
}

/// Whether any concert exists at all.
pub async fn any_concert(pool: &PgPool) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists (select 1 from concerts)")
        .fetch_one(pool)
        .await
}

/// A date with the sum of its free-seat stripes.
const DATE_COLUMNS: &str = "d.date_id, d.concert_id, d.starts_at, d.price, d.total_seats,
     (select coalesce(sum(f.free), 0)::integer from concert_date_free_seats f where f.date_id = d.date_id) as available_seats";

/// The dates of a concert that start after `now` and still have a free seat, earliest first.
pub async fn bookable_dates(
    pool: &PgPool,
    concert_id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<DateRow>> {
    sqlx::query_as(&format!(
        "select * from (select {DATE_COLUMNS} from concert_dates d where d.concert_id = $1 and d.starts_at > $2) dates
         where available_seats > 0
         order by starts_at, date_id"
    ))
    .bind(concert_id)
    .bind(now)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stripes_of_a_date_add_up_to_its_seats() {
        for seats in [1, 2, 15, 16, 17, 50, 50_000] {
            let counted: u32 = (0..STRIPES)
                .map(|stripe| seats_in_stripe(seats, stripe))
                .sum();
            assert_eq!(counted, seats, "{seats} seats");
            for stripe in 0..STRIPES {
                let by_number = (1..=seats).filter(|n| n % STRIPES == stripe).count() as u32;
                assert_eq!(seats_in_stripe(seats, stripe), by_number);
            }
        }
    }
}
