//! Entering a concert's queue, and where a ticket stands in it.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::AggregateError;

use super::wait_estimate::AdmissionPace;
use super::BookingError;
use crate::aggregates::{QueueTicketCommand, QueueTicketError};
use crate::commands::{execute, CommandContext};
use crate::event_store::AnswerLost;
use crate::ids::{ConcertId, TicketId, UserId};
use crate::projections::queue_entries;
use crate::projections::queue_line;
use crate::projections::queue_pace::RATE_WINDOW_SECS;
use crate::projections::queue_tickets::{self, StandingRow, TicketRow, TicketStatus};
use crate::state::AppState;

/// A ticket and whether this request created it.
pub struct Entered {
    pub ticket: TicketRow,
    pub created: bool,
    pub standing: Standing,
}

/// Where a ticket stands.
pub struct Standing {
    pub position: i64,
    pub estimated_wait_seconds: i64,
}

impl Standing {
    /// A ticket no longer (or never) in the waiting line.
    const NOT_WAITING: Standing = Standing {
        position: 0,
        estimated_wait_seconds: 0,
    };
}

/// Puts the user in the concert's queue, or returns their live ticket.
/// Concurrent entries of one user derive the same ticket id, so only one of them
/// records `QueueEntered`; the others find it and return it.
pub async fn enter_queue(
    app: &AppState,
    concert_id: ConcertId,
    user_id: UserId,
    context: &CommandContext,
) -> Result<Entered, BookingError> {
    let _turn = app.entry_turns.take(concert_id.0, user_id.0).await;
    for _ in 0..5 {
        let plan = app.entries.plan(concert_id.0, user_id.0).await?;
        let now = plan.planned_at;
        if !plan.concert_exists {
            return Err(BookingError::NotFound("concert"));
        }
        let standing_row = plan.standing;
        if let Some(ticket) = plan.latest.filter(|ticket| ticket.is_live_at(now)) {
            // Answered a moment after the plan: a token that lapsed in
            // between is no token to give back. Planned again, the entry
            // takes a new place.
            if !ticket.is_live_at(crate::clock::now()) {
                continue;
            }
            let standing = standing_from(app, &ticket, standing_row, now);
            return Ok(Entered {
                ticket,
                created: false,
                standing,
            });
        }
        // The plan took a number unless the line was full.
        let Some(entry_no) = plan.entry_no else {
            return Err(BookingError::QueueFull);
        };
        let ticket_id = TicketId::of(concert_id, user_id, plan.tickets_of_user);
        let command = QueueTicketCommand::EnterQueue {
            concert_id,
            user_id,
            entry_no,
            now: crate::clock::now(),
        };
        let outcome = execute(&app.tickets, &ticket_id.to_string(), command, context).await;
        if let Err(error) = &outcome {
            if !number_may_be_used(app, error, ticket_id, entry_no).await {
                // Best effort: a number lost here only makes later positions one too high.
                let started = plan.server_started;
                let _ = queue_entries::release_entry_no(&app.pool, concert_id.0, entry_no, started)
                    .await;
            }
        }
        match outcome {
            // What was committed, with its read model in the same transaction;
            // where it stands was read when its number was taken.
            Ok(()) => {
                let ticket = TicketRow {
                    ticket_id: ticket_id.0,
                    concert_id: concert_id.0,
                    user_id: user_id.0,
                    entry_no,
                    status: "waiting".to_string(),
                    expires_at: None,
                };
                let standing = standing_from(app, &ticket, standing_row, now);
                return Ok(Entered {
                    ticket,
                    created: true,
                    standing,
                });
            }
            // A concurrent entry of the same user won: answer with its ticket.
            Err(AggregateError::UserError(QueueTicketError::AlreadyEntered)) => {
                let entered = queue_tickets::find_ticket(&app.pool, ticket_id.0).await?;
                if let Some(ticket) =
                    entered.filter(|ticket| ticket.is_live_at(crate::clock::now()))
                {
                    let standing = standing(app, &ticket).await?;
                    return Ok(Entered {
                        ticket,
                        created: false,
                        standing,
                    });
                }
            }
            // Our view of the user's tickets was stale: look again.
            Err(AggregateError::UserError(QueueTicketError::Expired)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Err(BookingError::Unavailable(
        "the queue changed too often; retry".into(),
    ))
}

/// Whether an entry that failed may still have taken its number: a failure
/// of the store (a connection cut at the commit) leaves the outcome unknown
/// until the ticket is looked up. Released while in use, the number would
/// put every ticket behind it one place too far ahead, for good; kept while
/// unused, one place too far back.
async fn number_may_be_used(
    app: &AppState,
    error: &AggregateError<QueueTicketError>,
    ticket_id: TicketId,
    entry_no: i64,
) -> bool {
    if refused(error) {
        return false;
    }
    if outcome_unknown(error) {
        return true;
    }
    // Bounded: the entry runs apart from its request, so nothing else would
    // give up a look on a connection whose path stopped answering.
    let look = queue_tickets::find_ticket(&app.pool, ticket_id.0);
    match crate::db::answered_within(crate::db::SHORT_READ_WITHIN, look).await {
        Ok(found) => found.is_some_and(|ticket| ticket.entry_no == entry_no),
        Err(_) => true,
    }
}

/// A failure that wrote nothing for certain: the ticket's rules refused the
/// entry, or other writers kept winning its stream.
fn refused(error: &AggregateError<QueueTicketError>) -> bool {
    matches!(
        error,
        AggregateError::UserError(_) | AggregateError::AggregateConflict
    )
}

/// A command its batch never answered: it may commit after any look for its
/// ticket (its connection's server frozen past the batch's deadline), so its
/// number is left to the look for abandoned numbers.
fn outcome_unknown(error: &AggregateError<QueueTicketError>) -> bool {
    matches!(error, AggregateError::UnexpectedError(cause) if cause.is::<AnswerLost>())
}

/// A ticket's place: waiting tickets ahead of it, and the wait that the
/// recent admission rate predicts.
pub async fn standing(app: &AppState, ticket: &TicketRow) -> Result<Standing, BookingError> {
    if ticket.recorded_status() != TicketStatus::Waiting {
        return Ok(Standing::NOT_WAITING);
    }
    let now = crate::clock::now();
    let row = queue_tickets::standing(
        &app.pool,
        ticket.concert_id,
        ticket.entry_no,
        rate_window_start(now),
        i64::from(app.config.queue_active_max),
    )
    .await?;
    Ok(standing_from(app, ticket, row, now))
}

/// A ticket's place as `standing` finds it, worked out from its concert's
/// line as this instance last read it for every watcher of the concert
/// (`live::standing::Standings::line`), when that read shows the line's move
/// `moved_at` or a later one.
pub async fn watched_standing(
    app: &AppState,
    ticket: &TicketRow,
    moved_at: i64,
) -> Result<Standing, BookingError> {
    if ticket.recorded_status() != TicketStatus::Waiting {
        return Ok(Standing::NOT_WAITING);
    }
    let concert_id = ticket.concert_id;
    let line = app
        .live
        .standings()
        .line(concert_id, moved_at, || async {
            let now = crate::clock::now();
            let active_max = i64::from(app.config.queue_active_max);
            // Bounded: every standing stream of the concert waits for this read.
            let read = queue_line::line(&app.pool, concert_id, rate_window_start(now), active_max);
            let row = crate::db::answered_within(crate::db::SHORT_READ_WITHIN, read).await?;
            Ok::<_, BookingError>((row, now))
        })
        .await?;
    let row = line.row.standing_of(ticket.entry_no);
    Ok(standing_from(app, ticket, row, line.read_at))
}

/// A ticket's place for a look at it (`GET /queue/tokens/current`): from its
/// concert's line as this instance last read it, as the standing streams
/// have it, showing every move of the line the feed has brought.
pub async fn looked_at_standing(
    app: &AppState,
    ticket: &TicketRow,
) -> Result<Standing, BookingError> {
    if ticket.recorded_status() != TicketStatus::Waiting {
        return Ok(Standing::NOT_WAITING);
    }
    let moved_at = app.live.standings().looked_at(ticket.concert_id);
    watched_standing(app, ticket, moved_at).await
}

/// The start of the window over which the admission rate is measured.
fn rate_window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - Duration::seconds(RATE_WINDOW_SECS)
}

/// A ticket's place from its `StandingRow` read at `now`.
fn standing_from(
    app: &AppState,
    ticket: &TicketRow,
    row: StandingRow,
    now: DateTime<Utc>,
) -> Standing {
    if ticket.recorded_status() != TicketStatus::Waiting {
        return Standing::NOT_WAITING;
    }
    let pace = AdmissionPace::of(&app.config, &row.admissions, now);
    Standing {
        position: row.position,
        estimated_wait_seconds: pace.wait_for(row.position),
    }
}

/// When an active ticket lapses; none while it waits or once it lapsed,
/// whether or not the scheduler has recorded the expiry yet.
pub fn expires_at(ticket: &TicketRow) -> Option<DateTime<Utc>> {
    (ticket.status_at(crate::clock::now()) == TicketStatus::Active)
        .then_some(ticket.expires_at)
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_store_failure_leaves_an_entry_s_number_in_doubt() {
        assert!(refused(&AggregateError::UserError(
            QueueTicketError::AlreadyEntered
        )));
        assert!(refused(&AggregateError::AggregateConflict));
        // A connection cut at the commit: the entry may have been stored.
        let cut = AggregateError::DatabaseConnectionError("connection reset".into());
        assert!(!refused(&cut));
        // Looked for, its ticket decides; unanswered, nobody can tell.
        assert!(!outcome_unknown(&cut));
        assert!(outcome_unknown(&AggregateError::UnexpectedError(Box::new(
            AnswerLost
        ))));
    }
}
