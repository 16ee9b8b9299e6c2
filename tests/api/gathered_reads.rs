//! The reads before a hold or a payment, gathered: requests that arrive
//! together share one query, and each still finds its own ticket, seat and
//! reservation, or learns that one of them does not exist.

use concert::projections::command_reads::{ReservationsForTickets, SeatsForTickets};
use concert::projections::gathered_reads::{GatheredReads, KeyedRead};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::helpers::{
    assert_problem, json_of, largest_bucket, spawn_app_with, test_config, Concert, TestApp, User,
};

/// A service that admits `users` at once, a concert of one date with twice
/// as many seats, and the users with active tokens.
async fn crowd_with_seats(users: usize) -> (TestApp, Concert, Vec<User>, Vec<String>) {
    let mut config = test_config();
    config.queue_active_max = users as u32 + 1;
    let app = spawn_app_with(config).await;
    let concert = app.create_concert(1, 2 * users as u32, 1000).await;
    let crowd = join_all((0..users).map(|_| app.active_user(&concert.concert_id))).await;
    let seats = app
        .free_seats(&crowd[0], &concert, 0)
        .await
        .iter()
        .map(|seat| seat.seat_id.to_string())
        .collect();
    (app, concert, crowd, seats)
}

/// The ticket behind a user's queue token.
async fn ticket_of(pool: &PgPool, user: &User) -> Uuid {
    sqlx::query_scalar("select ticket_id from queue_tickets where user_id = $1")
        .bind(user.user_id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// What one key found, by ids: the ticket and what was read with it.
type Found<T> = Option<(Uuid, Option<T>)>;

async fn largest_read_batch(app: &TestApp, family: &str) -> f64 {
    let metrics = app.get_root("/metrics").await.text().await.unwrap();
    largest_bucket(&metrics, family, "")
}

#[tokio::test]
async fn a_crowd_holding_at_once_shares_reads_and_each_holds_the_seat_it_asked_for() {
    let (app, _concert, crowd, seats) = crowd_with_seats(40).await;

    // Each user asks for a seat of their own, and a second time for a seat
    // that does not exist: both kinds wait for the same reads.
    let holds = crowd
        .iter()
        .zip(&seats)
        .map(|(user, seat)| app.hold(user, seat));
    let unknown = Uuid::new_v4().to_string();
    let strays = crowd.iter().map(|user| app.hold(user, &unknown));
    let (holds, strays) = futures::join!(join_all(holds), join_all(strays));

    for ((answer, user), seat_id) in holds.into_iter().zip(&crowd).zip(&seats) {
        assert_eq!(answer.status, 201, "{:?}", json_of(&answer));
        let reservation: Value = json_of(&answer);
        assert_eq!(reservation["seat_id"], seat_id.as_str());
        // The holder reads it back; it is theirs.
        let id = reservation["reservation_id"].as_str().unwrap();
        let read = app
            .get_json(&format!("/reservations/{id}"), Some(&user.token))
            .await;
        assert_eq!(read["seat_id"], seat_id.as_str());
    }
    for answer in strays {
        assert_problem(answer, StatusCode::NOT_FOUND, "not_found").await;
    }
    assert!(
        largest_read_batch(&app, "concert_hold_read_batch_size").await > 1.0,
        "holds waiting together share a read"
    );
}

#[tokio::test]
async fn a_crowd_paying_at_once_shares_reads_and_each_pays_its_own_hold() {
    let (app, _concert, crowd, seats) = crowd_with_seats(30).await;
    let mut reservations = Vec::new();
    for (user, seat) in crowd.iter().zip(&seats) {
        reservations.push(json_of(&app.hold(user, seat).await)["reservation_id"].clone());
        app.fund(user.user_id, 5_000).await;
    }

    let payments = crowd
        .iter()
        .zip(&reservations)
        .map(|(user, reservation)| app.pay(user, reservation.as_str().unwrap()));
    let answers = join_all(payments).await;

    for ((answer, user), reservation) in answers.into_iter().zip(&crowd).zip(&reservations) {
        assert_eq!(answer.status, 201, "{:?}", json_of(&answer));
        let receipt = json_of(&answer);
        assert_eq!(&receipt["reservation_id"], reservation);
        assert_eq!(receipt["balance"], 4_000);
        assert_eq!(app.balance(user.user_id).await, 4_000);
    }
    let sold: i64 = sqlx::query_scalar("select count(*) from seats where status = 'sold'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sold, 30);
    // Paid together, so the read model confirms them in set-based statements.
    let confirmed: i64 = sqlx::query_scalar(
        "select count(*) from reservations where status = 'confirmed' and payment_id is not null",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(confirmed, 30);
    assert!(
        largest_read_batch(&app, "concert_payment_read_batch_size").await > 1.0,
        "payments waiting together share a read"
    );
}

#[tokio::test]
async fn one_read_of_many_keys_answers_each_key_in_its_place() {
    let (app, _concert, crowd, seats) = crowd_with_seats(2).await;
    let (first, second) = (
        ticket_of(&app.pool, &crowd[0]).await,
        ticket_of(&app.pool, &crowd[1]).await,
    );
    let seat = |n: usize| seats[n].parse::<Uuid>().unwrap();
    let (no_ticket, no_seat) = (Uuid::new_v4(), Uuid::new_v4());

    let mut conn = app.pool.acquire().await.unwrap();
    let found = SeatsForTickets
        .read_many(
            &mut conn,
            &[
                (second, seat(1)),
                (no_ticket, seat(0)),
                (first, no_seat),
                (first, seat(0)),
                (second, seat(1)),
            ],
        )
        .await
        .unwrap();

    let read: Vec<Found<(Uuid, i32)>> = found
        .iter()
        .map(|found| {
            found.as_ref().map(|(ticket, seat)| {
                (
                    ticket.ticket_id,
                    seat.as_ref().map(|s| (s.seat_id, s.seat_no)),
                )
            })
        })
        .collect();
    assert_eq!(
        read,
        [
            Some((second, Some((seat(1), 2)))),
            None,
            Some((first, None)),
            Some((first, Some((seat(0), 1)))),
            Some((second, Some((seat(1), 2)))),
        ]
    );

    // The same for reservations: the first user's hold, read by both users'
    // tickets (the payment checks whose it is), and one that does not exist.
    let held = json_of(&app.hold(&crowd[0], &seats[0]).await)["reservation_id"]
        .as_str()
        .unwrap()
        .parse::<Uuid>()
        .unwrap();
    let found = ReservationsForTickets
        .read_many(
            &mut conn,
            &[
                (first, no_seat),
                (second, held),
                (no_ticket, held),
                (first, held),
            ],
        )
        .await
        .unwrap();

    let read: Vec<Found<(Uuid, Uuid)>> = found
        .iter()
        .map(|found| {
            found.as_ref().map(|(ticket, reservation)| {
                (
                    ticket.ticket_id,
                    reservation.as_ref().map(|r| (r.reservation_id, r.user_id)),
                )
            })
        })
        .collect();
    let owner = crowd[0].user_id;
    assert_eq!(
        read,
        [
            Some((first, None)),
            Some((second, Some((held, owner)))),
            None,
            Some((first, Some((held, owner)))),
        ]
    );
}

/// `SeatsForTickets`, telling how many keys each query it ran was given.
struct CountingReads(std::sync::Arc<std::sync::Mutex<Vec<usize>>>);

impl KeyedRead for CountingReads {
    type Key = (Uuid, Uuid);
    type Found = <SeatsForTickets as KeyedRead>::Found;
    const BATCH_SIZE_METRIC: &'static str = "test_counting_read_batch_size";

    async fn read_many(
        &self,
        conn: &mut PgConnection,
        keys: &[(Uuid, Uuid)],
    ) -> sqlx::Result<Vec<Option<Self::Found>>> {
        self.0.lock().unwrap().push(keys.len());
        SeatsForTickets.read_many(conn, keys).await
    }
}

#[tokio::test]
async fn reads_sent_together_go_in_one_query_and_each_gets_its_own_answer() {
    let (app, _concert, crowd, seats) = crowd_with_seats(2).await;
    let tickets = [
        ticket_of(&app.pool, &crowd[0]).await,
        ticket_of(&app.pool, &crowd[1]).await,
    ];
    let batches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let reads = GatheredReads::start(
        &app.pool,
        CountingReads(batches.clone()),
        std::time::Duration::from_secs(60),
    );
    // 40 keys, each ticket with each seat in turn, sent before any is answered.
    let keys: Vec<(Uuid, Uuid)> = (0..40)
        .map(|n| (tickets[n % 2], seats[n % 4].parse().unwrap()))
        .collect();

    let answers = join_all(keys.iter().map(|key| reads.read(*key))).await;

    for (answer, (ticket_id, seat_id)) in answers.into_iter().zip(&keys) {
        let (ticket, seat) = answer.unwrap().expect("the ticket");
        assert_eq!(ticket.ticket_id, *ticket_id);
        assert_eq!(seat.expect("the seat").seat_id, *seat_id);
    }
    assert_eq!(*batches.lock().unwrap(), [40], "one query for all forty");
}
