//! Wallet balances, copied from the balance every wallet event carries.

use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{stream_uuid, Projection};
use crate::aggregates::{Wallet, WalletEvent};

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
        let (WalletEvent::Charged { balance, .. }
        | WalletEvent::Paid { balance, .. }
        | WalletEvent::Refunded { balance, .. }) = event;
        sqlx::query(
            "insert into balances (user_id, balance) values ($1, $2)
             on conflict (user_id) do update set balance = excluded.balance",
        )
        .bind(stream_uuid(aggregate_id)?)
        .bind(*balance)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// A user's balance; 0 for a user never charged.
pub async fn balance_of(pool: &PgPool, user_id: Uuid) -> sqlx::Result<i64> {
    let balance: Option<i64> =
        sqlx::query_scalar("select balance from balances where user_id = $1")
            .bind(user_id)
            .fetch_optional(pool)
            .await?;
    Ok(balance.unwrap_or(0))
}
