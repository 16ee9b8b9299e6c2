//! A queue token pays for one seat: paying spends it, however many seats
//! its holder held and however the payments race.

use futures::future::join_all;
use serde_json::Value;

use crate::helpers::{json_of, problem_code, spawn_app, TestApp};

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
    app.charge(user.user_id, 10 * PRICE).await;

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
