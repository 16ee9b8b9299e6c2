//! The dates of the concerts someone lists, kept in memory: a concert's dates
//! never change once it is scheduled, so they are read once, and each date's
//! free seats are counted from its seat map (`seat_map`), which the feed
//! keeps current.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sqlx::PgPool;
use uuid::Uuid;

use super::lock;
use crate::projections::available_dates::DateRow;

/// Concerts remembered at most; past it the memory is emptied and refilled
/// as concerts are listed again.
const MOST_CONCERTS: usize = 10_000;

#[derive(Default)]
pub struct ConcertDates {
    concerts: Mutex<HashMap<Uuid, Arc<[DateRow]>>>,
}

impl ConcertDates {
    /// The concert's dates by start, their `available_seats` not filled in;
    /// empty for a concert that does not exist (not remembered).
    pub async fn of(&self, pool: &PgPool, concert_id: Uuid) -> sqlx::Result<Arc<[DateRow]>> {
        if let Some(dates) = lock(&self.concerts).get(&concert_id) {
            return Ok(dates.clone());
        }
        let rows: Vec<DateRow> = sqlx::query_as(
            "select date_id, concert_id, starts_at, price, total_seats, 0 as available_seats
             from concert_dates where concert_id = $1
             order by starts_at, date_id",
        )
        .bind(concert_id)
        .fetch_all(pool)
        .await?;
        let dates: Arc<[DateRow]> = rows.into();
        if !dates.is_empty() {
            let mut concerts = lock(&self.concerts);
            if concerts.len() >= MOST_CONCERTS {
                concerts.clear();
            }
            concerts.insert(concert_id, dates.clone());
        }
        Ok(dates)
    }
}
