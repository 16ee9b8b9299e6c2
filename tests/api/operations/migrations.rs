//! A store that a newer release migrated further still starts this one:
//! during a rolling upgrade, an instance of the older release restarted
//! beside newer ones must serve again (releases before this could not).

use reqwest::StatusCode;

use crate::helpers::{fresh_database, spawn_app_on, test_config};

#[tokio::test]
async fn a_store_a_newer_release_migrated_further_still_migrates_and_serves() {
    let pool = fresh_database().await;
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time)
         values (99990101000000, 'a newer release''s migration', true, '\\x00', 1)",
    )
    .execute(&pool)
    .await
    .unwrap();

    concert::db::migrate(&pool)
        .await
        .expect("a migration this release does not know is passed over");
    assert!(concert::db::migrations_applied(&pool).await.unwrap());

    let app = spawn_app_on(pool, test_config()).await;
    assert_eq!(app.get_root("/readyz").await.status(), StatusCode::OK);
}
