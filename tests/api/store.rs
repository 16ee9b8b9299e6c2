//! The event store itself: round trips, optimistic concurrency, and the
//! command pipeline writing the same streams postgres-es reads.

use std::collections::HashMap;
use std::sync::Arc;

use concert::aggregates::{Seat, SeatCommand, SeatEvent};
use concert::event_store::{Lane, Pipeline, Projector};
use concert::ids::{DateId, ReservationId, SeatId, UserId};
use concert::money::Won;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::AggregateError;
use cqrs_es::EventStore;
use postgres_es::PostgresEventRepository;

use crate::helpers::fresh_database;

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
    };
    let pipeline = Pipeline::<Seat>::start(pool.clone(), lane);
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
