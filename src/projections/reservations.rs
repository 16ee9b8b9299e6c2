//! Reservations: each hold of a seat, whether it is held, expired or confirmed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{stream_uuid, Projection};
use crate::aggregates::{Seat, SeatEvent};
use crate::money::Won;

/// Writes `reservations`.
pub struct Reservations;

/// One reservation as its holder sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReservationRow {
    pub reservation_id: Uuid,
    pub seat_id: Uuid,
    pub date_id: Uuid,
    pub concert_id: Option<Uuid>,
    pub user_id: Uuid,
    pub seat_no: i32,
    pub price: Won,
    pub status: String,
    pub expires_at: DateTime<Utc>,
    pub payment_id: Option<Uuid>,
}

/// Where a reservation stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    Held,
    Expired,
    Confirmed,
}

impl ReservationStatus {
    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Expired => "expired",
            ReservationStatus::Confirmed => "confirmed",
        }
    }
}

impl ReservationRow {
    /// The reservation's status at `now`. The one place of the rule that a
    /// hold past its deadline is expired, even before the scheduler records it.
    pub fn status_at(&self, now: DateTime<Utc>) -> ReservationStatus {
        match self.status.as_str() {
            "confirmed" => ReservationStatus::Confirmed,
            "held" if self.expires_at > now => ReservationStatus::Held,
            _ => ReservationStatus::Expired,
        }
    }
}

#[async_trait]
impl Projection<Seat> for Reservations {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        aggregate_id: &str,
        event: &SeatEvent,
    ) -> sqlx::Result<()> {
        match event {
            SeatEvent::SeatHeld {
                reservation_id,
                user_id,
                date_id,
                seat_no,
                price,
                held_at,
                until,
            } => {
                sqlx::query(
                    "insert into reservations
                       (reservation_id, seat_id, date_id, concert_id, user_id, seat_no, price, status, held_at, expires_at)
                     values ($1, $2, $3, (select concert_id from concert_dates where date_id = $3), $4, $5, $6, 'held', $7, $8)
                     on conflict do nothing",
                )
                .bind(reservation_id.0)
                .bind(stream_uuid(aggregate_id)?)
                .bind(date_id.0)
                .bind(user_id.0)
                .bind(*seat_no as i32)
                .bind(*price)
                .bind(*held_at)
                .bind(*until)
                .execute(conn)
                .await?;
            }
            SeatEvent::HoldExpired { reservation_id, .. }
            | SeatEvent::HoldReleased { reservation_id } => {
                sqlx::query("update reservations set status = 'expired' where reservation_id = $1 and status = 'held'")
                    .bind(reservation_id.0)
                    .execute(conn)
                    .await?;
            }
            SeatEvent::SeatSold {
                reservation_id,
                payment_id,
                ..
            } => {
                sqlx::query("update reservations set status = 'confirmed', payment_id = $2 where reservation_id = $1")
                    .bind(reservation_id.0)
                    .bind(payment_id.0)
                    .execute(conn)
                    .await?;
            }
        }
        Ok(())
    }

    /// New holds, lapsed or released holds and sales of the batch in one
    /// statement. Its parts do not see one another's rows, so a batch that
    /// changes one reservation twice goes one event at a time.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[(&str, &SeatEvent)],
    ) -> sqlx::Result<()> {
        let mut batch = ReservationChanges::default();
        for (aggregate_id, event) in events {
            if !batch.add(aggregate_id, event)? {
                for (aggregate_id, event) in events {
                    self.apply(conn, aggregate_id, event).await?;
                }
                return Ok(());
            }
        }
        sqlx::query(
            "with held as (
                 insert into reservations
                   (reservation_id, seat_id, date_id, concert_id, user_id, seat_no, price, status, held_at, expires_at)
                 select h.reservation_id, h.seat_id, h.date_id,
                        (select concert_id from concert_dates d where d.date_id = h.date_id),
                        h.user_id, h.seat_no, h.price, 'held', h.held_at, h.expires_at
                 from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::integer[], $6::bigint[],
                             $7::timestamptz[], $8::timestamptz[])
                      as h(reservation_id, seat_id, date_id, user_id, seat_no, price, held_at, expires_at)
                 on conflict do nothing),
             lapsed as (
                 -- Run only when there are lapses: on statistics older than
                 -- a fast-growing table, the planner would walk every held
                 -- reservation here even for none.
                 update reservations set status = 'expired'
                 where cardinality($9::uuid[]) > 0 and reservation_id = any($9) and status = 'held'),
             -- Each sold reservation is found by its own key lookup, then
             -- updated by its row's address: a plan kept from when the table
             -- was small joined the batch to every reservation (9 ms a batch
             -- at 70,000 of them). The address cannot go stale: the seat's
             -- event, appended first in this transaction, keeps every other
             -- writer of this reservation out until the commit.
             sold as (
                 update reservations r set status = 'confirmed', payment_id = d.payment_id
                 from (select found.row_id, s.payment_id
                       from unnest($10::uuid[], $11::uuid[]) as s(reservation_id, payment_id),
                            lateral (select ctid as row_id from reservations
                                     where reservation_id = s.reservation_id limit 1) found) d
                 where r.ctid = d.row_id)
             select 1",
        )
        .bind(&batch.held.reservation_ids)
        .bind(&batch.held.seat_ids)
        .bind(&batch.held.date_ids)
        .bind(&batch.held.user_ids)
        .bind(&batch.held.seat_nos)
        .bind(&batch.held.prices)
        .bind(&batch.held.held_at)
        .bind(&batch.held.expires_at)
        .bind(&batch.lapsed)
        .bind(&batch.sold_reservations)
        .bind(&batch.sold_payments)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// The reservation changes of a batch, as columns.
#[derive(Default)]
struct ReservationChanges {
    held: HeldColumns,
    lapsed: Vec<Uuid>,
    sold_reservations: Vec<Uuid>,
    sold_payments: Vec<Uuid>,
    seen: std::collections::HashSet<Uuid>,
}

#[derive(Default)]
struct HeldColumns {
    reservation_ids: Vec<Uuid>,
    seat_ids: Vec<Uuid>,
    date_ids: Vec<Uuid>,
    user_ids: Vec<Uuid>,
    seat_nos: Vec<i32>,
    prices: Vec<Won>,
    held_at: Vec<DateTime<Utc>>,
    expires_at: Vec<DateTime<Utc>>,
}

impl ReservationChanges {
    /// Adds one event; false when its reservation already changed in the batch.
    fn add(&mut self, aggregate_id: &str, event: &SeatEvent) -> sqlx::Result<bool> {
        let reservation_id = match event {
            SeatEvent::SeatHeld { reservation_id, .. }
            | SeatEvent::HoldExpired { reservation_id, .. }
            | SeatEvent::HoldReleased { reservation_id }
            | SeatEvent::SeatSold { reservation_id, .. } => reservation_id.0,
        };
        if !self.seen.insert(reservation_id) {
            return Ok(false);
        }
        match event {
            SeatEvent::SeatHeld {
                user_id,
                date_id,
                seat_no,
                price,
                held_at,
                until,
                ..
            } => {
                let held = &mut self.held;
                held.reservation_ids.push(reservation_id);
                held.seat_ids.push(stream_uuid(aggregate_id)?);
                held.date_ids.push(date_id.0);
                held.user_ids.push(user_id.0);
                held.seat_nos.push(*seat_no as i32);
                held.prices.push(*price);
                held.held_at.push(*held_at);
                held.expires_at.push(*until);
            }
            SeatEvent::HoldExpired { .. } | SeatEvent::HoldReleased { .. } => {
                self.lapsed.push(reservation_id)
            }
            SeatEvent::SeatSold { payment_id, .. } => {
                self.sold_reservations.push(reservation_id);
                self.sold_payments.push(payment_id.0);
            }
        }
        Ok(true)
    }
}

/// One reservation by id.
pub async fn find_reservation(
    pool: &PgPool,
    reservation_id: Uuid,
) -> sqlx::Result<Option<ReservationRow>> {
    sqlx::query_as(
        "select reservation_id, seat_id, date_id, concert_id, user_id, seat_no, price, status, expires_at, payment_id
         from reservations where reservation_id = $1",
    )
    .bind(reservation_id)
    .fetch_optional(pool)
    .await
}

/// Holds whose deadline has passed (at most `limit`), oldest first, and the
/// earliest deadline still ahead.
pub async fn lapsed_holds(
    db: impl sqlx::PgExecutor<'_>,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<LapsedHolds> {
    // The next deadline rides along, so the scheduler can wake for it.
    let rows: Vec<(Uuid, Uuid, DateTime<Utc>)> = sqlx::query_as(
        "(select seat_id, reservation_id, expires_at from reservations
          where status = 'held' and expires_at <= $1 order by expires_at limit $2)
         union all
         (select seat_id, reservation_id, expires_at from reservations
          where status = 'held' and expires_at > $1 order by expires_at limit 1)",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await?;
    let mut lapsed = LapsedHolds::default();
    for (seat_id, reservation_id, expires_at) in rows {
        if expires_at <= now {
            lapsed.holds.push((seat_id, reservation_id));
        } else {
            lapsed.next_deadline = Some(expires_at);
        }
    }
    Ok(lapsed)
}

/// Held reservations past their deadline, and the earliest deadline still ahead.
#[derive(Debug, Default)]
pub struct LapsedHolds {
    /// `(seat_id, reservation_id)`, earliest deadline first.
    pub holds: Vec<(Uuid, Uuid)>,
    pub next_deadline: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    #[test]
    fn a_hold_past_its_deadline_is_expired_before_the_scheduler_says_so() {
        let now = Utc::now();
        let cases = [
            ("held", 60, ReservationStatus::Held),
            ("held", 0, ReservationStatus::Expired),
            ("held", -60, ReservationStatus::Expired),
            ("expired", 60, ReservationStatus::Expired),
            ("confirmed", -60, ReservationStatus::Confirmed),
        ];
        for (status, expires_in, expected) in cases {
            let row = ReservationRow {
                reservation_id: Uuid::nil(),
                seat_id: Uuid::nil(),
                date_id: Uuid::nil(),
                concert_id: None,
                user_id: Uuid::nil(),
                seat_no: 1,
                price: Won(1),
                status: status.to_string(),
                expires_at: now + Duration::seconds(expires_in),
                payment_id: None,
            };
            assert_eq!(row.status_at(now), expected, "{status} {expires_in}");
        }
    }
}
