//! Entering a concert's queue, and where a ticket stands in it.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::AggregateError;

use crate::aggregates::{QueueTicketCommand, QueueTicketError};
use crate::commands::{execute, CommandContext};
use crate::error::ApiError;
use crate::ids::{ConcertId, TicketId, UserId};
use crate::projections::{available_dates, queue_tickets, queue_tickets::TicketRow};
use crate::state::AppState;

/// Window over which the admission rate is measured.
const RATE_WINDOW_SECS: i64 = 60;

/// A ticket and whether this request created it.
pub struct Entered {
    pub ticket: TicketRow,
    pub created: bool,
}

/// Where a ticket stands.
pub struct Standing {
    pub position: i64,
    pub estimated_wait_seconds: i64,
}

/// Puts the user in the concert's queue, or returns their live ticket.
/// Concurrent entries of one user derive the same ticket id, so only one of them
/// records `QueueEntered`; the others find it and return it.
pub async fn enter_queue(
    app: &AppState,
    concert_id: ConcertId,
    user_id: UserId,
    context: &CommandContext,
) -> Result<Entered, ApiError> {
    if !available_dates::concert_exists(&app.pool, concert_id.0).await? {
        return Err(ApiError::NotFound("concert"));
    }
    for _ in 0..5 {
        let (latest, generation) =
            queue_tickets::latest_ticket(&app.pool, concert_id.0, user_id.0).await?;
        if let Some(ticket) = latest.filter(|ticket| ticket.is_live_at(Utc::now())) {
            return Ok(Entered {
                ticket,
                created: false,
            });
        }
        let limit = app.config.queue_waiting_max;
        if limit > 0 && queue_tickets::waiting_count(&app.pool, concert_id.0).await? >= limit as i64
        {
            return Err(ApiError::QueueFull);
        }
        let ticket_id = TicketId::of(concert_id, user_id, generation);
        let entry_no = queue_tickets::next_entry_no(&app.pool, concert_id.0).await?;
        let command = QueueTicketCommand::EnterQueue {
            concert_id,
            user_id,
            entry_no,
            now: Utc::now(),
        };
        let outcome = execute(&app.tickets, &ticket_id.to_string(), command, context).await;
        if outcome.is_err() {
            // Best effort: a number lost here only makes later positions one too high.
            let _ = queue_tickets::release_entry_no(&app.pool, concert_id.0, entry_no).await;
        }
        let created = match outcome {
            Ok(()) => true,
            Err(AggregateError::UserError(QueueTicketError::AlreadyEntered)) => false,
            // Our view of the user's tickets was stale: look again.
            Err(AggregateError::UserError(QueueTicketError::Expired)) => continue,
            Err(error) => return Err(error.into()),
        };
        // A concurrent entry may have committed without its read model written yet.
        let Some(ticket) = projected_ticket(app, ticket_id).await? else {
            continue;
        };
        if ticket.is_live_at(Utc::now()) {
            return Ok(Entered { ticket, created });
        }
    }
    Err(ApiError::Unavailable(
        "the queue changed too often; retry".into(),
    ))
}

/// The ticket's read model, waiting briefly for a concurrent writer's projection.
async fn projected_ticket(
    app: &AppState,
    ticket_id: TicketId,
) -> Result<Option<TicketRow>, ApiError> {
    for _ in 0..50 {
        if let Some(ticket) = queue_tickets::find_ticket(&app.pool, ticket_id.0).await? {
            return Ok(Some(ticket));
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(None)
}

/// A ticket's place: waiting tickets ahead of it, and the wait that the
/// recent admission rate predicts.
pub async fn standing(app: &AppState, ticket: &TicketRow) -> Result<Standing, ApiError> {
    if ticket.status != "waiting" {
        return Ok(Standing {
            position: 0,
            estimated_wait_seconds: 0,
        });
    }
    let position =
        queue_tickets::waiting_ahead(&app.pool, ticket.concert_id, ticket.entry_no).await?;
    let since = Utc::now() - Duration::seconds(RATE_WINDOW_SECS);
    let admitted = queue_tickets::admitted_since(&app.pool, ticket.concert_id, since).await?;
    Ok(Standing {
        position,
        estimated_wait_seconds: estimate_wait(app, position, admitted),
    })
}

/// Seconds until a ticket with `position` tickets ahead is admitted.
fn estimate_wait(app: &AppState, position: i64, admitted_in_window: i64) -> i64 {
    let turn = position + 1;
    if admitted_in_window > 0 {
        // ceil(turn / (admitted / window))
        (turn * RATE_WINDOW_SECS + admitted_in_window - 1) / admitted_in_window
    } else {
        // Nobody admitted lately: at worst every active slot frees when its token times out.
        let slots = i64::from(app.config.queue_active_max);
        let rounds = (turn + slots - 1) / slots;
        rounds.saturating_mul(app.config.queue_active_ttl_secs as i64)
    }
}

/// The ticket a verified token names, if it exists.
pub async fn ticket_of_token(app: &AppState, token: &str) -> Result<Option<TicketRow>, ApiError> {
    let Some(ticket_id) = app.tokens.verify(token) else {
        return Ok(None);
    };
    Ok(queue_tickets::find_ticket(&app.pool, ticket_id.0).await?)
}

/// When an active ticket lapses.
pub fn expires_at(ticket: &TicketRow) -> Option<DateTime<Utc>> {
    (ticket.status == "active")
        .then_some(ticket.expires_at)
        .flatten()
}
