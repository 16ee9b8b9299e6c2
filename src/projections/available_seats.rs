//! Every seat of every date with its status; the free ones are listed by number.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::queue_tickets::TicketRow;
use super::{stream_uuid, Projection};
use crate::aggregates::{Concert, ConcertEvent, Seat, SeatEvent};
use crate::ids::SeatId;
use crate::money::Won;

/// Writes `seats` and `concert_date_free_seats`.
pub struct AvailableSeats;

/// Rows a date's free-seat count is spread over (seat `n` counts in stripe
/// `n % STRIPES`), so holds of different seats of one date rarely wait for
/// each other's commit.
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

/// Seats are inserted in batches of this many rows: one statement each.
const INSERT_BATCH: u32 = 50_000;

/// A free seat as listed to users.
#[derive(Debug, Clone)]
pub struct FreeSeatRow {
    pub seat_id: Uuid,
    pub seat_no: i32,
    pub price: Won,
}

/// A seat with where it is and what it costs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SeatRow {
    pub seat_id: Uuid,
    pub date_id: Uuid,
    pub concert_id: Uuid,
    pub seat_no: i32,
    pub price: Won,
    pub status: String,
    /// When the seat's date begins: no hold lasts beyond it.
    pub starts_at: DateTime<Utc>,
}

impl SeatRow {
    /// Neither held nor sold, as the read model last recorded.
    pub fn is_free(&self) -> bool {
        self.status == "free"
    }
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
impl Projection<Seat> for AvailableSeats {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        aggregate_id: &str,
        event: &SeatEvent,
    ) -> sqlx::Result<()> {
        let (status, change) = seat_change(event);
        // The seat and its stripe of the date's count in one statement.
        sqlx::query(&format!(
            "with seat as (update seats set status = $2 where seat_id = $1 returning date_id, seat_no)
             update concert_date_free_seats f set free = f.free + $3 from seat
             where $3 <> 0 and f.date_id = seat.date_id and f.stripe = seat.seat_no % {STRIPES}"
        ))
        .bind(stream_uuid(aggregate_id)?)
        .bind(status)
        .bind(change)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Every seat of the batch and the stripes of their dates in one
    /// statement: a seat's last status, and each stripe moved by the sum of
    /// its seats' changes (a stripe row is updated once per statement). The
    /// stripes are locked in (date, stripe) order first: two batches that
    /// commit side by side and share stripes would otherwise deadlock, and
    /// PostgreSQL takes a second (`deadlock_timeout`) to break that.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[(&str, &SeatEvent)],
    ) -> sqlx::Result<()> {
        let mut seats: Vec<(&str, &'static str, i32)> = Vec::with_capacity(events.len());
        let mut index = std::collections::HashMap::with_capacity(events.len());
        for (aggregate_id, event) in events {
            let (status, change) = seat_change(event);
            match index.get(aggregate_id) {
                Some(&at) => {
                    let seat: &mut (&str, &str, i32) = &mut seats[at];
                    seat.1 = status;
                    seat.2 += change;
                }
                None => {
                    index.insert(*aggregate_id, seats.len());
                    seats.push((aggregate_id, status, change));
                }
            }
        }
        let ids = seats
            .iter()
            .map(|(seat, ..)| stream_uuid(seat))
            .collect::<sqlx::Result<Vec<Uuid>>>()?;
        let statuses: Vec<&str> = seats.iter().map(|(_, status, _)| *status).collect();
        let changes: Vec<i32> = seats.iter().map(|(.., change)| *change).collect();
        sqlx::query(&format!(
            "with seat as (
                 update seats s set status = c.status
                 from unnest($1::uuid[], $2::text[], $3::integer[]) as c(seat_id, status, change)
                 where s.seat_id = c.seat_id
                 returning s.date_id, s.seat_no % {STRIPES} as stripe, c.change),
             change as (
                 select date_id, stripe, sum(change)::integer as change from seat
                 group by date_id, stripe having sum(change) <> 0),
             locked as (
                 select f.date_id, f.stripe, c.change from concert_date_free_seats f
                 join change c on f.date_id = c.date_id and f.stripe = c.stripe
                 order by f.date_id, f.stripe
                 for update of f)
             update concert_date_free_seats f set free = f.free + l.change
             from locked l
             where f.date_id = l.date_id and f.stripe = l.stripe"
        ))
        .bind(ids)
        .bind(statuses)
        .bind(changes)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Every batch of more than one event, however small: its stripes must
    /// be locked in order, which one statement per event cannot do.
    fn set_based_from(&self) -> usize {
        2
    }
}

/// A seat event's status for the seat and its change to the free count.
fn seat_change(event: &SeatEvent) -> (&'static str, i32) {
    match event {
        SeatEvent::SeatHeld { .. } => ("held", -1),
        SeatEvent::HoldExpired { .. } | SeatEvent::HoldReleased { .. } => ("free", 1),
        SeatEvent::SeatSold { .. } => ("sold", 0),
    }
}

/// A page of free seats together with the ticket that asks for it.
#[derive(Debug)]
pub struct TicketSeatPage {
    /// The ticket of the caller's token.
    pub ticket: TicketRow,
    /// The free seats after the given number; `None` when the date is not one
    /// of the concert's, or when the ticket is not active for that concert
    /// (the page is then not read).
    pub seats: Option<Vec<FreeSeatRow>>,
}

/// The ticket `ticket_id` and, if it is active for `concert_id`, up to `limit`
/// free seats of `date_id` numbered above `after_seat_no`: one round trip for
/// what a seat listing needs. A date that has begun by `now` has none (they
/// are no longer sold). `None` when there is no such ticket.
pub async fn free_seats_for_ticket(
    pool: &PgPool,
    ticket_id: Uuid,
    concert_id: Uuid,
    date_id: Uuid,
    after_seat_no: i32,
    limit: i64,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<TicketSeatPage>> {
    // One row per seat of the page, each with the ticket; one row with null
    // seat columns when the page is empty or not read; none without a ticket.
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        ticket: TicketRow,
        date_read: bool,
        seat_id: Option<Uuid>,
        seat_no: Option<i32>,
        price: Option<Won>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "select t.ticket_id, t.concert_id, t.user_id, t.entry_no, t.status, t.expires_at,
                d.date_id is not null as date_read, s.seat_id, s.seat_no, s.price
         from queue_tickets t
         left join concert_dates d
                on d.concert_id = $2 and d.date_id = $3
               and t.concert_id = $2 and t.status = 'active'
         left join lateral (select seat_id, seat_no, price from seats
                            where date_id = d.date_id and seat_no > $4 and status = 'free'
                              and d.starts_at > $6
                            order by seat_no limit $5) s on true
         where t.ticket_id = $1",
    )
    .bind(ticket_id)
    .bind(concert_id)
    .bind(date_id)
    .bind(after_seat_no)
    .bind(limit)
    .bind(now)
    .fetch_all(pool)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let ticket = first.ticket.clone();
    let seats = first.date_read.then(|| {
        rows.iter()
            .filter_map(|row| {
                Some(FreeSeatRow {
                    seat_id: row.seat_id?,
                    seat_no: row.seat_no?,
                    price: row.price?,
                })
            })
            .collect()
    });
    Ok(Some(TicketSeatPage { ticket, seats }))
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
