//! Concerts and their dates, with how many seats of each date are still free
//! (counted by `available_seats`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{stream_uuid, Projection};
use crate::aggregates::{Concert, ConcertEvent};
use crate::money::Won;

/// Writes `concerts` and `concert_dates`.
pub struct AvailableDates;

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
    pub price: Won,
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
        let prices: Vec<Won> = dates.iter().map(|date| date.price).collect();
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
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Up to `limit` concerts older than `before` (all when `None`), newest
/// first (concert ids are time-ordered): the catalogue a page at a time.
pub async fn concerts_page(
    pool: &PgPool,
    before: Option<Uuid>,
    limit: i64,
) -> sqlx::Result<Vec<ConcertRow>> {
    // Two statements rather than `$1 is null or ...`, so that each keeps a
    // plan of its own: a walk down the key from its end, or from `before`.
    match before {
        None => sqlx::query_as("select concert_id, title from concerts order by concert_id desc limit $1")
            .bind(limit)
            .fetch_all(pool)
            .await,
        Some(before) => sqlx::query_as(
            "select concert_id, title from concerts where concert_id < $1 order by concert_id desc limit $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(pool)
        .await,
    }
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
