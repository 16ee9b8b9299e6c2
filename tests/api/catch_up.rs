//! Events stored without their read models (by a tool, or a release that
//! wrote other tables) are applied when the service starts, in batches with
//! the set-based statements of a batch of commands: the read models come out
//! as the service wrote them one command at a time.

use sqlx::PgPool;
use uuid::Uuid;

use super::audit::{booking_history, until_a_hold_expired};
use crate::helpers::{spawn_app_on, spawn_app_with, test_config};

/// Forgets every read model, offsets included, as if no event had been applied.
async fn forget_read_models(pool: &PgPool) {
    let tables = concert::replay::READ_MODEL_TABLES.join(", ");
    sqlx::query(&format!("truncate {tables}"))
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_start_applies_every_event_the_read_models_lack_as_the_service_wrote_them() {
    let mut config = test_config();
    config.hold_ttl_secs = 3;
    let app = spawn_app_with(config.clone()).await;
    booking_history(&app).await;
    // Wallets of many events (a batch of the catch-up holds streams whole).
    for user in (0..3).map(|_| Uuid::new_v4()) {
        for _ in 0..40 {
            assert_eq!(app.charge(user, 10).await.status, 200);
        }
    }
    until_a_hold_expired(&app.pool).await;
    let pool = app.shutdown().await;
    let written = concert::replay::dump_read_models(&pool).await.unwrap();

    forget_read_models(&pool).await;
    let restarted = spawn_app_on(pool.clone(), config).await;
    let caught_up = concert::replay::dump_read_models(&pool).await.unwrap();
    restarted.shutdown().await;

    for ((table, before), (_, after)) in written.iter().zip(&caught_up) {
        assert!(
            !before.is_empty() || table == "payments",
            "{table} has rows"
        );
        assert_eq!(before, after, "{table} as the start caught it up");
    }
}
