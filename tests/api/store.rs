//! The event store itself: round trips, optimistic concurrency, and the
//! command pipeline writing the same streams postgres-es reads.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use concert::aggregates::{Seat, SeatCommand, SeatEvent};
use concert::event_store::{Lane, Pipeline, Projector, COMMITS_CHANNEL};
use concert::ids::{DateId, ReservationId, SeatId, UserId};
use concert::money::Won;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::AggregateError;
use cqrs_es::EventStore;
use postgres_es::PostgresEventRepository;
use sqlx::postgres::PgListener;

use crate::helpers::{database_url_of, fresh_database, spawn_app, store_as_another_writer};

fn hold(reservation_id: ReservationId) -> SeatCommand {
    let now = chrono::Utc::now();
    SeatCommand::HoldSeat {
        reservation_id,
        user_id: UserId::new(),
        date_id: DateId::new(),
        seat_no: 1,
        price: Won(1000),
        now,
        until: now + chrono::Duration::minutes(5),
    }
}

#[tokio::test]
async fn the_service_s_sessions_end_a_transaction_left_idle_for_15_seconds() {
    // What frees the row locks of an instance frozen mid-transaction.
    let url = database_url_of(&fresh_database().await);
    let pool = concert::db::connect(&url, 1).await.unwrap();
    let idle: String = sqlx::query_scalar("show idle_in_transaction_session_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(idle, "15s");
}

#[tokio::test]
async fn events_round_trip_through_the_store() {
    let pool = fresh_database().await;
    let cqrs = postgres_es::postgres_cqrs::<Seat>(pool.clone(), vec![], ());
    let seat_id = SeatId::new().to_string();
    let reservation_id = ReservationId::new();

    cqrs.execute(&seat_id, hold(reservation_id)).await.unwrap();
    cqrs.execute(&seat_id, SeatCommand::ReleaseHold { reservation_id })
        .await
        .unwrap();

    let store = PersistedEventStore::<PostgresEventRepository, Seat>::new_event_store(
        PostgresEventRepository::new(pool),
    );
    let events = store.load_events(&seat_id).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        matches!(events[0].payload, SeatEvent::SeatHeld { reservation_id: r, .. } if r == reservation_id)
    );
    assert_eq!(
        events[1].payload,
        SeatEvent::HoldReleased { reservation_id }
    );
    assert_eq!((events[0].sequence, events[1].sequence), (1, 2));
}

#[tokio::test]
async fn two_concurrent_holds_on_one_seat_commit_exactly_one() {
    let pool = fresh_database().await;
    let cqrs = std::sync::Arc::new(postgres_es::postgres_cqrs::<Seat>(pool.clone(), vec![], ()));
    let seat_id = SeatId::new().to_string();

    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (cqrs, seat_id) = (cqrs.clone(), seat_id.clone());
            tokio::spawn(async move { cqrs.execute(&seat_id, hold(ReservationId::new())).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }

    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 1);
    assert!(outcomes.iter().any(|outcome| matches!(
        outcome,
        Err(AggregateError::AggregateConflict)
            | Err(AggregateError::UserError(
                concert::aggregates::SeatError::SeatUnavailable
            ))
    )));
    let stored: i64 = sqlx::query_scalar("select count(*) from events where aggregate_id = $1")
        .bind(&seat_id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn the_pipeline_and_postgres_es_read_each_others_streams() {
    let pool = fresh_database().await;
    let projector = Arc::new(Projector::new(pool.clone(), vec![]));
    let lane = Lane {
        projector,
        snapshot_every: None,
        after_commit: None,
        signal: None,
    };
    let pipeline = Pipeline::<Seat>::start(pool.clone(), lane, std::time::Duration::from_secs(60));
    let cqrs = postgres_es::postgres_cqrs::<Seat>(pool.clone(), vec![], ());
    let seat_id = SeatId::new().to_string();
    let first = ReservationId::new();

    // The pipeline writes; postgres-es loads those events and appends after them.
    pipeline
        .execute(&seat_id, hold(first), HashMap::new())
        .await
        .unwrap();
    pipeline
        .execute(
            &seat_id,
            SeatCommand::ReleaseHold {
                reservation_id: first,
            },
            HashMap::new(),
        )
        .await
        .unwrap();
    cqrs.execute(&seat_id, hold(ReservationId::new()))
        .await
        .unwrap();

    // The pipeline decides on postgres-es's event: the seat is held again.
    let refused = pipeline
        .execute(&seat_id, hold(ReservationId::new()), HashMap::new())
        .await;
    assert!(
        matches!(refused, Err(AggregateError::UserError(_))),
        "{refused:?}"
    );
    let store = PersistedEventStore::<PostgresEventRepository, Seat>::new_event_store(
        PostgresEventRepository::new(pool),
    );
    let sequences: Vec<usize> = store
        .load_events(&seat_id)
        .await
        .unwrap()
        .iter()
        .map(|event| event.sequence)
        .collect();
    assert_eq!(sequences, [1, 2, 3]);
}

#[tokio::test]
async fn a_commit_wakes_the_listeners_after_it_and_an_outside_append_does_not() {
    let app = spawn_app().await;
    let mut listener = PgListener::connect_with(&app.pool).await.unwrap();
    listener.listen(COMMITS_CHANNEL).await.unwrap();
    let user = uuid::Uuid::new_v4();

    assert_eq!(app.charge(user, 500).await.status, 200);

    let woken = tokio::time::timeout(Duration::from_secs(5), listener.recv()).await;
    assert!(
        matches!(woken, Ok(Ok(_))),
        "the service notifies after its commit"
    );
    // Nothing else is committing: whatever the charge raised has arrived.
    while tokio::time::timeout(Duration::from_millis(300), listener.recv())
        .await
        .is_ok()
    {}
    // The append itself sends nothing (its commit would hold the
    // database-wide notification lock until flushed).
    let mut tx = app.pool.begin().await.unwrap();
    let payload = serde_json::json!({"Charged": {"amount": 1, "balance": 1}});
    store_as_another_writer(&mut tx, ("Wallet", "outside", 1), &payload, "Charge").await;
    tx.commit().await.unwrap();
    let quiet = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(quiet.is_err(), "an append outside the service notified");
}
