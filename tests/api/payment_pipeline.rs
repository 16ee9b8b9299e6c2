//! The payment pipeline: a payment's debit, sale and ticket expiry are
//! stored in one commit or not at all, payments share batches, and one that
//! loses a race on one of its streams is decided again while the rest of its
//! batch commits.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use concert::aggregates::{
    QueueTicket, Seat, SeatCommand, SeatError, Wallet, WalletCommand, WalletError, WalletEvent,
};
use concert::event_store::{
    Lane, PaymentLanes, PaymentPipeline, PaymentRefused, PaymentSteps, Pipeline, Pipelined,
    Projector, Step,
};
use concert::ids::{ChargeId, DateId, PaymentId, ReservationId, SeatId, UserId};
use concert::money::Won;
use concert::state::Projectors;
use cqrs_es::AggregateError;
use futures::future::join_all;
use serde_json::{json, Value};
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::helpers::{
    assert_replay_rebuilds_the_read_models, commits_and_events, fresh_database, json_of,
    largest_batch_seen, lost_races, spawn_app, store_as_another_writer, Concert, TestApp, User,
};

/// Long enough for requests sent to reach the pipeline and wait there.
const SETTLE: Duration = Duration::from_millis(400);
/// Batches of one pipeline that run at once.
const SLOTS: usize = concert::event_store::BATCHES_IN_FLIGHT;
const PRICE: i64 = 1_000;
const CHARGED: i64 = 10_000;

#[tokio::test]
async fn a_payment_refused_by_any_of_its_steps_stores_none_of_them() {
    let pool = fresh_database().await;
    let (payments, seats, wallets) = pipelines(&pool);
    let user = UserId::new().to_string();
    let charge = WalletCommand::Charge {
        charge_id: ChargeId::new(),
        amount: Won(CHARGED),
    };
    wallets
        .execute(&user, charge, HashMap::new())
        .await
        .unwrap();
    let now = Utc::now();
    let lapsed = hold(&seats, now - chrono::Duration::minutes(10)).await;
    let held = hold(&seats, now).await;

    // The wallet could pay, but the hold has lapsed: the debit is not stored.
    let refused_by_seat = payments.execute(payment(&user, &lapsed, PRICE)).await;
    // The seat could be sold, but the wallet cannot pay: the sale is not stored.
    let refused_by_wallet = payments.execute(payment(&user, &held, 2 * CHARGED)).await;
    let paid = payments
        .execute(payment(&user, &held, PRICE))
        .await
        .unwrap();

    assert!(
        matches!(
            refused_by_seat,
            Err(AggregateError::UserError(PaymentRefused::Seat(
                SeatError::HoldLapsed { .. }
            )))
        ),
        "{refused_by_seat:?}"
    );
    assert!(
        matches!(
            refused_by_wallet,
            Err(AggregateError::UserError(PaymentRefused::Wallet(
                WalletError::InsufficientBalance { .. }
            )))
        ),
        "{refused_by_wallet:?}"
    );
    assert_eq!(event_types(&pool, "Seat", &lapsed.0).await, ["SeatHeld"]);
    assert_eq!(
        event_types(&pool, "Seat", &held.0).await,
        ["SeatHeld", "SeatSold"]
    );
    assert_eq!(
        event_types(&pool, "Wallet", &user).await,
        ["Charged", "Paid"]
    );
    assert!(
        matches!(paid.debit[..], [WalletEvent::Paid { balance, .. }] if balance == Won(CHARGED - PRICE))
    );
    assert_eq!(paid.sale.len(), 1);
}

#[tokio::test]
async fn racing_payments_share_batches_and_each_is_one_commit_a_replay_rebuilds() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 30, PRICE).await;
    let buyers = buyers(&app, &concert, 30).await;

    let answers = join_all(buyers.iter().map(|buyer| pay(&app, buyer))).await;

    assert_eq!(answers, [201; 30]);
    for buyer in &buyers {
        assert_eq!(app.balance(buyer.user.user_id).await, CHARGED - PRICE);
    }
    let metrics = app.get_root("/metrics").await.text().await.unwrap();
    assert!(
        largest_batch_seen(&metrics, "Payment") > 1.0,
        "no two payments shared a batch:\n{metrics}"
    );
    let (commits, sales) = commits_and_events(&app.pool, "SeatSold").await;
    assert!(commits < sales, "{sales} sales in {commits} commits");
    // Each sale's debit and ticket expiry were stored in the sale's own commit.
    let sales_with_their_debit_and_expiry: i64 = sqlx::query_scalar(
        "select count(*) from events s
         where s.event_type = 'SeatSold'
           and exists (select 1 from events w where w.event_type = 'Paid' and w.transaction_id = s.transaction_id
                         and w.payload->'Paid'->>'payment_id' = s.payload->'SeatSold'->>'payment_id')
           and exists (select 1 from events t where t.event_type = 'TicketExpired' and t.transaction_id = s.transaction_id
                         and t.aggregate_id in (select ticket_id::text from queue_tickets
                                                where user_id::text = s.payload->'SeatSold'->>'user_id'))",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(sales_with_their_debit_and_expiry, 30);
    assert_eq!(count_events(&app.pool, "Refunded").await, 0);
    let statuses: Vec<String> = sqlx::query_scalar("select distinct status from payments")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(statuses, ["completed"]);

    assert_replay_rebuilds_the_read_models(&app.pool).await;
    let report = concert::audit::audit(&app.pool, 100, None, &mut |_, _| {})
        .await
        .expect("the audit runs");
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

#[tokio::test]
async fn a_payment_that_lost_a_race_on_its_wallet_is_decided_again_and_the_rest_of_its_batch_commits(
) {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 10, PRICE).await;
    let buyers = buyers(&app, &concert, SLOTS + 3).await;
    let app = &app;
    let (blocked, rest) = buyers.split_at(SLOTS);
    let (a, b, c) = (&rest[0], &rest[1], &rest[2]);
    let lost_before = lost_races(app, "Payment").await;
    // Other writers charge the first buyers' wallets and A's, uncommitted.
    let mut blockers = Vec::new();
    for buyer in blocked {
        blockers.push(another_writer_charges(&app.pool, &buyer.user).await);
    }
    let second = another_writer_charges(&app.pool, &a.user).await;

    // The first payments fill every slot and wait for their wallets' writers;
    // A, B and C gather meanwhile. When those writers commit, the first
    // payments lose and are decided again together with A, B and C, and that
    // batch then waits for A's writer.
    let paid_one_by_one = join_all(blocked.iter().enumerate().map(|(n, buyer)| async move {
        tokio::time::sleep(SETTLE * n as u32).await;
        pay(app, buyer).await
    }));
    let paid_together = async {
        tokio::time::sleep(SETTLE * SLOTS as u32).await;
        join_all([a, b, c].map(|buyer| pay(app, buyer))).await
    };
    let writers = async {
        tokio::time::sleep(SETTLE * (SLOTS as u32 + 1)).await;
        for writer in blockers {
            writer.commit().await.unwrap();
        }
        tokio::time::sleep(SETTLE).await;
        second.commit().await.unwrap();
    };
    let (one_by_one, together, ()) = tokio::join!(paid_one_by_one, paid_together, writers);

    assert_eq!(one_by_one, [201; SLOTS]);
    assert_eq!(together, [201; 3]);
    // Other tests of this process count too: at least the first payments' and A's races.
    assert!(lost_races(app, "Payment").await - lost_before >= SLOTS as f64 + 1.0);
    let metrics = app.get_root("/metrics").await.text().await.unwrap();
    assert!(largest_batch_seen(&metrics, "Payment") >= 3.0, "{metrics}");
    for buyer in blocked.iter().chain([a]) {
        let wallet = buyer.user.user_id.to_string();
        assert_eq!(
            event_types(&app.pool, "Wallet", &wallet).await,
            ["Charged", "Charged", "Paid"],
            "decided on the other writer's charge"
        );
        assert_eq!(
            app.balance(buyer.user.user_id).await,
            CHARGED + OTHER_CHARGE - PRICE
        );
    }
    for buyer in [b, c] {
        assert_eq!(app.balance(buyer.user.user_id).await, CHARGED - PRICE);
    }
    // A's sale and ticket expiry, taken out with its lost debit, were stored once.
    assert_eq!(
        event_types(&app.pool, "Seat", &a.seat_id).await,
        ["SeatHeld", "SeatSold"]
    );
    assert_eq!(count_events(&app.pool, "SeatSold").await, SLOTS as i64 + 3);
    assert_eq!(
        count_events(&app.pool, "TicketExpired").await,
        SLOTS as i64 + 3
    );
    assert_replay_rebuilds_the_read_models(&app.pool).await;
}

/// Users who each hold a seat of their own and have `CHARGED` to spend.
struct Buyer {
    user: User,
    seat_id: String,
    reservation_id: String,
}

async fn buyers(app: &TestApp, concert: &Concert, count: usize) -> Vec<Buyer> {
    let users = join_all((0..count).map(|_| app.active_user(&concert.concert_id))).await;
    let seats = app.free_seats(&users[0], concert, 0).await;
    let mut buyers = Vec::with_capacity(count);
    for (user, seat) in users.into_iter().zip(seats) {
        let seat_id = seat.seat_id.to_string();
        let reservation: Value = json_of(&app.hold(&user, &seat_id).await);
        app.fund(user.user_id, CHARGED).await;
        buyers.push(Buyer {
            reservation_id: reservation["reservation_id"].as_str().unwrap().to_string(),
            user,
            seat_id,
        });
    }
    buyers
}

async fn pay(app: &TestApp, buyer: &Buyer) -> u16 {
    app.pay(&buyer.user, &buyer.reservation_id).await.status
}

const OTHER_CHARGE: i64 = 5_000;

/// A charge of the user's wallet (its second event) by someone else, stored
/// with its read models in a transaction left open: another instance's
/// batch while it commits.
async fn another_writer_charges(pool: &PgPool, user: &User) -> Transaction<'static, Postgres> {
    let wallet = user.user_id.to_string();
    let payload = json!({"Charged": {
        "charge_id": Uuid::now_v7(),
        "amount": OTHER_CHARGE,
        "balance": CHARGED + OTHER_CHARGE,
    }});
    let event: WalletEvent = serde_json::from_value(payload.clone()).unwrap();
    let mut tx = pool.begin().await.unwrap();
    store_as_another_writer(&mut tx, ("Wallet", &wallet, 2), &payload, "Charge").await;
    Projectors::new(pool)
        .wallets
        .project_in(&mut tx, &wallet, &[(2, event)])
        .await
        .unwrap();
    tx
}

/// How long these pipelines' batches may run (`batching::batch_deadline`).
const DEADLINE: Duration = Duration::from_secs(60);

/// A payment pipeline, and the seats' and wallets' own, on `pool` without read models.
fn pipelines(pool: &PgPool) -> (PaymentPipeline, Pipeline<Seat>, Pipeline<Wallet>) {
    fn lane<A: Pipelined>(pool: &PgPool) -> Lane<A> {
        Lane {
            projector: Arc::new(Projector::new(pool.clone(), vec![])),
            snapshot_every: None,
            after_commit: None,
            signal: None,
        }
    }
    let lanes = PaymentLanes {
        wallets: lane::<Wallet>(pool),
        seats: lane::<Seat>(pool),
        tickets: lane::<QueueTicket>(pool),
    };
    (
        PaymentPipeline::start(pool.clone(), lanes, DEADLINE),
        Pipeline::start(pool.clone(), lane(pool), DEADLINE),
        Pipeline::start(pool.clone(), lane(pool), DEADLINE),
    )
}

/// Holds a new seat from `held_at` for five minutes; its id and the reservation's.
async fn hold(seats: &Pipeline<Seat>, held_at: chrono::DateTime<Utc>) -> (String, ReservationId) {
    let (seat_id, reservation_id) = (SeatId::new().to_string(), ReservationId::new());
    let command = SeatCommand::HoldSeat {
        reservation_id,
        user_id: UserId::new(),
        date_id: DateId::new(),
        seat_no: 1,
        price: Won(PRICE),
        now: held_at,
        until: held_at + chrono::Duration::minutes(5),
    };
    seats
        .execute(&seat_id, command, HashMap::new())
        .await
        .unwrap();
    (seat_id, reservation_id)
}

fn payment(
    wallet: &str,
    (seat_id, reservation_id): &(String, ReservationId),
    amount: i64,
) -> PaymentSteps {
    let payment_id = PaymentId::new();
    let step = |aggregate_id: &str| (aggregate_id.to_string(), HashMap::new());
    let ((debit_id, debit_meta), (sale_id, sale_meta)) = (step(wallet), step(seat_id));
    PaymentSteps {
        debit: Step {
            aggregate_id: debit_id,
            command: WalletCommand::Pay {
                payment_id,
                reservation_id: *reservation_id,
                seat_id: seat_id.parse().map(SeatId).unwrap(),
                amount: Won(amount),
                now: Utc::now(),
            },
            metadata: debit_meta,
        },
        sale: Step {
            aggregate_id: sale_id,
            command: SeatCommand::ConfirmSeat {
                reservation_id: *reservation_id,
                payment_id,
                // No ticket is spent (`spend` is `None`), so none is named.
                ticket_id: None,
                now: Utc::now(),
            },
            metadata: sale_meta,
        },
        spend: None,
    }
}

async fn event_types(pool: &PgPool, aggregate_type: &str, aggregate_id: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select event_type from events where aggregate_type = $1 and aggregate_id = $2 order by sequence",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn count_events(pool: &PgPool, event_type: &str) -> i64 {
    sqlx::query_scalar("select count(*) from events where event_type = $1")
        .bind(event_type)
        .fetch_one(pool)
        .await
        .unwrap()
}
