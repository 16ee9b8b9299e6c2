//! What a request reads from the live feed's memory rather than the
//! database: the listings while the feed is current (no query once the
//! concert, the date and the ticket are known; otherwise the read models),
//! and the refusal of a hold of a seat the memory shows as taken. README.md,
//! "The listings from memory", says how the memory stays correct with several
//! instances.

use uuid::Uuid;

use super::error::ApiError;
use crate::booking::queue::{self, Standing};
use crate::ids::UserId;
use crate::live::seat_map::MapError;
use crate::projections::available_dates::{self, DateRow};
use crate::projections::available_seats::{self, TicketSeatPage};
use crate::projections::queue_tickets::{self, TicketRow, TicketStatus};
use crate::state::AppState;

/// Counts which source answered a listing.
fn count(listing: &'static str, memory: bool) {
    let source = if memory { "memory" } else { "database" };
    metrics::counter!("concert_listings_total", "listing" => listing, "source" => source)
        .increment(1);
}

/// The ticket of a genuine queue token (not yet checked for being active).
pub async fn ticket(app: &AppState, ticket_id: Uuid) -> Result<TicketRow, ApiError> {
    let ticket = if app.live.is_current() {
        app.live.tickets().get(&app.pool, ticket_id).await?
    } else {
        queue_tickets::find_ticket(&app.pool, ticket_id).await?
    };
    ticket.ok_or(ApiError::TokenInvalid)
}

/// Where a ticket stands in its concert's line: from the line as the feed's
/// memory has it, or else from the read models.
pub async fn standing(app: &AppState, ticket: &TicketRow) -> Result<Standing, ApiError> {
    let memory = app.live.is_current();
    count("standing", memory);
    Ok(if memory {
        queue::looked_at_standing(app, ticket).await?
    } else {
        queue::standing(app, ticket).await?
    })
}

/// The concert's dates that start later and still have a free seat.
pub async fn bookable_dates(app: &AppState, concert_id: Uuid) -> Result<Vec<DateRow>, ApiError> {
    let memory = app.live.is_current();
    count("dates", memory);
    if memory {
        Ok(app
            .live
            .bookable_dates(&app.pool, concert_id, crate::clock::now())
            .await?)
    } else {
        Ok(available_dates::bookable_dates(&app.pool, concert_id, crate::clock::now()).await?)
    }
}

/// The caller's ticket and a page of free seats. The page is read only for a
/// ticket active for the concert, and is `None` for a date not of it.
pub async fn free_seat_page(
    app: &AppState,
    ticket_id: Uuid,
    concert_id: Uuid,
    date_id: Uuid,
    after_seat_no: i32,
    limit: i64,
) -> Result<TicketSeatPage, ApiError> {
    let feed = &app.live;
    let memory = feed.is_current();
    count("seats", memory);
    if !memory {
        // One query for both.
        return available_seats::free_seats_for_ticket(
            &app.pool,
            ticket_id,
            concert_id,
            date_id,
            after_seat_no,
            limit,
            crate::clock::now(),
        )
        .await?
        .ok_or(ApiError::TokenInvalid);
    }
    let ticket = ticket(app, ticket_id).await?;
    let now = crate::clock::now();
    let usable = ticket.concert_id == concert_id && ticket.status_at(now) == TicketStatus::Active;
    let seats = if usable {
        let page = feed
            .seat_maps()
            .free_seats(&app.pool, date_id, after_seat_no, limit as usize);
        match page.await {
            // A date that has begun sells no more seats: none is bookable.
            Ok((date, _)) if date.concert_id == concert_id && date.starts_at <= now => {
                Some(Vec::new())
            }
            Ok((date, seats)) if date.concert_id == concert_id => Some(seats),
            Ok(_) | Err(MapError::UnknownDate) => None,
            Err(error) => return Err(error.into()),
        }
    } else {
        None
    };
    Ok(TicketSeatPage { ticket, seats })
}

/// A hold the feed's memory already refuses, without a query: the token's
/// ticket is in memory and active, and the seat, of a date in memory and of
/// the ticket's concert, shows as held or sold — what the read model would
/// say too, as of the feed's last read. Anything else (`None`) goes the
/// usual way, and the seat's aggregate has the last word on a hold. The
/// refusal names the ticket's user, whose keyed retry may be what holds it.
pub fn hold_refused_from_memory(app: &AppState, ticket_id: Uuid, seat_id: Uuid) -> Option<UserId> {
    let feed = &app.live;
    if !feed.is_current() {
        return None;
    }
    let ticket = feed.tickets().peek(ticket_id)?;
    if ticket.status_at(crate::clock::now()) != TicketStatus::Active {
        return None;
    }
    let taken = feed.seat_maps().taken(seat_id, ticket.concert_id)?;
    taken.then_some(UserId(ticket.user_id))
}
