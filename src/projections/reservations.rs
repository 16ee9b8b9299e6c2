//! Reservations: each hold of a seat, whether it is held, expired or confirmed.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{stream_uuid, Projection};
use crate::aggregates::{Seat, SeatEvent};

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
    pub price: i64,
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

/// Holds whose deadline has passed, oldest first: (seat, reservation).
pub async fn lapsed_holds(
    pool: &PgPool,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, Uuid)>> {
    sqlx::query_as(
        "select seat_id, reservation_id from reservations
         where status = 'held' and expires_at <= $1 order by expires_at limit $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
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
                price: 1,
                status: status.to_string(),
                expires_at: now + Duration::seconds(expires_in),
                payment_id: None,
            };
            assert_eq!(row.status_at(now), expected, "{status} {expires_in}");
        }
    }
}
