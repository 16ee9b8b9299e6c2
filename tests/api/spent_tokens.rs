//! A queue token pays for one seat: paying spends it, however many seats
//! its holder held and however the payments race.

use futures::future::join_all;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{
    json_of, problem_code, spawn_app, spawn_app_on, spawn_app_with, test_config, TestApp,
};

const HOLDS: usize = 5;
const PRICE: i64 = 1_000;

async fn count_events(app: &TestApp, event_type: &str) -> i64 {
    sqlx::query_scalar("select count(*) from events where event_type = $1")
        .bind(event_type)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn payments_racing_with_one_token_buy_one_seat_and_refuse_the_rest_unchanged() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, HOLDS as u32, PRICE).await;
    let user = app.active_user(&concert.concert_id).await;
    let mut held = Vec::new();
    for seat in app.free_seats(&user, &concert, 0).await {
        let reservation: Value = json_of(&app.hold(&user, &seat.seat_id.to_string()).await);
        held.push(reservation["reservation_id"].as_str().unwrap().to_string());
    }
    assert_eq!(held.len(), HOLDS);
    app.fund(user.user_id, 10 * PRICE).await;

    let answers = join_all(held.iter().map(|reservation| app.pay(&user, reservation))).await;

    let mut refusals = Vec::new();
    for answer in answers {
        if answer.status != 201 {
            refusals.push(problem_code(answer).await);
        }
    }
    assert_eq!(
        refusals.len(),
        HOLDS - 1,
        "one payment a token: {refusals:?}"
    );
    assert!(
        refusals
            .iter()
            .all(|(status, code)| status.as_u16() == 401 && code == "token_invalid"),
        "a spent token is refused as sequential payments refuse it: {refusals:?}"
    );
    assert_eq!(app.balance(user.user_id).await, 9 * PRICE);
    let mut statuses = Vec::new();
    for reservation in &held {
        statuses.push(app.reservation_status(&user, reservation).await);
    }
    statuses.sort();
    assert_eq!(statuses, ["confirmed", "held", "held", "held", "held"]);
    assert_eq!(count_events(&app, "SeatSold").await, 1);
    assert_eq!(count_events(&app, "TicketExpired").await, 1);
}

/// Two payments of one reservation sent at once through two instances pay
/// once, and the second is told so: a retry with the first's key gets its
/// receipt, a payment of its own `409 already_paid`, however the first's
/// commit falls among the reads the second is decided on.
#[tokio::test]
async fn two_payments_of_a_reservation_through_two_instances_pay_once_and_the_second_is_told_so() {
    const PAIRS: usize = 300;
    let mut config = test_config();
    config.queue_active_max = PAIRS as u32;
    let first = spawn_app_with(config.clone()).await;
    let second = spawn_app_on(first.pool.clone(), config).await;
    let concert = first.create_concert(1, PAIRS as u32, PRICE).await;
    let users = join_all((0..PAIRS).map(|_| first.active_user(&concert.concert_id))).await;
    let seats = first.free_seats(&users[0], &concert, 0).await;
    let app = &first;
    let held = join_all(users.iter().zip(&seats).map(|(user, seat)| async move {
        app.fund(user.user_id, PRICE).await;
        let reservation = json_of(&app.hold(user, &seat.seat_id.to_string()).await);
        let reservation: Uuid = reservation["reservation_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        (user, reservation)
    }))
    .await;

    // One pair at a time, as a client and its retry (every other pair
    // keyed), or a double click, would send them.
    let mut wrong = Vec::new();
    for (n, (user, reservation)) in held.iter().enumerate() {
        let key = (n % 2 == 0).then(|| format!("pay-{reservation}"));
        let (one, other) = tokio::join!(
            first.api.pay(&user.token, *reservation, key.as_deref()),
            second.api.pay(&user.token, *reservation, key.as_deref()),
        );
        let (one, other) = (one.unwrap(), other.unwrap());
        let (one_body, other_body) = (json_of(&one), json_of(&other));
        let mut statuses = [one.status, other.status];
        statuses.sort();
        let told = match key {
            Some(_) => statuses == [201, 201] && one_body["payment_id"] == other_body["payment_id"],
            None => {
                let refusal = if one.status == 409 {
                    &one_body
                } else {
                    &other_body
                };
                statuses == [201, 409] && refusal["code"] == "already_paid"
            }
        };
        if !told {
            wrong.push((
                key.is_some(),
                one.status,
                other.status,
                one_body,
                other_body,
            ));
        }
    }

    assert!(wrong.is_empty(), "{} of {PAIRS}: {wrong:#?}", wrong.len());
    assert_eq!(count_events(&first, "SeatSold").await, PAIRS as i64);
    assert_eq!(count_events(&first, "Paid").await, PAIRS as i64);
}
