//! The catalogue's read models against the log: every date listed is one
//! the log scheduled, with its concert, start, seats and price, and its seats are
//! listed once each, numbered 1 to its seats, at that price. A seat row
//! added, or a price edited, is what the service would go on to hold and sell.

use std::collections::{HashMap, HashSet};

use sqlx::PgPool;
use uuid::Uuid;

use super::catalogue::ScheduledDate;
use super::Violation;
use crate::ids::DateId;

const AGREE: &str = "read models agree with the log";

/// The rows of `concert_dates`, and of `seats` a group a date.
#[derive(Debug, Default)]
pub(super) struct CatalogueRows {
    dates: Vec<DateRow>,
    seats: Vec<SeatsOfDate>,
}

/// One row of `concert_dates`.
#[derive(Debug, sqlx::FromRow)]
struct DateRow {
    date_id: Uuid,
    concert_id: Uuid,
    total_seats: i32,
    price: i64,
    /// What customers are told, and the end of every hold of its seats.
    starts_at: chrono::DateTime<chrono::Utc>,
}

/// The seats listed for one date.
#[derive(Debug, sqlx::FromRow)]
struct SeatsOfDate {
    date_id: Uuid,
    /// The concert of the date's row, if it has one.
    concert_id: Option<Uuid>,
    seats: i64,
    distinct_numbers: i64,
    lowest_number: i32,
    highest_number: i32,
    lowest_price: i64,
    highest_price: i64,
}

impl CatalogueRows {
    /// Every date, and the seats of each, in one snapshot. The grouped scan
    /// of every seat row takes about 0.6 s a million seats, so the service's
    /// statement time limit is lifted for it.
    pub(super) async fn load(pool: &PgPool) -> sqlx::Result<Self> {
        let mut tx = pool.begin().await?;
        sqlx::query("set transaction isolation level repeatable read, read only")
            .execute(&mut *tx)
            .await?;
        sqlx::query("set local statement_timeout = 0")
            .execute(&mut *tx)
            .await?;
        let dates = sqlx::query_as(
            "select date_id, concert_id, total_seats, price, starts_at from concert_dates",
        )
        .fetch_all(&mut *tx)
        .await?;
        let seats = sqlx::query_as(
            "select s.date_id, d.concert_id, count(*) as seats,
                    count(distinct s.seat_no) as distinct_numbers,
                    min(s.seat_no) as lowest_number, max(s.seat_no) as highest_number,
                    min(s.price) as lowest_price, max(s.price) as highest_price
             from seats s left join concert_dates d using (date_id)
             group by s.date_id, d.concert_id",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Self { dates, seats })
    }

    /// Names every listed date or date's seats that disagree with the dates
    /// the log scheduled. `moved` tells the streams (`Concert/<id>`) with
    /// events committed after the walk, whose rows are not compared.
    pub(super) fn compare(
        &self,
        scheduled: &HashMap<DateId, ScheduledDate>,
        moved: impl Fn(&str) -> bool,
        found: &mut Vec<Violation>,
    ) {
        let concert_moved = |concert: Uuid| moved(&format!("Concert/{concert}"));
        let mut listed = HashSet::new();
        for row in &self.dates {
            listed.insert(DateId(row.date_id));
            if concert_moved(row.concert_id) {
                continue;
            }
            let stream = vec![format!("Concert/{}", row.concert_id)];
            match scheduled.get(&DateId(row.date_id)) {
                None => found.push(Violation::new(
                    AGREE,
                    format!(
                        "concert_dates lists {}, which the log never scheduled",
                        row.date_id
                    ),
                    stream,
                )),
                Some(date)
                    if date.concert.0 != row.concert_id
                        || i64::from(date.seats) != i64::from(row.total_seats)
                        || date.price.0 != row.price
                        || !same_microsecond(date.starts_at, row.starts_at) =>
                {
                    let detail = format!(
                        "concert_dates lists {} of concert {} at {} with {} seats at {}; \
                         the log scheduled it for {} at {} with {} seats at {}",
                        row.date_id,
                        row.concert_id,
                        row.starts_at,
                        row.total_seats,
                        row.price,
                        date.concert,
                        date.starts_at,
                        date.seats,
                        date.price
                    );
                    found.push(Violation::new(AGREE, detail, stream));
                }
                Some(_) => {}
            }
        }
        name_missing(
            scheduled,
            &listed,
            concert_moved,
            "no concert_dates row for",
            found,
        );
        self.compare_seats(scheduled, concert_moved, found);
    }

    fn compare_seats(
        &self,
        scheduled: &HashMap<DateId, ScheduledDate>,
        concert_moved: impl Fn(Uuid) -> bool,
        found: &mut Vec<Violation>,
    ) {
        let mut seated = HashSet::new();
        for row in &self.seats {
            seated.insert(DateId(row.date_id));
            if row.concert_id.is_some_and(&concert_moved) {
                continue;
            }
            let Some(date) = scheduled.get(&DateId(row.date_id)) else {
                let detail = format!(
                    "seats lists {} seats of {}, a date the log never scheduled",
                    row.seats, row.date_id
                );
                found.push(Violation::new(AGREE, detail, Vec::new()));
                continue;
            };
            let numbered = row.distinct_numbers == row.seats
                && row.lowest_number == 1
                && i64::from(row.highest_number) == i64::from(date.seats);
            let whole = row.seats == i64::from(date.seats) && numbered;
            let priced = row.lowest_price == date.price.0 && row.highest_price == date.price.0;
            if !whole || !priced {
                let detail = format!(
                    "seats lists {} seats ({} numbers, {} to {}) of date {} at {} to {}; \
                     the log scheduled {} at {}",
                    row.seats,
                    row.distinct_numbers,
                    row.lowest_number,
                    row.highest_number,
                    row.date_id,
                    row.lowest_price,
                    row.highest_price,
                    date.seats,
                    date.price
                );
                let stream = vec![format!("Concert/{}", date.concert)];
                found.push(Violation::new(AGREE, detail, stream));
            }
        }
        name_missing(
            scheduled,
            &seated,
            &concert_moved,
            "seats lists no seat of",
            found,
        );
    }
}

/// Whether two times are one to PostgreSQL, which keeps microseconds.
fn same_microsecond(
    logged: chrono::DateTime<chrono::Utc>,
    listed: chrono::DateTime<chrono::Utc>,
) -> bool {
    (logged - listed)
        .num_nanoseconds()
        .is_some_and(|apart| apart.abs() < 1_000)
}

/// Names each date the log scheduled that is not `present` in a read model
/// (`what` it lacks, e.g. "no concert_dates row for"), its concert unmoved.
fn name_missing(
    scheduled: &HashMap<DateId, ScheduledDate>,
    present: &HashSet<DateId>,
    concert_moved: impl Fn(Uuid) -> bool,
    what: &str,
    found: &mut Vec<Violation>,
) {
    let missing = scheduled
        .iter()
        .filter(|(date_id, date)| !present.contains(*date_id) && !concert_moved(date.concert.0));
    for (date_id, date) in missing {
        found.push(Violation::new(
            AGREE,
            format!("{what} date {date_id}"),
            vec![format!("Concert/{}", date.concert)],
        ));
    }
}
