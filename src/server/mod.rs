//! Running the service: preparing the database and state, then serving HTTP
//! with the scheduler beside it until shutdown.

mod connections;
mod event_streams;
mod idle;
mod open_files;
mod parse_errors;
mod stalled_streams;
mod stop;
mod unread_bodies;

pub use stop::stop_signal;

use std::time::Duration;

use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::identity::UserTokens;
use crate::state::AppState;
use crate::tokens::TokenSigner;

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("read models: {0}")]
    Projection(#[from] crate::event_store::ProjectionError),
    #[error("user tokens: {0}")]
    Identity(#[from] crate::identity::IdentityError),
}

/// The fewest characters of an admin token not worth warning about: a
/// token of 16 random letters and digits is out of reach of guessing over
/// HTTP, one like `admin` or `secret` is not.
const GUESS_PROOF_CHARS: usize = 16;

/// Whether an admin token is short enough to be guessed.
fn guessable(token: &str) -> bool {
    token.chars().count() < GUESS_PROOF_CHARS
}

/// Migrates the database, loads the token secrets and brings the read models
/// up to date with the log.
pub async fn prepare(pool: PgPool, config: Config) -> Result<AppState, ServeError> {
    crate::db::migrate(&pool).await?;
    let database_ahead = crate::clock::follow_database_once(&pool).await?;
    tracing::info!(
        database_ahead_us = database_ahead.num_microseconds(),
        "keeping time by the database's clock"
    );
    let tokens = TokenSigner::from_database(&pool).await?;
    let users = UserTokens::from_settings(&config.identity(), &pool).await?;
    // An empty value (`CONCERT_ADMIN_TOKEN=`) is no token anyone can send.
    let given = config
        .admin_token
        .clone()
        .filter(|token| !token.trim().is_empty());
    if let Some(short) = given.as_deref().filter(|token| guessable(token)) {
        tracing::warn!(
            characters = short.chars().count(),
            "CONCERT_ADMIN_TOKEN is short: whoever reaches the admin and audit routes may guess it \
             (they are not throttled); use {GUESS_PROOF_CHARS} or more random characters, or leave it unset to have one generated"
        );
    }
    let admin_token = given.unwrap_or_else(|| {
        let generated = hex::encode(rand::random::<[u8; 24]>());
        const GENERATED: &str =
            "CONCERT_ADMIN_TOKEN is unset or empty; generated this admin token for this run";
        if tracing::enabled!(tracing::Level::WARN) {
            tracing::warn!(admin_token = %generated, "{GENERATED}");
        } else {
            // A log filtered above warnings would lose it, and with it every
            // admin and audit route of the run.
            crate::say_to_stderr!("{GENERATED}: {generated}");
        }
        generated
    });
    let app = AppState::new(pool, config, admin_token, tokens, users);
    let behind = app.projectors.catch_up().await?;
    if behind > 0 {
        tracing::info!(streams = behind, "read models caught up with the event log");
    }
    // The lag's first look reads the whole log: here, not in the first probe.
    app.projection_lag.state(&app.pool).await?;
    Ok(app)
}

/// Records the queue's active limit and the TTLs this serve runs with, for
/// the audit (only a serve: a restore, which prepares a state too, serves
/// nothing).
pub async fn record_settings(app: &AppState) -> Result<(), ServeError> {
    let ttls = crate::audit::Ttls {
        hold_secs: u32::try_from(app.config.hold_ttl_secs).unwrap_or(u32::MAX),
        active_secs: u32::try_from(app.config.queue_active_ttl_secs).unwrap_or(u32::MAX),
    };
    crate::served_settings::record_ttls(&app.pool, ttls).await?;
    let limit = app.config.queue_active_max;
    if let Some(before) = crate::served_settings::record_queue_active_max(&app.pool, limit).await? {
        tracing::warn!(
            before,
            now = limit,
            "this database was served with another CONCERT_QUEUE_ACTIVE_MAX; instances that share it must agree, and `concert audit` checks against the latest"
        );
    }
    Ok(())
}

/// Seconds beyond the request timeout that shutdown waits for open connections.
const GRACE_MARGIN_SECS: u64 = 2;

/// Serves HTTP on `listener` and runs the scheduler and the metrics sampler
/// until `shutdown` turns true; requests in flight are finished first.
pub async fn serve(listener: TcpListener, app: AppState, shutdown: watch::Receiver<bool>) {
    let scheduler = tokio::spawn(crate::scheduler::run(app.clone(), shutdown.clone()));
    let feed = tokio::spawn(crate::live::follow(
        app.pool.clone(),
        app.live.clone(),
        shutdown.clone(),
    ));
    let sampler = tokio::spawn(crate::metrics_sampler::run(
        app.pool.clone(),
        app.projection_lag.clone(),
        shutdown.clone(),
    ));
    let clock = tokio::spawn(crate::clock::follow_database(
        app.pool.clone(),
        shutdown.clone(),
    ));
    let grace = Duration::from_secs(app.config.request_timeout_secs + GRACE_MARGIN_SECS);
    // A request may take the request timeout, its head included.
    let head_within = Duration::from_secs(app.config.request_timeout_secs);
    let most =
        open_files::most_connections(app.config.max_connections, app.config.db_max_connections);
    let draining = app.draining.clone();
    let connections = connections::accept(
        listener,
        crate::api::router(app),
        draining,
        head_within,
        most,
        shutdown.clone(),
    );
    // A client that never finishes its request would hold graceful shutdown
    // open for ever: once every request has had its full timeout, the
    // remaining connections are closed.
    let mut signal = shutdown.clone();
    tokio::select! {
        _ = async { connections.await.close().await } => {}
        _ = async {
            let _ = signal.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(grace_secs = grace.as_secs(), "closing connections still open after the grace period");
        }
    };
    // The scheduler, the feed, the sampler and the clock stop on the same signal.
    let _ = scheduler.await;
    let _ = sampler.await;
    let _ = feed.await;
    let _ = clock.await;
    tracing::info!("stopped serving: every request in flight was answered");
}

/// Resolves with the signal's name on SIGINT or SIGTERM (on SIGINT alone
/// when SIGTERM cannot be listened for).
pub async fn stop_requested() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = match signal(SignalKind::terminate()) {
        Ok(terminate) => terminate,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_admin_token_is_guessable_and_a_long_random_one_not() {
        for short in ["a", "admin", "let-me-in", "fifteen-chars-x"] {
            assert!(guessable(short), "{short}");
        }
        // Counted in characters, not bytes: four bytes each.
        assert!(guessable(&"🎫".repeat(15)));
        for long in ["sixteen-chars-xx", &hex::encode([7u8; 24])] {
            assert!(!guessable(long), "{long}");
        }
    }
}
