//! Payments in flight and done: the durable state of the payment process.
//! A payment is `debited` once the wallet paid, then `completed` when its seat
//! is sold or `refunded` when it could not be; a `debited` one left behind by a
//! crash is finished by the scheduler.
//!
//! A payment's debit and sale usually share a commit, and the log orders the
//! events of one commit by aggregate type, the sale first: a debit whose
//! sale is already applied (its reservation confirmed with this payment)
//! comes in `completed`, so a replay in log order ends where the live read
//! model does.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{stream_uuid, Projection};
use crate::aggregates::{Seat, SeatEvent, Wallet, WalletEvent};
use crate::money::Won;

/// Writes `payments`.
pub struct Payments;

/// One payment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub payment_id: Uuid,
    pub user_id: Uuid,
    pub reservation_id: Uuid,
    pub seat_id: Uuid,
    pub amount: Won,
    pub status: String,
}

#[async_trait]
impl Projection<Wallet> for Payments {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        aggregate_id: &str,
        event: &WalletEvent,
    ) -> sqlx::Result<()> {
        match event {
            WalletEvent::Paid {
                payment_id,
                reservation_id,
                seat_id,
                amount,
                paid_at,
                ..
            } => {
                sqlx::query(
                    "insert into payments (payment_id, user_id, reservation_id, seat_id, amount, status, debited_at)
                     values ($1, $2, $3, $4, $5, case when exists (select 1 from reservations r where r.reservation_id = $3 and r.payment_id = $1)
                             then 'completed' else 'debited' end, $6) on conflict do nothing",
                )
                .bind(payment_id.0)
                .bind(stream_uuid(aggregate_id)?)
                .bind(reservation_id.0)
                .bind(seat_id.0)
                .bind(*amount)
                .bind(*paid_at)
                .execute(conn)
                .await?;
            }
            WalletEvent::Refunded { payment_id, .. } => {
                sqlx::query("update payments set status = 'refunded' where payment_id = $1")
                    .bind(payment_id.0)
                    .execute(conn)
                    .await?;
            }
            WalletEvent::Charged { .. } => {}
        }
        Ok(())
    }

    /// The debits of the batch in one statement, then its refunds (rare)
    /// one at a time, so a payment debited and refunded in one batch ends
    /// refunded.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[(&str, &WalletEvent)],
    ) -> sqlx::Result<()> {
        let (mut payments, mut users, mut reservations, mut seats, mut amounts, mut paid) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for (aggregate_id, event) in events {
            if let WalletEvent::Paid {
                payment_id,
                reservation_id,
                seat_id,
                amount,
                paid_at,
                ..
            } = event
            {
                payments.push(payment_id.0);
                users.push(stream_uuid(aggregate_id)?);
                reservations.push(reservation_id.0);
                seats.push(seat_id.0);
                amounts.push(*amount);
                paid.push(*paid_at);
            }
        }
        if !payments.is_empty() {
            sqlx::query(
                "insert into payments (payment_id, user_id, reservation_id, seat_id, amount, status, debited_at)
                 select p.payment_id, p.user_id, p.reservation_id, p.seat_id, p.amount,
                        case when exists (select 1 from reservations r
                                         where r.reservation_id = p.reservation_id and r.payment_id = p.payment_id)
                             then 'completed' else 'debited' end, p.debited_at
                 from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::bigint[], $6::timestamptz[])
                      as p(payment_id, user_id, reservation_id, seat_id, amount, debited_at)
                 on conflict do nothing",
            )
            .bind(payments)
            .bind(users)
            .bind(reservations)
            .bind(seats)
            .bind(amounts)
            .bind(paid)
            .execute(&mut *conn)
            .await?;
        }
        for (aggregate_id, event) in events {
            if matches!(event, WalletEvent::Refunded { .. }) {
                Projection::<Wallet>::apply(self, conn, aggregate_id, event).await?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Projection<Seat> for Payments {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        _aggregate_id: &str,
        event: &SeatEvent,
    ) -> sqlx::Result<()> {
        if let SeatEvent::SeatSold { payment_id, .. } = event {
            sqlx::query("update payments set status = 'completed' where payment_id = $1")
                .bind(payment_id.0)
                .execute(conn)
                .await?;
        }
        Ok(())
    }

    /// Every sale of the batch completes its payment in one statement.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[(&str, &SeatEvent)],
    ) -> sqlx::Result<()> {
        let sold: Vec<Uuid> = events
            .iter()
            .filter_map(|(_, event)| match event {
                SeatEvent::SeatSold { payment_id, .. } => Some(payment_id.0),
                _ => None,
            })
            .collect();
        if !sold.is_empty() {
            sqlx::query("update payments set status = 'completed' where payment_id = any($1)")
                .bind(sold)
                .execute(conn)
                .await?;
        }
        Ok(())
    }
}

/// One payment by id.
pub async fn find_payment(pool: &PgPool, payment_id: Uuid) -> sqlx::Result<Option<PaymentRow>> {
    sqlx::query_as(
        "select payment_id, user_id, reservation_id, seat_id, amount, status from payments where payment_id = $1",
    )
    .bind(payment_id)
    .fetch_optional(pool)
    .await
}

/// Payments debited before `before` whose seat was neither sold nor refunded.
pub async fn unfinished_payments(
    db: impl sqlx::PgExecutor<'_>,
    before: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<PaymentRow>> {
    sqlx::query_as(
        "select payment_id, user_id, reservation_id, seat_id, amount, status from payments
         where status = 'debited' and debited_at < $1 order by debited_at limit $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}
