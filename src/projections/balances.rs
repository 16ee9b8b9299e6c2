//! Wallet balances, copied from the balance every wallet event carries.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{stream_uuid, Projection};
use crate::aggregates::{Wallet, WalletEvent};
use crate::ids::{ChargeId, PaymentId};
use crate::money::Won;

/// Writes `balances`.
pub struct Balances;

#[async_trait]
impl Projection<Wallet> for Balances {
    async fn apply(
        &self,
        conn: &mut PgConnection,
        aggregate_id: &str,
        event: &WalletEvent,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "insert into balances (user_id, balance) values ($1, $2)
             on conflict (user_id) do update set balance = excluded.balance",
        )
        .bind(stream_uuid(aggregate_id)?)
        .bind(balance_after(event))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Each wallet's last balance of the batch, all in one statement.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[(&str, &WalletEvent)],
    ) -> sqlx::Result<()> {
        let mut last: HashMap<&str, Won> = HashMap::with_capacity(events.len());
        for (aggregate_id, event) in events {
            last.insert(aggregate_id, balance_after(event));
        }
        let (mut users, mut balances) = (Vec::new(), Vec::new());
        for (aggregate_id, balance) in last {
            users.push(stream_uuid(aggregate_id)?);
            balances.push(balance);
        }
        sqlx::query(
            "insert into balances (user_id, balance)
             select * from unnest($1::uuid[], $2::bigint[])
             on conflict (user_id) do update set balance = excluded.balance",
        )
        .bind(users)
        .bind(balances)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// The balance every wallet event carries.
fn balance_after(event: &WalletEvent) -> Won {
    let (WalletEvent::Charged { balance, .. }
    | WalletEvent::Paid { balance, .. }
    | WalletEvent::Refunded { balance, .. }) = event;
    *balance
}

/// A user's balance; 0 for a user never charged.
pub async fn balance_of(pool: &PgPool, user_id: Uuid) -> sqlx::Result<Won> {
    let balance: Option<Won> =
        sqlx::query_scalar("select balance from balances where user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    Ok(balance.unwrap_or(Won::ZERO))
}

/// A charge or a payment that a wallet event records.
#[derive(Debug, Clone, Copy)]
pub enum WalletEntry {
    Charge(ChargeId),
    Payment(PaymentId),
}

impl WalletEntry {
    /// The type of its event and the payload field that names it.
    fn event_and_field(self) -> (&'static str, &'static str, Uuid) {
        match self {
            WalletEntry::Charge(ChargeId(id)) => ("Charged", "charge_id", id),
            WalletEntry::Payment(PaymentId(id)) => ("Paid", "payment_id", id),
        }
    }
}

/// The balance `entry` left in `user_id`'s wallet, as its event states it
/// (the balance now if the log held none, which a charge or payment known
/// to be made always has). A retry of a charge or payment
/// already made answers this, not the balance now: other charges and
/// payments may have moved the wallet since (a repeat racing its first try,
/// or one whose first answer was never kept, answered a later balance).
pub async fn balance_left_by(
    pool: &PgPool,
    user_id: Uuid,
    entry: WalletEntry,
) -> sqlx::Result<Won> {
    let (event_type, field, id) = entry.event_and_field();
    // One wallet's stream, through the events' key; retries are rare.
    let payload: Option<String> = sqlx::query_scalar(
        "select payload::text from events \
         where aggregate_type = 'Wallet' and aggregate_id = $1 and event_type = $2 \
           and payload -> $2 ->> $3 = $4 \
         order by sequence limit 1",
    )
    .bind(user_id.to_string())
    .bind(event_type)
    .bind(field)
    .bind(id.to_string())
    .fetch_optional(pool)
    .await?;
    match payload.and_then(|payload| serde_json::from_str::<WalletEvent>(&payload).ok()) {
        Some(event) => Ok(balance_after(&event)),
        None => balance_of(pool, user_id).await,
    }
}
