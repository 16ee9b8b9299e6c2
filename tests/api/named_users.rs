//! A body may still name its user (`user_id`, as revision 1's did); naming
//! another user than the token's is `403 forbidden`, on every route that
//! takes a body, and changes nothing.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{assert_problem, spawn_app};
use crate::identity::log_fingerprint;

#[tokio::test]
async fn a_body_naming_another_user_than_the_token_is_forbidden_and_changes_nothing() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let buyer = app.active_user(&concert.concert_id).await;
    let other = Uuid::new_v4();
    app.fund(buyer.user_id, 1000).await;
    let buyer_token = app.user_token(buyer.user_id).await;
    let seat = app.first_free_seat(&buyer, &concert).await;
    let before = log_fingerprint(&app).await;

    // Ignored, the charge below was made to the buyer's wallet, and its
    // client told it had charged the other's.
    let charges = format!("/users/{}/balance/charges", buyer.user_id);
    let charge = json!({"amount": 5, "user_id": other});
    let refused = app.post(&charges, Some(&buyer_token), charge).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    let hold = json!({"seat_id": seat, "user_id": other});
    let refused = app.post("/reservations", Some(&buyer.token), hold).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(log_fingerprint(&app).await, before, "the log changed");
    assert_eq!(app.balance(buyer.user_id).await, 1000);
    assert_eq!(app.balance(other).await, 0);

    // Naming the token's own user is what it always was.
    let own = json!({"amount": 5, "user_id": buyer.user_id});
    let charged = app.post(&charges, Some(&buyer_token), own).await;
    assert_eq!(charged.status(), StatusCode::OK);
    let hold = json!({"seat_id": seat, "user_id": buyer.user_id});
    let held = app.post("/reservations", Some(&buyer.token), hold).await;
    assert_eq!(held.status(), StatusCode::CREATED);
    let reservation_id = json_of_response(held).await["reservation_id"].clone();

    let before = log_fingerprint(&app).await;
    let pay = json!({"reservation_id": reservation_id, "user_id": other});
    let refused = app.post("/payments", Some(&buyer.token), pay).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    // A seat already taken, which is refused before the store is asked:
    // still the body's user that is refused.
    let taken = json!({"seat_id": seat, "user_id": other});
    let refused = app.post("/reservations", Some(&buyer.token), taken).await;
    assert_problem(refused, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(log_fingerprint(&app).await, before, "the log changed");
    assert_eq!(app.balance(buyer.user_id).await, 1005);

    let pay = json!({"reservation_id": reservation_id, "user_id": buyer.user_id});
    let paid = app.post("/payments", Some(&buyer.token), pay).await;
    assert_eq!(paid.status(), StatusCode::CREATED);
    assert_eq!(json_of_response(paid).await["balance"], 5);
}

async fn json_of_response(response: reqwest::Response) -> serde_json::Value {
    response.json().await.unwrap()
}
