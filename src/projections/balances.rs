//! Wallet balances, copied from the balance every wallet event carries.

use std::collections::HashMap;

use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{stream_uuid, Projection};
use crate::aggregates::{Wallet, WalletEvent};
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
