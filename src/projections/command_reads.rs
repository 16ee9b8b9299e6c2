//! What a hold and a payment read before their command: the token's ticket
//! with the seat or the reservation, for many requests in one query (see
//! `gathered_reads`). Each key is its own lookup (`lateral … limit 1`), so
//! the one generic plan kept for the statement is as cheap for one key as a
//! plan made for it.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::PgConnection;
use uuid::Uuid;

use super::available_seats::SeatRow;
use super::gathered_reads::KeyedRead;
use super::queue_tickets::TicketRow;
use super::reservations::ReservationRow;
use crate::money::Won;

/// A queue token's ticket and the seat it would hold: `(ticket_id, seat_id)`
/// finds the ticket with the seat and its date's concert (`None` when there
/// is no such seat), or nothing when there is no such ticket.
pub struct SeatsForTickets;

/// A queue token's ticket and the reservation it would pay:
/// `(ticket_id, reservation_id)` finds the ticket with the reservation
/// (`None` when there is no such reservation), or nothing when there is no
/// such ticket.
pub struct ReservationsForTickets;

/// Runs `query` over the keys as two arrays (`$1`, `$2`, for `unnest … with
/// ordinality`) and gives each key what `found` makes of its row.
async fn fetch_by_key<R, T>(
    conn: &mut PgConnection,
    query: &str,
    keys: &[(Uuid, Uuid)],
    found: impl Fn(R) -> (i64, T),
) -> sqlx::Result<Vec<Option<T>>>
where
    R: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    let (first, second): (Vec<Uuid>, Vec<Uuid>) = keys.iter().copied().unzip();
    let rows: Vec<R> = sqlx::query_as(query)
        .bind(first)
        .bind(second)
        .fetch_all(conn)
        .await?;
    Ok(in_key_order(keys.len(), rows.into_iter().map(found)))
}

/// Each key's row in the keys' order: a key whose ticket was not found has
/// no row (`n`, from 1, is the key's place).
fn in_key_order<T>(count: usize, rows: impl IntoIterator<Item = (i64, T)>) -> Vec<Option<T>> {
    let mut found: Vec<Option<T>> = (0..count).map(|_| None).collect();
    for (n, row) in rows {
        if let Some(place) = usize::try_from(n - 1).ok().and_then(|i| found.get_mut(i)) {
            *place = Some(row);
        }
    }
    found
}

impl KeyedRead for SeatsForTickets {
    type Key = (Uuid, Uuid);
    type Found = (TicketRow, Option<SeatRow>);
    const BATCH_SIZE_METRIC: &'static str = "concert_hold_read_batch_size";

    async fn read_many(
        &self,
        conn: &mut PgConnection,
        keys: &[(Uuid, Uuid)],
    ) -> sqlx::Result<Vec<Option<Self::Found>>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            n: i64,
            #[sqlx(flatten)]
            ticket: TicketRow,
            seat_id: Option<Uuid>,
            date_id: Option<Uuid>,
            seat_concert_id: Option<Uuid>,
            seat_no: Option<i32>,
            price: Option<Won>,
            seat_status: Option<String>,
            date_starts_at: Option<DateTime<Utc>>,
        }
        const QUERY: &str =
            "select k.n, t.ticket_id, t.concert_id, t.user_id, t.entry_no, t.status, t.expires_at,
                    s.seat_id, s.date_id, s.seat_concert_id, s.seat_no, s.price, s.seat_status,
                    s.date_starts_at
             from unnest($1::uuid[], $2::uuid[]) with ordinality as k(ticket_id, seat_id, n)
             join lateral (select ticket_id, concert_id, user_id, entry_no, status, expires_at
                           from queue_tickets where ticket_id = k.ticket_id limit 1) t on true
             left join lateral (select s.seat_id, s.date_id, d.concert_id as seat_concert_id,
                                       s.seat_no, s.price, s.status as seat_status,
                                       d.starts_at as date_starts_at
                                from seats s join concert_dates d on d.date_id = s.date_id
                                where s.seat_id = k.seat_id limit 1) s on true";
        fetch_by_key(conn, QUERY, keys, |row: Row| {
            // Every seat column is set when the seat exists, none when it does not.
            let seat = (|| {
                Some(SeatRow {
                    seat_id: row.seat_id?,
                    date_id: row.date_id?,
                    concert_id: row.seat_concert_id?,
                    seat_no: row.seat_no?,
                    price: row.price?,
                    status: row.seat_status?,
                    starts_at: row.date_starts_at?,
                })
            })();
            (row.n, (row.ticket, seat))
        })
        .await
    }
}

impl KeyedRead for ReservationsForTickets {
    type Key = (Uuid, Uuid);
    type Found = (TicketRow, Option<ReservationRow>);
    const BATCH_SIZE_METRIC: &'static str = "concert_payment_read_batch_size";

    async fn read_many(
        &self,
        conn: &mut PgConnection,
        keys: &[(Uuid, Uuid)],
    ) -> sqlx::Result<Vec<Option<Self::Found>>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            n: i64,
            #[sqlx(flatten)]
            ticket: TicketRow,
            reservation_id: Option<Uuid>,
            seat_id: Option<Uuid>,
            date_id: Option<Uuid>,
            reservation_concert_id: Option<Uuid>,
            reservation_user_id: Option<Uuid>,
            seat_no: Option<i32>,
            price: Option<Won>,
            reservation_status: Option<String>,
            reservation_expires_at: Option<DateTime<Utc>>,
            payment_id: Option<Uuid>,
        }
        const QUERY: &str = "select k.n, t.ticket_id, t.concert_id, t.user_id, t.entry_no, t.status, t.expires_at,
                    r.reservation_id, r.seat_id, r.date_id, r.concert_id as reservation_concert_id,
                    r.user_id as reservation_user_id, r.seat_no, r.price,
                    r.status as reservation_status, r.expires_at as reservation_expires_at, r.payment_id
             from unnest($1::uuid[], $2::uuid[]) with ordinality as k(ticket_id, reservation_id, n)
             join lateral (select ticket_id, concert_id, user_id, entry_no, status, expires_at
                           from queue_tickets where ticket_id = k.ticket_id limit 1) t on true
             left join lateral (select reservation_id, seat_id, date_id, concert_id, user_id, seat_no,
                                       price, status, expires_at, payment_id from reservations
                                where reservation_id = k.reservation_id limit 1) r on true";
        fetch_by_key(conn, QUERY, keys, |row: Row| {
            // Every column but the two nullable ones is set when the reservation exists.
            let reservation = (|| {
                Some(ReservationRow {
                    reservation_id: row.reservation_id?,
                    seat_id: row.seat_id?,
                    date_id: row.date_id?,
                    concert_id: row.reservation_concert_id,
                    user_id: row.reservation_user_id?,
                    seat_no: row.seat_no?,
                    price: row.price?,
                    status: row.reservation_status?,
                    expires_at: row.reservation_expires_at?,
                    payment_id: row.payment_id,
                })
            })();
            (row.n, (row.ticket, reservation))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_find_their_keys_by_place_and_a_key_without_a_row_finds_nothing() {
        let found = in_key_order(4, [(3, "c"), (1, "a"), (9, "stray"), (0, "stray")]);
        assert_eq!(found, [Some("a"), None, Some("c"), None]);
    }
}
