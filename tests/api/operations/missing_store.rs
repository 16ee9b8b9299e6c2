//! Only `serve` and `migrate` make a store of an empty database: the other
//! commands, on a database without a store (a DATABASE_URL naming the wrong
//! one), say so and change nothing. Before, `events` and `backup` failed
//! with PostgreSQL's own `relation "events" does not exist`, and `audit`,
//! `replay` and `user-token` created a store there: the audit passed on
//! nothing (exit 0), and the user token, signed by the new store's key,
//! opened nothing.

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
async fn commands_on_a_database_without_a_store_say_so_and_create_nothing() {
    let url = database_without_a_store().await;
    let file =
        std::env::temp_dir().join(format!("concert-nostore-{}.dump", Uuid::new_v4().simple()));
    let file_arg = file.to_str().unwrap();

    let user = Uuid::new_v4().to_string();
    for (args, refused_with) in [
        (vec!["events"], 1),
        (vec!["backup", file_arg], 1),
        (vec!["replay"], 1),
        (vec!["user-token", &user], 1),
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
