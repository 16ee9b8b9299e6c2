//! The store must take any text a client may send. A database in another
//! encoding than UTF8 refused an emoji in a title when its batch was stored,
//! and every concert created with it was answered 503: the service now
//! refuses such a database when it starts.

use sqlx::PgPool;

use crate::helpers::{database_url_of, fresh_database};

/// A new, empty database named `name` in `encoding`, beside `pool`'s.
async fn database_in(pool: &PgPool, name: &str, encoding: &str) -> String {
    sqlx::query(&format!(
        "create database {name} encoding '{encoding}' lc_collate 'C' lc_ctype 'C' template template0"
    ))
    .execute(pool)
    .await
    .unwrap();
    let mut url = url::Url::parse(&database_url_of(pool)).unwrap();
    url.set_path(&format!("/{name}"));
    url.to_string()
}

#[tokio::test]
async fn a_database_not_in_utf8_is_refused_at_start_and_left_untouched() {
    let pool = fresh_database().await;
    let name = format!("latin1_{}", uuid::Uuid::new_v4().simple());
    let url = database_in(&pool, &name, "LATIN1").await;

    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_concert"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env_remove("CONCERT_DATA_DIR")
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("encoding is LATIN1") && said.contains("UTF8"),
        "{said}"
    );

    let latin1 = PgPool::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_schema = 'public'",
    )
    .fetch_one(&latin1)
    .await
    .unwrap();
    assert_eq!(tables, 0, "the service changed a database it refused");
}
