//! The Server-Sent Event routes: a queue token's standing and a date's seat
//! map, pushed from this instance's live feed (`crate::live`). They take the
//! same tokens as the JSON routes, in `Authorization: Bearer` (the pages read
//! them with `fetch` streams, which can send it). They are served outside
//! the request timeout, and described in the OpenAPI document by `LiveDoc`.

mod line_moves;
mod seats;
mod standing;

use std::time::Duration;

use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::state::AppState;

/// API.md: a comment at least every 15 s keeps proxies from closing a
/// stream; every 10 s, whatever else is sent, leaves a margin for slow writes.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The OpenAPI description of the two streams.
#[derive(utoipa::OpenApi)]
#[openapi(paths(standing::standing_events, seats::seat_events))]
pub struct LiveDoc;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/queue/tokens/current/events",
            get(standing::standing_events),
        )
        .route(
            "/api/v1/concerts/{concert_id}/dates/{date_id}/seats/events",
            get(seats::seat_events),
        )
}

/// A timer that ticks every `KEEP_ALIVE` from now, whatever is sent: one
/// reset by each event costs more per event, and leaves a comment line
/// further apart than the contract allows.
fn keep_alive_timer() -> tokio::time::Interval {
    every(KEEP_ALIVE)
}

/// A timer that ticks every `period` from now (not at once), late ticks
/// delayed rather than bunched.
fn every(period: Duration) -> tokio::time::Interval {
    let mut timer = tokio::time::interval_at(Instant::now() + period, period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer
}

/// The `Last-Event-ID` a reconnecting client sends, when it is a position.
fn last_event_id(headers: &HeaderMap) -> Option<i64> {
    headers
        .get("last-event-id")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The tokio instant of a wall-clock deadline.
fn instant_of(at: DateTime<Utc>) -> Instant {
    let left = (at - crate::clock::now())
        .to_std()
        .unwrap_or(Duration::ZERO);
    Instant::now() + left
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_if(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
