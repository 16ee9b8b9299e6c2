//! Entering a concert's queue, and where a ticket stands in it.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::AggregateError;

use super::BookingError;
use crate::aggregates::{QueueTicketCommand, QueueTicketError};
use crate::commands::{execute, CommandContext};
use crate::event_store::AnswerLost;
use crate::ids::{ConcertId, TicketId, UserId};
use crate::projections::queue_entries;
use crate::projections::queue_line;
use crate::projections::queue_tickets::{
    self, StandingRow, TicketRow, TicketStatus, RATE_WINDOW_SECS,
};
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
    let pace = AdmissionPace::of(app, &row, now);
    Standing {
        position: row.position,
        estimated_wait_seconds: pace.wait_for(row.position),
    }
}

/// How fast a concert's waiting line moves, as far as a wait estimate needs.
#[derive(Debug, Clone, Copy)]
struct AdmissionPace {
    /// Tickets admitted over `span` into slots other tickets freed.
    admitted_to_freed: i64,
    span: Duration,
    /// How long since the line's latest admission.
    still_for: Duration,
    /// How many that admission's round admitted.
    last_round: i64,
    /// How long until every active token has lapsed, when any is active.
    active_left: Option<Duration>,
    /// Active slots taken now (when counted), and how many there are.
    active: Option<i64>,
    slots: i64,
    /// How long an admitted token stays active.
    active_ttl_secs: i64,
    /// How often the scheduler admits.
    round_ms: i64,
}

impl AdmissionPace {
    fn of(app: &AppState, row: &StandingRow, now: DateTime<Utc>) -> AdmissionPace {
        AdmissionPace {
            admitted_to_freed: row.admitted_to_freed,
            span: now - row.sample_start,
            still_for: row
                .last_admitted
                .map_or(Duration::zero(), |admitted| now - admitted),
            active_left: row.active_until.map(|until| until - now),
            last_round: row.last_round,
            active: row.active,
            slots: i64::from(app.config.queue_active_max),
            active_ttl_secs: i64::try_from(app.config.queue_active_ttl_secs).unwrap_or(i64::MAX),
            round_ms: i64::try_from(app.config.scheduler_interval_ms).unwrap_or(i64::MAX),
        }
    }

    /// Seconds until a ticket with `position` tickets ahead is admitted.
    fn wait_for(&self, position: i64) -> i64 {
        let turn = position.saturating_add(1);
        // Uncounted, a line that admits a hundred a minute has none free for long.
        let free = self.active.map_or(0, |active| (self.slots - active).max(0));
        // The scheduler's next round admits as many as there are free slots.
        let next_round = (self.round_ms.saturating_add(999) / 1000).max(1);
        if turn <= free {
            return next_round;
        }
        let later = turn - free;
        // At worst every active slot frees when its token times out: with
        // every slot taken, the first round of `slots` tickets waits for the
        // last active token to lapse (counting down, where a whole TTL did
        // not), each later round one active TTL more. (With slots free, the
        // tokens the next round admits to them lapse last.)
        let rounds = (later - 1) / self.slots.max(1) + 1;
        let first_round = match self.active_left {
            Some(left) if free == 0 => ((left.num_milliseconds() + 999) / 1000).max(next_round),
            _ => self.active_ttl_secs,
        };
        let at_worst = (rounds - 1)
            .saturating_mul(self.active_ttl_secs)
            .saturating_add(first_round);
        // No slot freed lately (a sale's first round filled every one): no
        // rate to go by.
        if self.admitted_to_freed == 0 {
            return at_worst;
        }
        // ceil(later / (admitted_to_freed / span)), in milliseconds of span.
        let span_ms = self.span.num_milliseconds().max(1);
        let by_rate_ms = later.saturating_mul(span_ms) / self.admitted_to_freed;
        // A line standing still moves no faster than one round (as many as
        // its last round admitted) per half its standstill beyond a
        // scheduler round: a burst of admissions a minute ago says nothing of
        // a line whose active tokens all sit idle (told 2 s, a probe's first
        // in line waited 100 s). Half, so that a gap of twice the usual pace,
        // which a steady line has now and then, changes nothing; by rounds,
        // since a line admitting five at a time stands still between its
        // rounds (counted by places, the estimates of a steady line swung
        // to twice the truth midway between rounds).
        let still_ms = (self.still_for.num_milliseconds() - self.round_ms).max(0);
        let rounds_ahead = (later - 1) / self.last_round.max(1) + 1;
        let by_standstill_ms = rounds_ahead.saturating_mul(still_ms / 2);
        let wait_ms = by_rate_ms.max(by_standstill_ms);
        (wait_ms.saturating_add(999) / 1000).min(at_worst)
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

    fn pace(admitted_to_freed: i64, active: Option<i64>) -> AdmissionPace {
        AdmissionPace {
            admitted_to_freed,
            span: Duration::seconds(60),
            still_for: Duration::zero(),
            last_round: 1,
            active_left: None,
            active,
            slots: 10,
            active_ttl_secs: 600,
            round_ms: 250,
        }
    }

    #[test]
    fn tickets_that_free_slots_take_wait_for_the_scheduler_s_next_round() {
        // Nobody admitted yet, four of ten slots taken: six are admitted next round.
        assert_eq!(pace(0, Some(4)).wait_for(0), 1);
        assert_eq!(pace(0, Some(4)).wait_for(5), 1);
        // The seventh waits for a slot to time out.
        assert_eq!(pace(0, Some(4)).wait_for(6), 600);
        assert_eq!(pace(0, Some(4)).wait_for(15), 600);
        assert_eq!(pace(0, Some(4)).wait_for(16), 1200);
    }

    #[test]
    fn with_every_slot_taken_the_recent_admission_rate_sets_the_wait() {
        // Thirty admitted over the last minute: one every two seconds.
        assert_eq!(pace(30, Some(10)).wait_for(0), 2);
        assert_eq!(pace(30, Some(10)).wait_for(9), 20);
        // Two free slots go first; the rate counts the rest.
        assert_eq!(pace(30, Some(8)).wait_for(2), 2);
        // More active than slots (the maximum was lowered) frees none.
        assert_eq!(pace(0, Some(12)).wait_for(0), 600);
    }

    #[test]
    fn the_wait_never_exceeds_every_active_token_timing_out() {
        // Three slots of 20 s, three freed and refilled in the minute's first second:
        // the rate says 20 s a place, but each round of three waits 20 s at most.
        let start_of_a_sale = AdmissionPace {
            admitted_to_freed: 3,
            span: Duration::seconds(60),
            still_for: Duration::zero(),
            last_round: 1,
            active_left: None,
            active: Some(3),
            slots: 3,
            active_ttl_secs: 20,
            round_ms: 250,
        };
        assert_eq!(start_of_a_sale.wait_for(0), 20);
        assert_eq!(start_of_a_sale.wait_for(4), 40);
        assert_eq!(start_of_a_sale.wait_for(8), 60);
        // A line moving faster than timeouts keeps its rate.
        assert_eq!(pace(30, Some(10)).wait_for(9), 20);
    }

    #[test]
    fn the_worst_case_counts_down_to_the_last_active_token_s_lapse() {
        let lapsing = |left_ms| AdmissionPace {
            active_left: Some(Duration::milliseconds(left_ms)),
            ..pace(0, Some(10))
        };
        // The last active token lapses in 42.1 s; a round later, 600 s more.
        assert_eq!(lapsing(42_100).wait_for(0), 43);
        assert_eq!(lapsing(42_100).wait_for(9), 43);
        assert_eq!(lapsing(42_100).wait_for(10), 643);
        // Lapsed but not yet recorded: the next round frees its slot.
        assert_eq!(lapsing(-500).wait_for(0), 1);
        // With a slot free, the token admitted to it next round lapses last.
        let one_free = AdmissionPace {
            active: Some(9),
            ..lapsing(42_100)
        };
        assert_eq!(one_free.wait_for(1), 600);
        // The rate, when nearer, still sets the wait.
        let moving = AdmissionPace {
            active_left: Some(Duration::seconds(300)),
            ..pace(30, Some(10))
        };
        assert_eq!(moving.wait_for(9), 20);
    }

    #[test]
    fn a_line_standing_still_moves_no_faster_than_half_its_standstill() {
        // Two seconds a place by the rate, and nobody admitted for 14.25 s:
        // 7 s a place (14 s beyond the 0.25 s round, halved).
        let stalled = AdmissionPace {
            still_for: Duration::milliseconds(14_250),
            ..pace(30, Some(10))
        };
        assert_eq!(stalled.wait_for(0), 7);
        assert_eq!(stalled.wait_for(9), 70);
        // Still no later than every active token timing out.
        let long_stalled = AdmissionPace {
            still_for: Duration::milliseconds(200_250),
            ..pace(30, Some(10))
        };
        assert_eq!(long_stalled.wait_for(0), 100);
        assert_eq!(long_stalled.wait_for(9), 600);
        // A gap of twice the pace, as a steady line has now and then, changes nothing.
        let steady = AdmissionPace {
            still_for: Duration::milliseconds(4_250),
            ..pace(30, Some(10))
        };
        assert_eq!(steady.wait_for(9), 20);
        // A line admitting five a round (0.6 s a place) stands still between
        // its rounds: 3 s into one, 55 places are 11 rounds of 1.375 s (15 s),
        // and the rate's 33 s stands. Counted by places, 76 s.
        let batched = AdmissionPace {
            still_for: Duration::milliseconds(3_000),
            last_round: 5,
            ..pace(100, None)
        };
        assert_eq!(batched.wait_for(54), 33);
        let stalled_batch = AdmissionPace {
            still_for: Duration::milliseconds(40_250),
            last_round: 5,
            ..pace(30, Some(10))
        };
        assert_eq!(stalled_batch.wait_for(4), 20);
        assert_eq!(stalled_batch.wait_for(5), 40);
    }

    #[test]
    fn a_busy_line_whose_active_tickets_were_not_counted_waits_by_the_rate() {
        assert_eq!(pace(100, None).wait_for(0), 1);
        assert_eq!(pace(100, None).wait_for(99), 60);
    }

    #[test]
    fn a_huge_position_saturates_instead_of_overflowing() {
        assert!(pace(1, Some(10)).wait_for(i64::MAX) > 0);
        assert!(pace(0, Some(10)).wait_for(i64::MAX) > 0);
    }
}
