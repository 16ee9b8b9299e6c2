//! Answers kept for `Idempotency-Key`s are forgotten after
//! `CONCERT_IDEMPOTENCY_KEY_TTL_SECS`, and a retry after that still answers
//! as the first try did and moves no money: the aggregates know the
//! command's id, which the key derives.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::{assert_problem, json_of, spawn_app_with, test_config, TestApp};
use crate::payments::ready_to_pay;

async fn kept_answers(app: &TestApp, user: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from idempotency_keys where user_id = $1")
        .bind(user)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn kept_answers_are_forgotten_in_time_and_retries_after_still_answer_the_same() {
    let mut config = test_config();
    config.idempotency_key_ttl_secs = 1;
    let app = spawn_app_with(config).await;
    let (user, reservation_id) = ready_to_pay(&app).await;
    let charge = app
        .api
        .charge(user.user_id, 700, Some("top-up"))
        .await
        .unwrap();
    let payment = app
        .api
        .pay(&user.token, reservation_id, Some("pay"))
        .await
        .unwrap();
    assert_eq!((charge.status, payment.status), (200, 201));
    assert_eq!(kept_answers(&app, user.user_id).await, 2);

    let waited = Instant::now();
    while kept_answers(&app, user.user_id).await > 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(15),
            "the kept answers are still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.fund(user.user_id, 50).await;

    let charged_again = app
        .api
        .charge(user.user_id, 700, Some("top-up"))
        .await
        .unwrap();
    let paid_again = app
        .api
        .pay(&user.token, reservation_id, Some("pay"))
        .await
        .unwrap();
    let reused = app
        .api
        .charge(user.user_id, 701, Some("top-up"))
        .await
        .unwrap();

    assert_eq!(charged_again.status, 200);
    assert_eq!(json_of(&charged_again), json_of(&charge));
    assert_eq!(paid_again.status, 201);
    assert_eq!(json_of(&paid_again), json_of(&payment));
    assert_problem(
        reused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    // 10,000 and 700 charged, 1,000 paid, 50 charged: each once.
    assert_eq!(app.balance(user.user_id).await, 9_750);
}

/// The one way the contract's "charges once" breaks, documented in the
/// README: a retry after its kept answer was forgotten and after more than
/// `REMEMBERED_CHARGES` (1,000) other charges to the wallet. The audit names
/// the charge made twice.
#[tokio::test]
async fn a_retry_charged_again_after_the_wallet_forgot_its_id_is_named_by_the_audit() {
    let mut config = test_config();
    config.idempotency_key_ttl_secs = 1;
    let app = spawn_app_with(config).await;
    let user = Uuid::new_v4();
    let first = app.api.charge(user, 700, Some("top-up")).await.unwrap();
    assert_eq!(first.status, 200);
    for _ in 0..1_000 {
        assert_eq!(app.charge(user, 1).await.status, 200);
    }
    let waited = Instant::now();
    while kept_answers(&app, user).await > 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(15),
            "the kept answer is still there"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(crate::audit::audit(&app.pool).await.violations.is_empty());

    let again = app.api.charge(user, 700, Some("top-up")).await.unwrap();

    assert_eq!(again.status, 200);
    assert_eq!(app.balance(user).await, 2_400, "charged a second time");
    let report = crate::audit::audit(&app.pool).await;
    let rules: Vec<&str> = report.violations.iter().map(|found| found.rule).collect();
    assert_eq!(rules, ["a charge is made once"], "{:?}", report.violations);
    assert!(report.violations[0].detail.contains("first at position"));
    let events = &report.violations[0].events;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events[0].ends_with(&format!("Wallet/{user} seq 1 Charged")),
        "{events:?}"
    );
    assert!(
        events[1].ends_with(&format!("Wallet/{user} seq 1002 Charged")),
        "{events:?}"
    );
}
