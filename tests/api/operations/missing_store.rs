//! The commands that only read (`events`, `audit`, `backup`), on a database
//! without a store (a DATABASE_URL naming the wrong one), say so and change
//! nothing. Before, `events` and `backup` failed with PostgreSQL's own
//! `relation "events" does not exist`, and `audit` made a store there and
//! passed on nothing (exit 0). `user-token` and `replay` make the store, as
//! `serve` does: a token minted before a new database's first serve is that
//! store's, and opens it.

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::database_without_a_store;

/// Runs `concert args` on `database_url`: its exit code and what it printed
/// to stderr.
async fn run(database_url: &str, args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_concert"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code().unwrap_or(-1), stderr)
}

#[tokio::test]
async fn reading_commands_on_a_database_without_a_store_say_so_and_create_nothing() {
    let url = database_without_a_store().await;
    let file =
        std::env::temp_dir().join(format!("concert-nostore-{}.dump", Uuid::new_v4().simple()));
    let file_arg = file.to_str().unwrap();

    for (args, refused_with) in [
        (vec!["events"], 1),
        (vec!["backup", file_arg], 1),
        // It could not check at all: not 1, a violation.
        (vec!["audit"], 2),
    ] {
        let (code, stderr) = run(&url, &args).await;
        assert_eq!(code, refused_with, "{args:?}: {stderr}");
        assert!(
            stderr.contains("holds no concert store") && stderr.contains("concert migrate"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("does not exist"), "{args:?}: {stderr}");
    }
    assert!(!file.exists(), "no backup file is left behind");

    let mut database = PgConnection::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_schema = 'public'",
    )
    .fetch_one(&mut database)
    .await
    .unwrap();
    assert_eq!(tables, 0, "nothing was created in the database named");
}

#[tokio::test]
async fn a_user_token_minted_before_a_new_databases_first_serve_opens_it() {
    let url = database_without_a_store().await;
    let user = Uuid::new_v4();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_concert"))
        .args(["user-token", &user.to_string()])
        .env("DATABASE_URL", &url)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let app = crate::helpers::spawn_app_on(pool, crate::helpers::test_config()).await;
    let balance = app
        .get(&format!("/users/{user}/balance"), Some(&token))
        .await;
    assert_eq!(balance.status(), reqwest::StatusCode::OK);
}
