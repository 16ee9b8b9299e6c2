//! A keyed charge or payment sent again (a retry, or copies racing the first
//! try) answers the balance its own charge or payment left, as its event in
//! the log states it, however the wallet moved since.

use std::collections::HashMap;

use futures::future::join_all;
use uuid::Uuid;

use crate::helpers::{json_of, spawn_app, TestApp};
use crate::payments::ready_to_pay;

/// Forgets the answers kept for `user`'s keys: the moment between a commit
/// and keeping its answer, as a copy racing the first try (or a retry after
/// a crash there) finds it.
async fn forget_kept_answers(app: &TestApp, user: Uuid) {
    sqlx::query("delete from idempotency_keys where user_id = $1")
        .bind(user)
        .execute(&app.pool)
        .await
        .unwrap();
}

/// The balance each charge of `user` left, by its amount, from the log.
async fn balances_left_by_charges(app: &TestApp, user: Uuid) -> HashMap<i64, i64> {
    sqlx::query_as(
        "select (payload->'Charged'->>'amount')::bigint, (payload->'Charged'->>'balance')::bigint
         from events where aggregate_type = 'Wallet' and aggregate_id = $1 and event_type = 'Charged'",
    )
    .bind(user.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

#[tokio::test]
async fn a_charge_retried_after_its_answer_was_lost_answers_the_balance_it_left() {
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    let first = app.api.charge(user, 1000, Some("top-up")).await.unwrap();
    assert_eq!(json_of(&first)["balance"], 1000);
    forget_kept_answers(&app, user).await;
    app.fund(user, 50).await;

    let retry = app.api.charge(user, 1000, Some("top-up")).await.unwrap();

    assert_eq!(retry.status, 200);
    assert_eq!(json_of(&retry), json_of(&first));
    assert_eq!(app.balance(user).await, 1050);
}

#[tokio::test]
async fn a_payment_retried_after_its_answer_was_lost_answers_the_balance_it_left() {
    let app = spawn_app().await;
    let (user, reservation_id) = ready_to_pay(&app).await;
    let first = app
        .api
        .pay(&user.token, reservation_id, Some("pay"))
        .await
        .unwrap();
    assert_eq!(first.status, 201);
    assert_eq!(json_of(&first)["balance"], 9_000);
    forget_kept_answers(&app, user.user_id).await;
    app.fund(user.user_id, 500).await;

    let retry = app
        .api
        .pay(&user.token, reservation_id, Some("pay"))
        .await
        .unwrap();

    assert_eq!(retry.status, 201);
    assert_eq!(json_of(&retry), json_of(&first));
    assert_eq!(app.balance(user.user_id).await, 9_500);
}

/// Copies of one charge that find it made already, while other charges
/// move the wallet, answer what it left, not the balance they read then.
#[tokio::test]
async fn copies_of_keyed_charges_sent_at_once_each_answer_what_their_charge_left() {
    const CHARGES: i64 = 10;
    const COPIES: usize = 15;
    let app = spawn_app().await;
    let user = Uuid::new_v4();
    // Amounts 1000.., each charge's own: the log tells them apart by it.
    let sent: Vec<(i64, String)> = (0..CHARGES)
        .flat_map(|charge| (0..COPIES).map(move |_| (1000 + charge, format!("charge-{charge}"))))
        .collect();

    let answers = join_all(
        sent.iter()
            .map(|(amount, key)| app.api.charge(user, *amount, Some(key))),
    )
    .await;

    let left = balances_left_by_charges(&app, user).await;
    assert_eq!(left.len(), CHARGES as usize, "each key charged once");
    for ((amount, key), answer) in sent.iter().zip(answers) {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{key}");
        assert_eq!(
            json_of(&answer)["balance"],
            left[amount],
            "{key} answered another balance than its charge left"
        );
    }
    let total: i64 = (0..CHARGES).map(|charge| 1000 + charge).sum();
    assert_eq!(app.balance(user).await, total);
}
