//! `serve --demo`: a sample concert to try the service with.

use chrono::Duration;
use sqlx::Connection;

use crate::aggregates::{ConcertCommand, ConcertDate};
use crate::booking::BookingError;
use crate::commands::{execute, CommandContext};
use crate::identity::MintedToken;
use crate::ids::{ConcertId, DateId, UserId};
use crate::money::Won;
use crate::projections::available_dates;
use crate::state::AppState;

/// Advisory lock key of the seeding ("demo" in ASCII): instances started
/// together on an empty store each scheduled a sample concert before.
pub const DEMO_LOCK: i64 = 0x0000_0000_6465_6d6f;

/// Schedules a sample concert (3 dates x 50 seats) when no concert exists
/// yet, one instance at a time.
pub async fn seed_if_empty(app: &AppState) -> Result<Option<ConcertId>, BookingError> {
    // A session of its own, closed after: the lock goes with it, whatever
    // the seeding's outcome.
    let mut session = app.pool.acquire().await?.detach();
    sqlx::query("select pg_advisory_lock($1)")
        .bind(DEMO_LOCK)
        .execute(&mut session)
        .await?;
    let seeded = seed_unless_any(app).await;
    let _ = session.close().await;
    seeded
}

async fn seed_unless_any(app: &AppState) -> Result<Option<ConcertId>, BookingError> {
    if available_dates::any_concert(&app.pool).await? {
        return Ok(None);
    }
    let concert_id = ConcertId::new();
    // Evenings at 19:00 UTC, one, two and three weeks from today (by the
    // database's clock, as every time the service keeps).
    let evening = crate::clock::now()
        .date_naive()
        .and_hms_opt(19, 0, 0)
        .expect("19:00 is a time")
        .and_utc();
    let dates = (1..=3)
        .map(|week| ConcertDate {
            date_id: DateId::new(),
            starts_at: evening + Duration::weeks(week),
            seats: 50,
            price: Won(150_000),
        })
        .collect();
    let command = ConcertCommand::ScheduleConcert {
        title: "Demo Concert".to_string(),
        dates,
    };
    let context = CommandContext {
        actor: "admin".to_string(),
        ..CommandContext::scheduler()
    };
    execute(&app.concerts, &concert_id.to_string(), command, &context).await?;
    Ok(Some(concert_id))
}

/// The sample user of the demo: the same id on every start.
pub fn sample_user() -> UserId {
    UserId(uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        b"concert:demo-user",
    ))
}

/// A day-long user token for the sample user, when the service mints tokens.
pub fn sample_user_token(app: &AppState) -> Option<MintedToken> {
    app.users
        .mint(sample_user(), std::time::Duration::from_secs(86_400))
}
