//! Whether a concert has anything left to sell: a seat, free or held, of a
//! date that has not begun. Once nothing is, nothing ever will be again (a
//! sold seat stays sold, a begun date stays begun), so the people still in
//! its line are told (`sold_out` in the token's body) rather than left to
//! wait for admissions that can buy nothing.
//!
//! Read from the read models, at most once a second per concert while
//! something is left (every 0.1 s while seats are being sold), and never
//! again once nothing is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::lock;

/// How long a read that found a seat left answers for its concert.
const LEFT_FRESH: Duration = Duration::from_secs(1);
/// How long it answers once a seat was sold after it: a sale may be the
/// last, but looking again at every sale of a flash sale would read once
/// per sale.
const LEFT_FRESH_AFTER_SALE: Duration = Duration::from_millis(100);
/// Concerts remembered at most; past it the memory is emptied.
const MOST_CONCERTS: usize = 10_000;

#[derive(Default)]
pub struct SoldOut {
    /// Per concert: sold out, or when a seat was last found left.
    known: Mutex<HashMap<Uuid, Known>>,
    /// Per concert, held while reading it, so that the callers a stale
    /// answer sends to the database at once wait for one read instead of
    /// each making its own (10,000 standing streams made 200 reads a second).
    reading: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
    /// How many sales were seen: a read begun before one is kept only
    /// `LEFT_FRESH_AFTER_SALE`.
    sales_seen: AtomicU64,
}

#[derive(Clone, Copy)]
enum Known {
    SoldOut,
    /// Seats were left; answered so until `until`. `sale_since`: a sale
    /// seen since the read (or during it) cut that short, and may have
    /// sold the last seat.
    Left {
        until: Instant,
        sale_since: bool,
    },
}

impl SoldOut {
    /// Whether `concert_id` has no seat left to sell at `now`.
    pub async fn of(
        &self,
        pool: &PgPool,
        concert_id: Uuid,
        now: DateTime<Utc>,
    ) -> sqlx::Result<bool> {
        if let Some(sold_out) = self.known(concert_id) {
            return Ok(sold_out);
        }
        let reading = {
            let mut reading = lock(&self.reading);
            if reading.len() >= MOST_CONCERTS {
                reading.clear();
            }
            reading.entry(concert_id).or_default().clone()
        };
        let _reading = reading.lock().await;
        // Read meanwhile by the caller this one waited for.
        if let Some(sold_out) = self.known(concert_id) {
            return Ok(sold_out);
        }
        let read = Instant::now();
        let sales_seen = self.sales_seen.load(Ordering::Acquire);
        // Bounded: every look at this concert, streams' and requests', waits
        // for this read.
        let look = any_seat_left(pool, concert_id, now);
        let left = crate::db::answered_within(crate::db::SHORT_READ_WITHIN, look).await?;
        let sale_since = self.sales_seen.load(Ordering::Acquire) != sales_seen;
        let fresh_for = if sale_since {
            LEFT_FRESH_AFTER_SALE
        } else {
            LEFT_FRESH
        };
        let mut known = lock(&self.known);
        if known.len() >= MOST_CONCERTS {
            known.clear();
        }
        known.insert(
            concert_id,
            if left {
                Known::Left {
                    until: read + fresh_for,
                    sale_since,
                }
            } else {
                Known::SoldOut
            },
        );
        Ok(!left)
    }

    /// A seat was sold (here or, through the log, anywhere): any concert
    /// may have sold out with it, so what the last reads found left is
    /// answered `LEFT_FRESH_AFTER_SALE` more at most, not up to a second.
    pub fn seat_sold(&self) {
        self.sales_seen.fetch_add(1, Ordering::AcqRel);
        let soon = Instant::now() + LEFT_FRESH_AFTER_SALE;
        for known in lock(&self.known).values_mut() {
            if let Known::Left { until, sale_since } = known {
                *until = (*until).min(soon);
                *sale_since = true;
            }
        }
    }

    /// When whoever just passed on "seats are left" for `concert_id` (a
    /// standing stream) should look again, sooner than its usual look: once
    /// the answer ends, when a sale since may have made it stale; at once,
    /// when a read since found the concert sold out. `None` otherwise.
    pub fn look_again_at(&self, concert_id: Uuid) -> Option<Instant> {
        match lock(&self.known).get(&concert_id)? {
            Known::Left {
                until,
                sale_since: true,
            } => Some(*until),
            Known::SoldOut => Some(Instant::now()),
            Known::Left { .. } => None,
        }
    }

    /// What a fresh enough read said of `concert_id`.
    fn known(&self, concert_id: Uuid) -> Option<bool> {
        match lock(&self.known).get(&concert_id)? {
            Known::SoldOut => Some(true),
            Known::Left { until, .. } if Instant::now() < *until => Some(false),
            Known::Left { .. } => None,
        }
    }
}

/// Whether a seat of `concert_id` is free or held on a date after `now`.
///
/// Through the two partial indexes of those states, free seats by date and
/// held reservations (a seat is held exactly while its reservation is):
/// asking the seats for any not sold read every row of a date sold but for
/// its holds, 73 ms for a million seats, where this takes 0.1 ms.
async fn any_seat_left(pool: &PgPool, concert_id: Uuid, now: DateTime<Utc>) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (
                 select 1 from concert_dates d
                 join seats s on s.date_id = d.date_id and s.status = 'free'
                 where d.concert_id = $1 and d.starts_at > $2)
             or exists (
                 select 1 from reservations r
                 join concert_dates d on d.date_id = r.date_id
                 where r.status = 'held' and d.concert_id = $1 and d.starts_at > $2)",
    )
    .bind(concert_id)
    .bind(now)
    .fetch_one(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn left_until(until: Instant) -> Known {
        Known::Left {
            until,
            sale_since: false,
        }
    }

    fn knowing(concert_id: Uuid, known: Known) -> SoldOut {
        let sold_out = SoldOut::default();
        lock(&sold_out.known).insert(concert_id, known);
        sold_out
    }

    #[test]
    fn sold_out_is_known_for_good_and_seats_left_for_a_second() {
        let concert = Uuid::now_v7();

        assert_eq!(knowing(concert, Known::SoldOut).known(concert), Some(true));
        let fresh = knowing(concert, left_until(Instant::now() + LEFT_FRESH));
        assert_eq!(fresh.known(concert), Some(false));
        assert_eq!(fresh.known(Uuid::now_v7()), None);
        let stale = Instant::now() - Duration::from_millis(1);
        assert_eq!(knowing(concert, left_until(stale)).known(concert), None);
    }

    #[test]
    fn a_sale_makes_seats_left_stale_soon_and_keeps_sold_out() {
        let (left, over) = (Uuid::now_v7(), Uuid::now_v7());
        let sold_out = knowing(left, left_until(Instant::now() + LEFT_FRESH));
        lock(&sold_out.known).insert(over, Known::SoldOut);
        assert_eq!(sold_out.look_again_at(left), None, "no sale yet");

        sold_out.seat_sold();

        let Some(Known::Left { until, .. }) = lock(&sold_out.known).get(&left).copied() else {
            panic!("seats left are still known for a moment");
        };
        assert!(until <= Instant::now() + LEFT_FRESH_AFTER_SALE);
        // Whoever was told seats are left looks again once that ends, and
        // at once where a read found the concert sold out meanwhile.
        assert_eq!(sold_out.look_again_at(left), Some(until));
        assert!(sold_out
            .look_again_at(over)
            .is_some_and(|at| at <= Instant::now()));
        assert_eq!(sold_out.known(over), Some(true));
    }
}
