//! `/concerts`: scheduling (admin), the catalog, and a concert's dates and free seats.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Datelike, SubsecRound, Timelike, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::auth::{require_active, Admin, VerifiedToken};
use super::bounded::Bounded;
use super::context::Correlation;
use super::error::{ApiError, Problem};
use super::extract::{blank_as_default, Json, Path};
use super::objects_only::objects_only;
use super::paged_array::paged_array;
use super::ranged_query::RangedQuery;
use super::read_source;
use crate::aggregates::concert::{MAX_PRICE, MAX_SEATS_PER_DATE, STARTS_AT_YEARS};
use crate::aggregates::{ConcertCommand, ConcertDate};
use crate::commands::execute;
use crate::ids::{ConcertId, DateId};
use crate::money::Won;
use crate::projections::available_dates;
use crate::state::AppState;

/// Default and largest page of free seats.
const DEFAULT_SEAT_PAGE: i64 = 1000;
const MAX_SEAT_PAGE: i64 = 5000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(schedule_concert, list_concerts))
        .routes(routes!(list_dates))
        .routes(routes!(list_free_seats))
}

/// A concert to schedule.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ScheduleConcertRequest {
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    title: String,
    #[schema(min_items = 1, max_items = 100)]
    #[serde(deserialize_with = "objects_only")]
    dates: Vec<DateRequest>,
}

/// One date to schedule.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DateRequest {
    starts_at: DateTime<Utc>,
    #[schema(value_type = u32, minimum = 1, maximum = 50000)]
    seats: Bounded<1, { MAX_SEATS_PER_DATE as i64 }>,
    #[schema(value_type = i64, minimum = 1, maximum = 1000000000)]
    price: Bounded<1, { MAX_PRICE.0 }>,
}

/// A scheduled concert.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConcertResponse {
    concert_id: Uuid,
    title: String,
    dates: Vec<ScheduledDate>,
}

/// A scheduled date.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledDate {
    date_id: Uuid,
    starts_at: DateTime<Utc>,
    seats: u32,
    #[schema(value_type = i64)]
    price: Won,
}

/// Schedules a concert with its dates (admin token).
#[utoipa::path(post, path = "/concerts", tag = "concerts", request_body = ScheduleConcertRequest,
    security(("admin_token" = [])),
    responses(
        (status = 201, body = ConcertResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn schedule_concert(
    State(app): State<AppState>,
    _admin: Admin,
    correlation: Correlation,
    Json(body): Json<ScheduleConcertRequest>,
) -> Result<(StatusCode, axum::Json<ConcertResponse>), ApiError> {
    let concert_id = ConcertId::new();
    // A leap second (`…:60Z`) is refused: JavaScript and most clients cannot
    // read it back. Sub-seconds are kept to the microsecond, as the database keeps them.
    // Each refusal names the date by its place in the request: the date ids
    // are made here, so the aggregate's refusal names one the client never saw.
    for (index, date) in body.dates.iter().enumerate() {
        if date.starts_at.nanosecond() >= 1_000_000_000 {
            return Err(ApiError::Validation(format!(
                "dates[{index}].starts_at may not be a leap second"
            )));
        }
        if !STARTS_AT_YEARS.contains(&date.starts_at.year()) {
            return Err(ApiError::Validation(format!(
                "dates[{index}].starts_at is {}; a date starts in the years {} to {}",
                date.starts_at,
                STARTS_AT_YEARS.start(),
                STARTS_AT_YEARS.end()
            )));
        }
    }
    let dates: Vec<ConcertDate> = body
        .dates
        .iter()
        .map(|date| ConcertDate {
            date_id: DateId::new(),
            starts_at: date.starts_at.trunc_subsecs(6),
            seats: date.seats.narrow(),
            price: Won(date.price.get()),
        })
        .collect();
    let command = ConcertCommand::ScheduleConcert {
        title: body.title.clone(),
        dates: dates.clone(),
    };
    execute(
        &app.concerts,
        &concert_id.to_string(),
        command,
        &correlation.as_actor("admin"),
    )
    .await?;
    let response = ConcertResponse {
        concert_id: concert_id.0,
        title: body.title.trim().to_string(),
        dates: dates
            .into_iter()
            .map(|date| ScheduledDate {
                date_id: date.date_id.0,
                starts_at: date.starts_at,
                seats: date.seats,
                price: date.price,
            })
            .collect(),
    };
    Ok((StatusCode::CREATED, axum::Json(response)))
}

/// The catalog (written a page at a time by `paged_array`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ConcertListResponse {
    concerts: Vec<ConcertSummary>,
}

/// One concert of the catalog.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConcertSummary {
    concert_id: Uuid,
    title: String,
}

/// Lists every concert.
#[utoipa::path(get, path = "/concerts", tag = "concerts",
    responses((status = 200, body = ConcertListResponse),
              (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn list_concerts(State(app): State<AppState>) -> Result<Response, ApiError> {
    let first = concerts_after(&app.pool, None).await?;
    let pool = app.pool.clone();
    Ok(paged_array(
        CONCERT_LIST_FIELD,
        CATALOGUE_PAGE,
        first,
        move |last| {
            let pool = pool.clone();
            async move { concerts_after(&pool, Some(last.concert_id)).await }
        },
    ))
}

/// The field of `ConcertListResponse`, which `paged_array` writes.
const CONCERT_LIST_FIELD: &str = "concerts";
/// Concerts read per page of the catalogue: about 400 KB of JSON (a page
/// of 1,000 made a catalogue of 32,500 a third slower to list, in round trips).
const CATALOGUE_PAGE: usize = 5_000;

async fn concerts_after(pool: &PgPool, last: Option<Uuid>) -> sqlx::Result<Vec<ConcertSummary>> {
    let rows = available_dates::concerts_page(pool, last, CATALOGUE_PAGE as i64).await?;
    Ok(rows
        .into_iter()
        .map(|row| ConcertSummary {
            concert_id: row.concert_id,
            title: row.title,
        })
        .collect())
}

/// The bookable dates of a concert.
#[derive(Debug, Serialize, ToSchema)]
pub struct DateListResponse {
    dates: Vec<BookableDate>,
}

/// A date with free seats.
#[derive(Debug, Serialize, ToSchema)]
pub struct BookableDate {
    date_id: Uuid,
    starts_at: DateTime<Utc>,
    #[schema(value_type = i64)]
    price: Won,
    total_seats: i32,
    available_seats: i32,
}

/// Lists the concert's dates still ahead with a free seat, earliest first (active queue token).
#[utoipa::path(get, path = "/concerts/{concert_id}/dates", tag = "concerts",
    params(("concert_id" = Uuid, Path, description = "the concert")),
    security(("queue_token" = [])),
    responses(
        (status = 200, body = DateListResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_dates(
    State(app): State<AppState>,
    Path(concert_id): Path<Uuid>,
    VerifiedToken(ticket_id): VerifiedToken,
) -> Result<axum::Json<DateListResponse>, ApiError> {
    let ticket = read_source::ticket(&app, ticket_id.0).await?;
    require_active(&ticket)?;
    if ticket.concert_id != concert_id {
        return Err(ApiError::TokenNotActive("the token is for another concert"));
    }
    let dates = read_source::bookable_dates(&app, concert_id)
        .await?
        .into_iter()
        .map(|row| BookableDate {
            date_id: row.date_id,
            starts_at: row.starts_at,
            price: row.price,
            total_seats: row.total_seats,
            available_seats: row.available_seats,
        })
        .collect();
    Ok(axum::Json(DateListResponse { dates }))
}

/// A page of free seats.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SeatPage {
    /// List seats numbered above this (default 0; empty means the default).
    #[param(minimum = 0, value_type = Option<i64>)]
    #[serde(default, deserialize_with = "blank_as_default")]
    after_seat_no: Option<i64>,
    /// Page size, 1..=5000 (default 1000; empty means the default).
    #[param(minimum = 1, maximum = 5000, value_type = Option<i64>)]
    #[serde(default, deserialize_with = "blank_as_default")]
    limit: Option<i64>,
}

/// Free seats of a date.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeatListResponse {
    seats: Vec<FreeSeat>,
    /// Pass as `after_seat_no` for the next page; null when none remain.
    #[schema(required = true)]
    next_after_seat_no: Option<i32>,
}

/// A free seat.
#[derive(Debug, Serialize, ToSchema)]
pub struct FreeSeat {
    seat_id: Uuid,
    seat_no: i32,
    #[schema(value_type = i64)]
    price: Won,
}

/// Lists the free seats of a date by number (active queue token).
#[utoipa::path(get, path = "/concerts/{concert_id}/dates/{date_id}/seats", tag = "concerts",
    params(("concert_id" = Uuid, Path, description = "the concert"),
           ("date_id" = Uuid, Path, description = "the date"), SeatPage),
    security(("queue_token" = [])),
    responses(
        (status = 200, body = SeatListResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
async fn list_free_seats(
    State(app): State<AppState>,
    Path((concert_id, date_id)): Path<(Uuid, Uuid)>,
    page: RangedQuery<SeatPage>,
    VerifiedToken(ticket_id): VerifiedToken,
) -> Result<axum::Json<SeatListResponse>, ApiError> {
    let page = page.in_range()?;
    let limit = page.limit.unwrap_or(DEFAULT_SEAT_PAGE);
    if !(1..=MAX_SEAT_PAGE).contains(&limit) {
        return Err(ApiError::Validation(format!(
            "limit must be 1..={MAX_SEAT_PAGE}"
        )));
    }
    let after = page.after_seat_no.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::Validation(
            "after_seat_no must be 0 or more".into(),
        ));
    }
    // No seat is numbered above i32::MAX: a larger start is an empty page.
    let after = after.min(i64::from(i32::MAX));
    // The token's ticket comes with the page; it is checked as the
    // ActiveToken extractor would. One row more than asked tells whether
    // another page exists.
    let listing = read_source::free_seat_page(
        &app,
        ticket_id.0,
        concert_id,
        date_id,
        after as i32,
        limit + 1,
    )
    .await?;
    require_active(&listing.ticket)?;
    if listing.ticket.concert_id != concert_id {
        return Err(ApiError::TokenNotActive("the token is for another concert"));
    }
    let mut rows = listing.seats.ok_or(ApiError::NotFound("date"))?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_after_seat_no = if more {
        rows.last().map(|row| row.seat_no)
    } else {
        None
    };
    let seats = rows
        .into_iter()
        .map(|row| FreeSeat {
            seat_id: row.seat_id,
            seat_no: row.seat_no,
            price: row.price,
        })
        .collect();
    Ok(axum::Json(SeatListResponse {
        seats,
        next_after_seat_no,
    }))
}
