//! The projector's offsets: a batch moves the offsets of all its streams
//! together, and a stream whose earlier events were stored without their
//! read models gets those applied first.

use concert::aggregates::WalletEvent;
use concert::event_store::StreamEvents;
use concert::ids::{ChargeId, PaymentId, ReservationId, SeatId};
use concert::money::Won;
use concert::projections::balances;
use concert::state::Projectors;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{fresh_database, store_as_another_writer};

fn charged(amount: i64, balance: i64) -> WalletEvent {
    WalletEvent::Charged {
        charge_id: ChargeId::new(),
        amount: Won(amount),
        balance: Won(balance),
    }
}

/// A payment stored in the log only, as a tool or an older release would.
async fn store_payment_without_read_models(pool: &PgPool, wallet: &str, sequence: i64) {
    let payload = json!({"Paid": {
        "payment_id": PaymentId::new(),
        "reservation_id": ReservationId::new(),
        "seat_id": SeatId::new(),
        "amount": 10,
        "balance": 0,
        "paid_at": chrono::Utc::now(),
    }});
    let mut tx = pool.begin().await.unwrap();
    store_as_another_writer(&mut tx, ("Wallet", wallet, sequence), &payload, "Pay").await;
    tx.commit().await.unwrap();
}

async fn offsets_and_payments(pool: &PgPool, wallet: &str) -> (Option<i64>, i64) {
    sqlx::query_as(
        "select (select last_sequence from projection_offsets
                 where aggregate_type = 'Wallet' and aggregate_id = $1),
                (select count(*) from payments where user_id = $1::uuid)",
    )
    .bind(wallet)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_batch_moves_each_streams_offset_and_applies_the_events_it_had_missed_first() {
    let pool = fresh_database().await;
    let wallets = Projectors::new(&pool).wallets;
    let [new, current, unprojected, behind] = [(); 4].map(|_| Uuid::new_v4().to_string());
    // `current` and `behind` have their first event applied; `unprojected`'s
    // first and `behind`'s second event are in the log only.
    let mut tx = pool.begin().await.unwrap();
    for wallet in [&current, &behind] {
        wallets
            .project_in(&mut tx, wallet, &[(1, charged(100, 100))])
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    store_payment_without_read_models(&pool, &unprojected, 1).await;
    store_payment_without_read_models(&pool, &behind, 2).await;
    // Each event states the balance after it: a repeat that was applied
    // again would leave the repeat's balance in the read model.
    let batch = |balance| {
        [
            (new.clone(), 1),
            (current.clone(), 2),
            (unprojected.clone(), 2),
            (behind.clone(), 3),
        ]
        .map(|(aggregate_id, sequence)| StreamEvents {
            aggregate_id,
            events: vec![(sequence, charged(5, balance))],
        })
    };

    for balance in [5, 999] {
        // The second time, every event is one the read models have seen.
        let mut tx = pool.begin().await.unwrap();
        wallets
            .project_batch(&mut tx, &batch(balance))
            .await
            .unwrap();
        tx.commit().await.unwrap();

        for wallet in [&new, &current, &unprojected, &behind] {
            let stated = balances::balance_of(&pool, wallet.parse().unwrap()).await;
            assert_eq!(stated.unwrap(), Won(5), "the balance of {wallet}");
        }

        assert_eq!(offsets_and_payments(&pool, &new).await, (Some(1), 0));
        assert_eq!(offsets_and_payments(&pool, &current).await, (Some(2), 0));
        assert_eq!(
            offsets_and_payments(&pool, &unprojected).await,
            (Some(2), 1)
        );
        assert_eq!(offsets_and_payments(&pool, &behind).await, (Some(3), 1));
    }
}
