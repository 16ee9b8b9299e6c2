//! The PostgreSQL side of the tests: the server (the one in `DATABASE_URL`,
//! or a private one started once for this test binary), a template database
//! migrated once, and a fresh copy of it for every test.

use std::sync::OnceLock;

use concert::private_postgres::start_scratch;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// The server's URL for database `db`.
fn url_for(db: &str) -> String {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    let base = SERVER.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) => Ok(url),
        // Lives as long as the test process; stopped and removed at its exit.
        Err(_) => start_scratch("concert-tests").map_err(|e| e.to_string()),
    });
    let base = base.as_ref().expect("a PostgreSQL server for the tests");
    let mut url = url::Url::parse(base).expect("a database URL");
    url.set_path(&format!("/{db}"));
    url.to_string()
}

/// The URL of the database `pool` connects to, for the binary's commands.
pub fn database_url_of(pool: &PgPool) -> String {
    url_for(
        pool.connect_options()
            .get_database()
            .expect("a test database name"),
    )
}

/// A fresh, migrated database for one test.
pub async fn fresh_database() -> PgPool {
    let template = template_database().await;
    let url = new_database("test", &format!("template {template}")).await;
    PgPoolOptions::new()
        .max_connections(40)
        .connect(&url)
        .await
        .expect("connect to test database")
}

/// The URL of a new database that holds nothing, not even the schema: one
/// DATABASE_URL might name by mistake.
pub async fn database_without_a_store() -> String {
    new_database("bare", "").await
}

/// The URL of a new database named `prefix_<uuid>`, created `with` the
/// options given.
async fn new_database(prefix: &str, with: &str) -> String {
    let name = format!("{prefix}_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&url_for("postgres"))
        .await
        .expect("connect to postgres");
    sqlx::query(&format!("create database {name} {with}"))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    url_for(&name)
}

/// A database migrated once per test binary, copied for every test.
async fn template_database() -> &'static str {
    static TEMPLATE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    static GUARD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(name) = TEMPLATE.get() {
        return name;
    }
    let name = format!("template_{}", std::process::id());
    // Each test has its own runtime; build the template on a thread of its own.
    let built = name.clone();
    std::thread::spawn(move || {
        let _guard = GUARD
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let mut admin = PgConnection::connect(&url_for("postgres"))
                    .await
                    .expect("connect to postgres");
                let exists: bool = sqlx::query_scalar(
                    "select exists (select 1 from pg_database where datname = $1)",
                )
                .bind(&built)
                .fetch_one(&mut admin)
                .await
                .unwrap();
                if !exists {
                    sqlx::query(&format!("create database {built}"))
                        .execute(&mut admin)
                        .await
                        .unwrap();
                    let pool = PgPool::connect(&url_for(&built)).await.unwrap();
                    concert::db::migrate(&pool).await.expect("migrations apply");
                    pool.close().await;
                }
            })
    })
    .join()
    .expect("template database");
    TEMPLATE.get_or_init(|| async { name }).await
}
