//! Payments sent with an `Idempotency-Key`: a retry, however late or however
//! many at once, gets the first try's answer and pays once; a key names one
//! reservation.

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{assert_problem, json_of, spawn_app, spawn_app_with, test_config};
use crate::payments::{held_seat, ready_to_pay};

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
    app.fund(user.user_id, 10_000).await;
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
        app.fund(user.user_id, 10_000).await;
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
