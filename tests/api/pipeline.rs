//! The command pipeline under races: commands that share a batch, a stream
//! another writer appended to while a batch was deciding, a batch whose
//! connection is cut, and two instances whose batches touch the same seats.

use std::time::Duration;

use concert::aggregates::SeatEvent;
use concert::state::Projectors;
use concert_client::FreeSeat;
use futures::future::join_all;
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::helpers::{
    assert_replay_rebuilds_the_read_models, largest_batch_seen, lost_races, spawn_app,
    spawn_app_on, store_as_another_writer, test_config, Concert, TestApp, User,
};

/// Long enough for requests sent to reach the pipeline and wait there.
const SETTLE: Duration = Duration::from_millis(400);
/// Batches of one aggregate type that run at once.
const SLOTS: usize = concert::event_store::BATCHES_IN_FLIGHT;

#[tokio::test]
async fn holds_racing_for_a_few_seats_share_batches_and_each_seat_goes_once() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 10, 1_000).await;
    let users = active_users(&app, &concert, 40).await;
    let seats = app.free_seats(&users[0], &concert, 0).await;

    // Four users press "hold" on each of the ten seats at once.
    let answers = join_all(
        users
            .iter()
            .enumerate()
            .map(|(n, user)| hold(&app, user, &seats[n % 10])),
    )
    .await;

    for (seat_index, seat) in seats.iter().enumerate() {
        let on_seat: Vec<u16> = answers
            .iter()
            .enumerate()
            .filter(|(n, _)| n % 10 == seat_index)
            .map(|(_, status)| *status)
            .collect();
        let won = on_seat.iter().filter(|status| **status == 201).count();
        let refused = on_seat.iter().filter(|status| **status == 409).count();
        assert_eq!((won, refused), (1, 3), "seat {}", seat.seat_no);
    }
    assert_eq!(stored_events(&app.pool, "Seat").await, 10);
    let metrics = app.get_root("/metrics").await.text().await.unwrap();
    assert!(
        largest_batch_seen(&metrics, "Seat") > 1.0,
        "no two holds shared a batch:\n{metrics}"
    );
}

#[tokio::test]
async fn a_stream_another_writer_appended_to_is_decided_again_and_the_rest_of_its_batch_commits() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 10, 1_000).await;
    let users = active_users(&app, &concert, SLOTS + 3).await;
    let seats = app.free_seats(&users[0], &concert, 0).await;
    let (x, y, z) = (&seats[SLOTS], &seats[SLOTS + 1], &seats[SLOTS + 2]);
    let lost_before = lost_races(&app, "Seat").await;
    let blockers = occupy_every_slot(&app, &concert, &seats[..SLOTS]).await;
    // Another writer holds X in a transaction it has not committed yet.
    let second = another_writer_holds(&app.pool, &concert, x).await;

    // X, Y and Z gather while every slot waits for the first writers; when
    // those commit, their holds lose and are decided again together with X,
    // Y and Z, and that batch then waits for the second writer, on X.
    let holds_xyz = async {
        tokio::time::sleep(SETTLE * SLOTS as u32).await;
        join_all(
            [
                (&users[SLOTS], x),
                (&users[SLOTS + 1], y),
                (&users[SLOTS + 2], z),
            ]
            .map(|(user, seat)| hold(&app, user, seat)),
        )
        .await
    };
    let writers = async {
        tokio::time::sleep(SETTLE * (SLOTS as u32 + 1)).await;
        blockers.commit().await;
        tokio::time::sleep(SETTLE).await;
        second.commit().await.unwrap();
    };
    let (blocked, holds_xyz, ()) = tokio::join!(
        hold_each(&app, &users[..SLOTS], &seats[..SLOTS]),
        holds_xyz,
        writers
    );

    assert_eq!(blocked, [409; SLOTS], "the first writers got their seats");
    assert_eq!(holds_xyz, [409, 201, 201]);
    // Other tests of this process count too: at least the blocked holds' and X's races.
    assert!(lost_races(&app, "Seat").await - lost_before >= SLOTS as f64 + 1.0);
    // The other writers' holds and ours of Y and Z, nothing else.
    assert_eq!(stored_events(&app.pool, "Seat").await, SLOTS as i64 + 3);
    let held_by_us: i64 = sqlx::query_scalar(
        "select count(*) from reservations where status = 'held' and user_id = any($1)",
    )
    .bind(users.iter().map(|user| user.user_id).collect::<Vec<_>>())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(held_by_us, 2);
}

#[tokio::test]
async fn a_batch_stored_with_set_based_statements_leaves_the_read_models_a_replay_rebuilds() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 20, 1_000).await;
    let users = active_users(&app, &concert, SLOTS + 10).await;
    let seats = app.free_seats(&users[0], &concert, 0).await;
    let blockers = occupy_every_slot(&app, &concert, &seats[..SLOTS]).await;

    // Ten holds gather while every slot waits, then go as one batch: large
    // enough for the set-based statements rather than one event at a time.
    let gathered = async {
        tokio::time::sleep(SETTLE * SLOTS as u32).await;
        join_all(
            users[SLOTS..]
                .iter()
                .zip(&seats[SLOTS..SLOTS + 10])
                .map(|(user, seat)| hold(&app, user, seat)),
        )
        .await
    };
    let writers = async {
        tokio::time::sleep(SETTLE * (SLOTS as u32 + 1)).await;
        blockers.commit().await;
    };
    let (blocked, gathered, ()) = tokio::join!(
        hold_each(&app, &users[..SLOTS], &seats[..SLOTS]),
        gathered,
        writers
    );
    assert_eq!(blocked, [409; SLOTS]);
    assert_eq!(gathered, [201; 10]);
    let metrics = app.get_root("/metrics").await.text().await.unwrap();
    assert!(largest_batch_seen(&metrics, "Seat") >= 8.0, "{metrics}");

    assert_replay_rebuilds_the_read_models(&app.pool).await;
}

#[tokio::test]
async fn a_batch_whose_connection_is_cut_fails_as_a_whole_and_the_next_one_commits() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 10, 1_000).await;
    let users = active_users(&app, &concert, SLOTS + 2).await;
    let seats = app.free_seats(&users[0], &concert, 0).await;
    let (a, b) = (&seats[SLOTS], &seats[SLOTS + 1]);
    let blockers = occupy_every_slot(&app, &concert, &seats[..SLOTS]).await;
    let second = another_writer_holds(&app.pool, &concert, a).await;

    // As above: A and B gather while every slot is busy, and their batch
    // (with a lost hold decided again) waits for the second writer, until
    // its connection is cut.
    let holds_ab = async {
        tokio::time::sleep(SETTLE * SLOTS as u32).await;
        join_all([
            hold(&app, &users[SLOTS], a),
            hold(&app, &users[SLOTS + 1], b),
        ])
        .await
    };
    let writers = async {
        tokio::time::sleep(SETTLE * (SLOTS as u32 + 1)).await;
        blockers.commit().await;
        tokio::time::sleep(SETTLE).await;
        let cut: i64 = sqlx::query_scalar(
            "select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity
              where datname = current_database() and pid <> pg_backend_pid()
                and wait_event_type = 'Lock' and query like 'insert into events%') cut",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        second.rollback().await.unwrap();
        cut
    };
    let (blocked, holds_ab, cut) = tokio::join!(
        hold_each(&app, &users[..SLOTS], &seats[..SLOTS]),
        holds_ab,
        writers
    );

    assert_eq!(cut, 1, "one batch was waiting");
    // The lost holds had nothing to store and were answered; each command of
    // the cut batch is told the store failed, and none of it was stored.
    assert_eq!(blocked, [409; SLOTS]);
    assert_eq!(holds_ab, [503, 503]);
    assert_eq!(
        stored_events(&app.pool, "Seat").await,
        SLOTS as i64,
        "only the first writers' holds"
    );
    // The pipeline goes on with a new connection.
    assert_eq!(hold(&app, &users[SLOTS], a).await, 201);
    assert_eq!(hold(&app, &users[SLOTS + 1], b).await, 201);
}

#[tokio::test]
async fn two_instances_whose_batches_touch_the_same_seats_sell_each_seat_once() {
    let first = spawn_app().await;
    let second = spawn_app_on(first.pool.clone(), test_config()).await;
    let concert = first.create_concert(1, 20, 1_000).await;
    let users = active_users(&first, &concert, 80).await;
    let seats = first.free_seats(&users[0], &concert, 0).await;

    // Each seat is pressed by four users, two through each instance.
    let answers = join_all(users.iter().enumerate().map(|(n, user)| {
        let instance = if n % 2 == 0 { &first } else { &second };
        hold(instance, user, &seats[(n / 2) % 20])
    }))
    .await;

    let won: Vec<usize> = (0..20)
        .map(|seat| {
            answers
                .iter()
                .enumerate()
                .filter(|(n, status)| (n / 2) % 20 == seat && **status == 201)
                .count()
        })
        .collect();
    assert_eq!(won, vec![1; 20]);
    let unexpected: Vec<u16> = answers
        .iter()
        .copied()
        .filter(|status| ![201, 409].contains(status))
        .collect();
    assert!(unexpected.is_empty(), "{unexpected:?}");
    assert_eq!(stored_events(&first.pool, "Seat").await, 20);
    let report = concert::audit::audit(&first.pool, 100, None, &mut |_, _| {})
        .await
        .expect("the audit runs");
    assert!(report.violations.is_empty(), "{:?}", report.violations);
}

async fn active_users(app: &TestApp, concert: &Concert, count: usize) -> Vec<User> {
    join_all((0..count).map(|_| app.active_user(&concert.concert_id))).await
}

/// Uncommitted holds of `seats` by other writers (one transaction each).
struct Blockers(Vec<Transaction<'static, Postgres>>);

impl Blockers {
    async fn commit(self) {
        for writer in self.0 {
            writer.commit().await.unwrap();
        }
    }
}

/// Other writers' uncommitted holds of `seats`, one per batch slot: our
/// holds of the same seats (`hold_each`) then fill every slot and wait.
async fn occupy_every_slot(app: &TestApp, concert: &Concert, seats: &[FreeSeat]) -> Blockers {
    let mut writers = Vec::new();
    for seat in seats {
        writers.push(another_writer_holds(&app.pool, concert, seat).await);
    }
    Blockers(writers)
}

/// Each user holds their seat, SETTLE apart, so each hold is a batch alone.
async fn hold_each(app: &TestApp, users: &[User], seats: &[FreeSeat]) -> Vec<u16> {
    join_all(
        users
            .iter()
            .zip(seats)
            .enumerate()
            .map(|(n, (user, seat))| async move {
                tokio::time::sleep(SETTLE * n as u32).await;
                hold(app, user, seat).await
            }),
    )
    .await
}

async fn hold(app: &TestApp, user: &User, seat: &FreeSeat) -> u16 {
    app.hold(user, &seat.seat_id.to_string()).await.status
}

/// A hold of `seat` by someone else, stored with its read models in a
/// transaction left open: what another instance's batch looks like while
/// it commits.
async fn another_writer_holds(
    pool: &PgPool,
    concert: &Concert,
    seat: &FreeSeat,
) -> Transaction<'static, Postgres> {
    let now = chrono::Utc::now();
    let payload = json!({"SeatHeld": {
        "reservation_id": Uuid::now_v7(),
        "user_id": Uuid::new_v4(),
        "date_id": concert.date_ids[0],
        "seat_no": seat.seat_no,
        "price": seat.price,
        "held_at": now,
        "until": now + chrono::Duration::minutes(5),
    }});
    let event: SeatEvent = serde_json::from_value(payload.clone()).unwrap();
    let seat_id = seat.seat_id.to_string();
    let mut tx = pool.begin().await.unwrap();
    store_as_another_writer(&mut tx, ("Seat", &seat_id, 1), &payload, "HoldSeat").await;
    Projectors::new(pool)
        .seats
        .project_in(&mut tx, &seat_id, &[(1, event)])
        .await
        .unwrap();
    tx
}

async fn stored_events(pool: &PgPool, aggregate_type: &str) -> i64 {
    sqlx::query_scalar("select count(*) from events where aggregate_type = $1")
        .bind(aggregate_type)
        .fetch_one(pool)
        .await
        .unwrap()
}
