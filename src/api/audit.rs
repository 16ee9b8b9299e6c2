//! `/audit`: the event log in commit order, and one stream's history (admin token).

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::Admin;
use super::error::{ApiError, Problem};
use super::extract::{blank_as_default, Path};
use super::paged_array::paged_array;
use super::ranged_query::RangedQuery;
use crate::event_log::{self, LoggedEvent};
use crate::state::AppState;

/// Default and largest page of events.
const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(stream_events))
}

/// A page of the log.
#[derive(Debug, Deserialize, IntoParams)]
pub struct EventPage {
    /// Events after this position (default 0; empty means the default).
    #[param(minimum = 0, value_type = Option<i64>)]
    #[serde(default, deserialize_with = "blank_as_default")]
    after: Option<i64>,
    /// Page size, 1..=1000 (default 100; empty means the default).
    #[param(minimum = 1, maximum = 1000, value_type = Option<i64>)]
    #[serde(default, deserialize_with = "blank_as_default")]
    limit: Option<i64>,
    /// Instead of `after`: the events just before this position, in commit
    /// order (paging back; a position past the end gives the newest).
    #[param(minimum = 1, value_type = Option<i64>)]
    #[serde(default, deserialize_with = "blank_as_default")]
    before: Option<i64>,
}

/// Events in commit order.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPageResponse {
    events: Vec<LoggedEvent>,
    /// Pass as `after` for the next page.
    next: i64,
}

/// Events of one stream (written a page at a time by `paged_array`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct StreamResponse {
    events: Vec<LoggedEvent>,
}

/// The field of `StreamResponse`, which `paged_array` writes.
const STREAM_FIELD: &str = "events";
/// Events read per page of a stream's history: about 600 KB of JSON.
const STREAM_PAGE: usize = 1_000;

/// Every event in the order it was committed; paging with `after=next` never skips or repeats one.
#[utoipa::path(get, path = "/audit/events", tag = "audit", params(EventPage), security(("admin_token" = [])),
    responses(
        (status = 200, body = EventPageResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_events(
    State(app): State<AppState>,
    page: RangedQuery<EventPage>,
    _admin: Admin,
) -> Result<axum::Json<EventPageResponse>, ApiError> {
    let page = page.in_range()?;
    let after = page.after.unwrap_or(0);
    let limit = page.limit.unwrap_or(DEFAULT_PAGE);
    if after < 0 || !(1..=MAX_PAGE).contains(&limit) || page.before.is_some_and(|before| before < 1)
    {
        return Err(ApiError::Validation(format!(
            "after must be 0 or more, before 1 or more, and limit 1..={MAX_PAGE}"
        )));
    }
    if page.after.is_some() && page.before.is_some() {
        return Err(ApiError::Validation(
            "give after or before, not both".into(),
        ));
    }
    event_log::assign_positions(&app.pool).await?;
    let events = match page.before {
        Some(before) => event_log::page_before(&app.pool, before, limit).await?,
        None => event_log::page(&app.pool, None, after, limit).await?,
    };
    let next = match events.last().and_then(|event| event.position) {
        Some(position) => position,
        // An `after` past the log's end (made up, or of another store) is
        // answered with the end: a client paging on skips no later event.
        None => after.min(event_log::last_position(&app.pool).await?),
    };
    Ok(axum::Json(EventPageResponse { events, next }))
}

/// Whether an aggregate with no events yet is one the API knows: every
/// user's wallet (its balance is 0), and every seat of the catalogue (its
/// stream begins with its first hold). Its history is then empty, not
/// unknown.
async fn known_without_events(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<bool, ApiError> {
    Ok(match aggregate_type {
        "Wallet" => true,
        "Seat" => {
            sqlx::query_scalar("select exists (select 1 from seats where seat_id = $1::uuid)")
                .bind(aggregate_id)
                .fetch_one(pool)
                .await?
        }
        _ => false,
    })
}

/// One aggregate's history, in sequence order; empty for a wallet or a
/// seat that has none yet.
#[utoipa::path(get, path = "/audit/streams/{aggregate_type}/{aggregate_id}", tag = "audit",
    params(("aggregate_type" = String, Path, description = "Concert, Seat, Wallet or QueueTicket"),
           ("aggregate_id" = Uuid, Path, description = "the aggregate's id")),
    security(("admin_token" = [])),
    responses(
        (status = 200, body = StreamResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn stream_events(
    State(app): State<AppState>,
    Path((aggregate_type, aggregate_id)): Path<(String, Uuid)>,
    _admin: Admin,
) -> Result<Response, ApiError> {
    event_log::assign_positions(&app.pool).await?;
    // Every aggregate's id is a UUID, stored in its hyphenated lower-case form.
    let aggregate_id = aggregate_id.to_string();
    let stream = (aggregate_type.clone(), aggregate_id.clone());
    let page = move |pool: PgPool, after_sequence| {
        let (aggregate_type, aggregate_id) = stream.clone();
        async move {
            event_log::stream_page(
                &pool,
                &aggregate_type,
                &aggregate_id,
                after_sequence,
                STREAM_PAGE as i64,
            )
            .await
        }
    };
    // From the lowest sequence there is: a row the schema allows below 1
    // (only a forgery writes one) is shown, not hidden.
    let first = page(app.pool.clone(), i64::MIN).await?;
    if first.is_empty() && !known_without_events(&app.pool, &aggregate_type, &aggregate_id).await? {
        return Err(ApiError::NotFound("stream"));
    }
    let pool = app.pool.clone();
    Ok(paged_array(
        STREAM_FIELD,
        STREAM_PAGE,
        first,
        move |last: LoggedEvent| page(pool.clone(), last.sequence),
    ))
}
