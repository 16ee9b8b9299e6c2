//! The catalogue's read models against the log: every date listed is one
//! the log scheduled, with its concert, seats and price, and its seats are
//! listed once each at that price. A seat row added, or a price edited, is
//! what the service would go on to hold and sell.

use std::collections::{HashMap, HashSet};

use sqlx::PgPool;
use uuid::Uuid;

use super::catalogue::ScheduledDate;
use super::Violation;
use crate::ids::DateId;

const AGREE: &str = "read models agree with the log";

/// One row of `concert_dates`.
#[derive(Debug, sqlx::FromRow)]
struct DateRow {
    date_id: Uuid,
    concert_id: Uuid,
    total_seats: i32,
    price: i64,
}

/// The seats listed for one date.
#[derive(Debug, sqlx::FromRow)]
struct SeatsOfDate {
    date_id: Uuid,
    /// The concert of the date's row, if it has one.
    concert_id: Option<Uuid>,
    seats: i64,
    distinct_numbers: i64,
    lowest_price: i64,
    highest_price: i64,
}

/// Names every listed date or date's seats that disagree with the dates
/// the log scheduled. `moved` tells the streams (`Concert/<id>`) with
/// events committed after the walk, whose rows are not compared.
pub(super) async fn compare(
    pool: &PgPool,
    scheduled: &HashMap<DateId, ScheduledDate>,
    moved: impl Fn(&str) -> bool,
    found: &mut Vec<Violation>,
) -> sqlx::Result<()> {
    let dates: Vec<DateRow> =
        sqlx::query_as("select date_id, concert_id, total_seats, price from concert_dates")
            .fetch_all(pool)
            .await?;
    let seats: Vec<SeatsOfDate> = sqlx::query_as(
        "select s.date_id, d.concert_id, count(*) as seats,
                count(distinct s.seat_no) as distinct_numbers,
                min(s.price) as lowest_price, max(s.price) as highest_price
         from seats s left join concert_dates d using (date_id)
         group by s.date_id, d.concert_id",
    )
    .fetch_all(pool)
    .await?;
    let concert_moved = |concert: Uuid| moved(&format!("Concert/{concert}"));
    let mut listed = HashSet::new();
    for row in &dates {
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
                    || date.price.0 != row.price =>
            {
                let detail = format!(
                    "concert_dates lists {} of concert {} with {} seats at {}; the log scheduled it for {} with {} seats at {}",
                    row.date_id, row.concert_id, row.total_seats, row.price,
                    date.concert, date.seats, date.price
                );
                found.push(Violation::new(AGREE, detail, stream));
            }
            Some(_) => {}
        }
    }
    for (date_id, date) in scheduled {
        if !listed.contains(date_id) && !concert_moved(date.concert.0) {
            found.push(Violation::new(
                AGREE,
                format!("no concert_dates row for date {date_id}"),
                vec![format!("Concert/{}", date.concert)],
            ));
        }
    }
    for row in &seats {
        if row.concert_id.is_some_and(concert_moved) {
            continue;
        }
        let Some(date) = scheduled.get(&DateId(row.date_id)) else {
            found.push(Violation::new(
                AGREE,
                format!(
                    "seats lists {} seats of {}, a date the log never scheduled",
                    row.seats, row.date_id
                ),
                vec![],
            ));
            continue;
        };
        let whole = row.seats == i64::from(date.seats) && row.distinct_numbers == row.seats;
        let priced = row.lowest_price == date.price.0 && row.highest_price == date.price.0;
        if !whole || !priced {
            let detail = format!(
                "seats lists {} seats ({} numbers) of date {} at {} to {}; the log scheduled {} at {}",
                row.seats, row.distinct_numbers, row.date_id, row.lowest_price, row.highest_price,
                date.seats, date.price
            );
            found.push(Violation::new(
                AGREE,
                detail,
                vec![format!("Concert/{}", date.concert)],
            ));
        }
    }
    Ok(())
}
