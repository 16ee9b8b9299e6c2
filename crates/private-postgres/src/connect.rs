//! Waiting for the server to accept connections, and its database.

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};

use super::error::{io_err, Result};
use super::process::Shared;
use super::DATABASE;

pub(super) enum Readiness {
    Ready,
    Exited(String),
    TimedOut(String),
}

/// Tries to connect until the server accepts or `patience` has passed (at
/// least one try, each of up to 5 s).
pub(super) async fn await_ready(
    admin: PgConnectOptions,
    shared: Arc<Shared>,
    patience: Duration,
) -> Readiness {
    let deadline = Instant::now() + patience;
    let mut last_error: String;
    loop {
        if let Some(status) = shared.lock().clone() {
            return Readiness::Exited(status);
        }
        match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&admin)).await
        {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Readiness::Ready;
            }
            Ok(Err(e)) => last_error = e.to_string(),
            Err(_) => last_error = "connection attempt timed out".into(),
        }
        if Instant::now() >= deadline {
            return Readiness::TimedOut(last_error);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(super) async fn ensure_database(
    admin: PgConnectOptions,
    app: PgConnectOptions,
) -> Result<(), sqlx::Error> {
    let mut conn = PgConnection::connect_with(&admin).await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(DATABASE)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        tracing::info!("creating database {DATABASE}");
        match conn
            .execute(format!("create database {DATABASE}").as_str())
            .await
        {
            Ok(_) => {}
            // duplicate_database: someone else was quicker.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e),
        }
    }
    conn.close().await?;
    // The URL we hand out must work.
    PgConnection::connect_with(&app).await?.close().await
}

/// Runs `fut` to completion on a throwaway current-thread runtime in a scoped
/// thread, so that this works with or without a surrounding tokio runtime.
pub(super) fn run_blocking<F>(fut: F) -> Result<F::Output>
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(io_err("building a tokio runtime"))?;
                Ok(runtime.block_on(fut))
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
