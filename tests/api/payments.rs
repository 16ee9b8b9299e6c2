//! Paying for held seats.

use reqwest::StatusCode;
use serde_json::Value;

use uuid::Uuid;

use crate::helpers::{
    assert_problem, json_of, spawn_app, spawn_app_with, test_config, Concert, TestApp, User,
};

async fn held_seat(app: &TestApp, concert: &Concert, user: &User, index: usize) -> String {
    let seat_id = app.free_seats(user, concert, 0).await[index]
        .seat_id
        .to_string();
    let reservation: Value = json_of(&app.hold(user, &seat_id).await);
    reservation["reservation_id"].as_str().unwrap().to_string()
}

/// A user of a new concert (seats at 1,000) holding its first seat, with
/// 10,000 in the wallet: where most payments here start.
async fn ready_to_pay(app: &TestApp) -> (User, Uuid) {
    let concert = app.create_concert(1, 5, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(app, &concert, &user, 0).await;
    app.charge(user.user_id, 10_000).await;
    (user, reservation_id.parse().unwrap())
}

#[tokio::test]
async fn paying_with_too_little_balance_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 150_000).await;
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(&app, &concert, &user, 0).await;
    app.charge(user.user_id, 100_000).await;

    let response = app.pay(&user, &reservation_id).await;
    // A queue token does not open the wallet: the refusal names the price,
    // not the balance.
    let problem = json_of(&response);

    assert_problem(
        response,
        StatusCode::PAYMENT_REQUIRED,
        "insufficient_balance",
    )
    .await;
    assert!(problem["detail"].as_str().unwrap().contains("150000"));
    assert!(!problem.to_string().contains("100000"), "{problem}");
    assert_eq!(app.balance(user.user_id).await, 100_000);
    assert_eq!(app.reservation_status(&user, &reservation_id).await, "held");
    let token = app
        .get_json("/queue/tokens/current", Some(&user.token))
        .await;
    assert_eq!(token["status"], "active");
}

#[tokio::test]
async fn a_reservation_is_paid_once_and_paying_it_again_is_already_paid_whatever_the_token() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(&app, &concert, &user, 0).await;
    app.charge(user.user_id, 10_000).await;
    assert_eq!(
        app.pay(&user, &reservation_id).await.status,
        StatusCode::CREATED
    );
    // With the token that paying spent: the second of two payments sent at
    // once reads it before or after the first spent it, and is told the
    // truth either way.
    let with_spent = app.pay(&user, &reservation_id).await;
    // With a new token, as the user may get to try again.
    let (_, again) = app.enter_queue(user.user_id, &concert.concert_id).await;
    let again = User {
        user_id: user.user_id,
        token: again["token"].as_str().unwrap().to_string(),
    };
    app.wait_until_active(&again.token).await;
    let with_new = app.pay(&again, &reservation_id).await;

    assert_problem(with_spent, StatusCode::CONFLICT, "already_paid").await;
    assert_problem(with_new, StatusCode::CONFLICT, "already_paid").await;
    assert_eq!(app.balance(user.user_id).await, 9_000);
}

#[tokio::test]
async fn a_keyed_retry_is_answered_its_receipt_only_with_a_token_of_the_reservations_concert() {
    let app = spawn_app().await;
    let (concert, elsewhere) = (
        app.create_concert(1, 5, 1000).await,
        app.create_concert(1, 5, 1000).await,
    );
    let user = app.active_user(&concert.concert_id).await;
    let reservation_id = held_seat(&app, &concert, &user, 0).await;
    app.charge(user.user_id, 10_000).await;
    let (_, other) = app.enter_queue(user.user_id, &elsewhere.concert_id).await;
    let other = other["token"].as_str().unwrap().to_string();
    app.wait_until_active(&other).await;
    let api = &app.api;
    let pay_with = |token: String| {
        let reservation_id = reservation_id.parse().unwrap();
        async move {
            api.pay(&token, reservation_id, Some("pay-for-the-seat"))
                .await
                .unwrap()
        }
    };

    let paid = pay_with(user.token.clone()).await;
    let from_elsewhere = pay_with(other).await;
    let retried = pay_with(user.token.clone()).await;

    assert_eq!(paid.status, StatusCode::CREATED);
    // As without the key: before, the stored receipt came first.
    assert_problem(from_elsewhere, StatusCode::FORBIDDEN, "token_not_active").await;
    assert_eq!((retried.status, &retried.body), (paid.status, &paid.body));
    assert_eq!(app.balance(user.user_id).await, 9_000);
}

#[tokio::test]
async fn another_users_reservation_is_not_found() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let (owner, other) = (
        app.active_user(&concert.concert_id).await,
        app.active_user(&concert.concert_id).await,
    );
    let reservation_id = held_seat(&app, &concert, &owner, 0).await;
    app.charge(other.user_id, 10_000).await;

    let paid = app.pay(&other, &reservation_id).await;
    let read = app
        .get(
            &format!("/reservations/{reservation_id}"),
            Some(&other.token),
        )
        .await;

    assert_problem(paid, StatusCode::NOT_FOUND, "not_found").await;
    assert_problem(read, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.balance(other.user_id).await, 10_000);
}

#[tokio::test]
async fn a_retried_payment_with_the_same_idempotency_key_pays_once() {
    let app = spawn_app().await;
    let (user, reservation_id) = ready_to_pay(&app).await;
    let send = || {
        app.client
            .post(app.url("/payments"))
            .bearer_auth(&user.token)
            .header("idempotency-key", "pay-once")
            .json(&serde_json::json!({"reservation_id": reservation_id}))
            .send()
    };

    let first = send().await.unwrap();
    let (first_status, first_body): (_, Value) = (first.status(), first.json().await.unwrap());
    let retry = send().await.unwrap();
    let (retry_status, retry_body): (_, Value) = (retry.status(), retry.json().await.unwrap());

    assert_eq!(first_status, StatusCode::CREATED);
    assert_eq!((retry_status, retry_body), (first_status, first_body));
    assert_eq!(app.balance(user.user_id).await, 9_000);
}

#[tokio::test]
async fn a_keyed_retry_after_the_deadline_answers_what_its_first_try_did() {
    let mut config = test_config();
    config.hold_ttl_secs = 2;
    let app = spawn_app_with(config).await;
    let (user, reservation_id) = ready_to_pay(&app).await;
    let (seat_id, expires_at): (Uuid, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("select seat_id, expires_at from reservations where reservation_id = $1")
            .bind(reservation_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let send = || {
        app.client
            .post(app.url("/payments"))
            .bearer_auth(&user.token)
            .header("idempotency-key", "pay-at-the-deadline")
            .json(&serde_json::json!({"reservation_id": reservation_id}))
            .send()
    };
    // Another session holds the seat's read-model row: the first try,
    // decided before the deadline, commits its sale only after it.
    let mut blocker = app.pool.begin().await.unwrap();
    sqlx::query("select 1 from seats where seat_id = $1 for update")
        .bind(seat_id)
        .execute(&mut *blocker)
        .await
        .unwrap();

    let (first, retry) = tokio::join!(send(), async {
        let past_deadline = (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default()
            + std::time::Duration::from_millis(300);
        tokio::time::sleep(past_deadline).await;
        let retry = tokio::spawn(send());
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        blocker.rollback().await.unwrap();
        retry.await.unwrap()
    });

    let first = first.unwrap();
    let (first_status, first_body): (_, Value) = (first.status(), first.json().await.unwrap());
    let retry = retry.unwrap();
    let (retry_status, retry_body): (_, Value) = (retry.status(), retry.json().await.unwrap());
    assert_eq!(first_status, StatusCode::CREATED, "{first_body}");
    assert_eq!((retry_status, retry_body), (first_status, first_body));
    assert_eq!(app.balance(user.user_id).await, 9_000);
    assert_eq!(
        app.reservation_status(&user, &reservation_id.to_string())
            .await,
        "confirmed"
    );
}

#[tokio::test]
async fn a_genuine_token_of_a_ticket_not_stored_cannot_pay() {
    let app = spawn_app().await;
    let (user, reservation_id) = ready_to_pay(&app).await;
    // Signed with this database's secret, for a ticket that never entered a line.
    let signer = concert::tokens::TokenSigner::from_database(&app.pool)
        .await
        .unwrap();
    let stranger = User {
        user_id: user.user_id,
        token: signer.issue(concert::ids::TicketId::new()),
    };

    let response = app.pay(&stranger, &reservation_id.to_string()).await;

    assert_problem(response, StatusCode::UNAUTHORIZED, "token_invalid").await;
    assert_eq!(app.balance(user.user_id).await, 10_000);
    assert_eq!(
        app.reservation_status(&user, &reservation_id.to_string())
            .await,
        "held"
    );
}

#[tokio::test]
async fn a_token_of_another_concert_cannot_pay_and_spends_nothing() {
    let app = spawn_app().await;
    let (here, elsewhere) = (
        app.create_concert(1, 5, 1000).await,
        app.create_concert(1, 5, 1000).await,
    );
    let user = app.active_user(&here.concert_id).await;
    let (_, other) = app.enter_queue(user.user_id, &elsewhere.concert_id).await;
    let other = User {
        user_id: user.user_id,
        token: other["token"].as_str().unwrap().to_string(),
    };
    app.wait_until_active(&other.token).await;
    let reservation_id = held_seat(&app, &here, &user, 0).await;
    app.charge(user.user_id, 10_000).await;

    let response = app.pay(&other, &reservation_id).await;

    assert_problem(response, StatusCode::FORBIDDEN, "token_not_active").await;
    assert_eq!(app.balance(user.user_id).await, 10_000);
    assert_eq!(app.reservation_status(&user, &reservation_id).await, "held");
    for token in [&user.token, &other.token] {
        let standing = app.get_json("/queue/tokens/current", Some(token)).await;
        assert_eq!(standing["status"], "active", "{standing}");
    }
}

#[tokio::test]
async fn a_retry_after_the_payment_committed_but_before_its_answer_was_kept_gets_the_receipt() {
    let app = spawn_app().await;
    let (user, reservation_id) = ready_to_pay(&app).await;
    let first = app
        .api
        .pay(&user.token, reservation_id, Some("kept-late"))
        .await
        .unwrap();
    assert_eq!(first.status, 201);
    // The moment between the commit (which spent the token) and keeping the
    // answer, as a retry racing the first request sees it.
    sqlx::query("delete from idempotency_keys where user_id = $1")
        .bind(user.user_id)
        .execute(&app.pool)
        .await
        .unwrap();

    let retry = app
        .api
        .pay(&user.token, reservation_id, Some("kept-late"))
        .await
        .unwrap();

    assert_eq!(
        retry.status,
        201,
        "{}",
        String::from_utf8_lossy(&retry.body)
    );
    let (first, retry) = (json_of(&first), json_of(&retry));
    for field in [
        "payment_id",
        "reservation_id",
        "seat_id",
        "amount",
        "balance",
        "status",
    ] {
        assert_eq!(first[field], retry[field], "{field}");
    }
    assert_eq!(app.balance(user.user_id).await, 9_000);
}

#[tokio::test]
async fn retries_racing_the_first_payment_all_get_its_receipt() {
    let app = spawn_app().await;
    let (user, reservation_id) = ready_to_pay(&app).await;

    let answers = futures::future::join_all(
        (0..8).map(|_| app.api.pay(&user.token, reservation_id, Some("raced"))),
    )
    .await;

    let bodies: Vec<Value> = answers
        .iter()
        .map(|answer| {
            let answer = answer.as_ref().unwrap();
            assert_eq!(
                answer.status,
                201,
                "{}",
                String::from_utf8_lossy(&answer.body)
            );
            json_of(answer)
        })
        .collect();
    assert!(bodies
        .iter()
        .all(|body| body["payment_id"] == bodies[0]["payment_id"]));
    assert_eq!(app.balance(user.user_id).await, 9_000);
}

#[tokio::test]
async fn a_key_reused_for_another_reservation_is_refused_and_pays_nothing() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 5, 1000).await;
    let user = app.active_user(&concert.concert_id).await;
    let first_seat: Uuid = held_seat(&app, &concert, &user, 0).await.parse().unwrap();
    let second_seat: Uuid = held_seat(&app, &concert, &user, 0).await.parse().unwrap();
    app.charge(user.user_id, 10_000).await;
    let paid = app
        .api
        .pay(&user.token, first_seat, Some("reused"))
        .await
        .unwrap();
    assert_eq!(paid.status, 201);

    let other = app
        .api
        .pay(&user.token, second_seat, Some("reused"))
        .await
        .unwrap();

    assert_problem(other, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(app.balance(user.user_id).await, 9_000);
    assert_eq!(
        app.reservation_status(&user, &second_seat.to_string())
            .await,
        "held"
    );
}

#[tokio::test]
async fn one_key_sent_for_two_reservations_at_once_never_sells_a_seat_unpaid() {
    let app = spawn_app().await;
    let concert = app.create_concert(1, 40, 1000).await;
    for round in 0..8 {
        let user = app.active_user(&concert.concert_id).await;
        let first: Uuid = held_seat(&app, &concert, &user, 0).await.parse().unwrap();
        let second: Uuid = held_seat(&app, &concert, &user, 0).await.parse().unwrap();
        app.charge(user.user_id, 10_000).await;
        let key = format!("one-key-{round}");

        let (a, b) = tokio::join!(
            app.api.pay(&user.token, first, Some(&key)),
            app.api.pay(&user.token, second, Some(&key)),
        );

        let mut sold = 0;
        for reservation in [first, second] {
            if app
                .reservation_status(&user, &reservation.to_string())
                .await
                == "confirmed"
            {
                sold += 1;
            }
        }
        let (a, b) = (a.unwrap().status, b.unwrap().status);
        assert!(
            sold <= 1,
            "round {round}: {sold} seats sold, answers {a} {b}"
        );
        assert_eq!(
            app.balance(user.user_id).await,
            10_000 - 1000 * sold,
            "round {round}: answers {a} {b}"
        );
    }
}
