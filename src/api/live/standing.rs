//! A queue token's standing, sent again whenever it changes, until the
//! token has expired.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::IntoResponse;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::line_moves::LineMoves;
use super::{every, instant_of, keep_alive_timer, sleep_until_if};
use crate::api::auth::QueueToken;
use crate::api::error::{ApiError, Problem};
use crate::api::queue::{token_body, StandingNews};
use crate::booking::queue;
use crate::live::standing::Watch;
use crate::live::stream_permits::{StreamPermit, STREAMS_PER_TOKEN};
use crate::projections::queue_tickets::{self, TicketRow, TicketStatus};
use crate::state::AppState;

/// How long a standing stream waits, after its token lapsed, for the
/// scheduler to record the expiry, so that its last event carries the
/// position of `TicketExpired`.
const EXPIRY_GRACE: Duration = Duration::from_secs(3);
/// How long a client should wait before reconnecting to a token's standing
/// once the token has expired.
const RECONNECT_AFTER_EXPIRY: Duration = Duration::from_secs(3600);
/// Moves of the line are sent at most this often to one stream.
const LINE_COALESCE: Duration = Duration::from_secs(1);
/// How often a stream looks whether its concert sold out (from memory, and
/// the read models at most once a second per concert and instance).
const SOLD_OUT_LOOK: Duration = Duration::from_secs(5);
/// How soon a read the database could not answer is tried again.
const READ_RETRY: Duration = Duration::from_secs(1);
/// How often a waiting token's stream looks whether the estimated wait it
/// sent, counted down since (as the booking page does), still holds.
const WAIT_LOOK: Duration = Duration::from_secs(5);
/// The longest a token's last standing waits for the look that tells
/// whether a sale just seen sold the concert out (that look is due within
/// 0.1 s of the sale).
const SOLD_OUT_SETTLE_MOST: Duration = Duration::from_millis(500);
/// The least change of the estimate that is sent with nothing else changed.
const WAIT_DRIFT_MIN_SECS: i64 = 5;
/// The least wait sent alone once the one sent was counted down to nothing.
const WAIT_OVERDUE_MIN_SECS: i64 = 2;

/// `event: standing` at once and whenever the token's status, position,
/// expiry or `sold_out` changes, or its estimated wait drifts; ends once the
/// token has expired.
#[utoipa::path(get, path = "/api/v1/queue/tokens/current/events", tag = "live",
    operation_id = "standing_events", security(("queue_token" = [])),
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
            description = "`event: standing`, data the body of `GET /api/v1/queue/tokens/current`, at once and whenever \
                           status, position, expiry or `sold_out` changes, or the estimated wait drifts from the one sent \
                           counted down since, with `id:` the log position it includes; ends after the token expires"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json",
            description = "rate_limited: the token has as many event streams open as it may"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn standing_events(
    State(app): State<AppState>,
    QueueToken(ticket): QueueToken,
) -> Result<impl IntoResponse, ApiError> {
    let permit = app
        .live
        .open_stream(ticket.ticket_id)
        .await
        .ok_or(ApiError::TooManyStreams(STREAMS_PER_TOKEN))?;
    let Watch {
        ticket: ticket_changes,
        line,
    } = app
        .live
        .standings()
        .watch(ticket.ticket_id, ticket.concert_id);
    let mut stream = StandingStream {
        permit,
        closed: app.live.closed(),
        ticket_id: ticket.ticket_id,
        ticket: None,
        app,
        ticket_changes,
        line: LineMoves::new(line, LINE_COALESCE),
        last_sent: None,
        deadline: None,
        retry_at: None,
        keep_alive: keep_alive_timer(),
        sold_out_look: every(SOLD_OUT_LOOK),
        sold_out_relook_at: None,
        told_wait: None,
        wait_look: every(WAIT_LOOK),
        pending: None,
        done: false,
    };
    // The first standing is read before answering, so a failure is a problem document.
    let first = stream.read(true).await?;
    let stream = futures::stream::once(async { Ok(first) })
        .chain(futures::stream::unfold(stream, StandingStream::next));
    Ok(Sse::new(stream))
}

/// One token's watcher.
struct StandingStream {
    /// Its place among the token's streams, given back when it ends; a
    /// roll call of them asks it for comments.
    permit: StreamPermit,
    app: AppState,
    ticket_id: Uuid,
    /// The ticket as last read: a move of the line leaves it as it was.
    ticket: Option<TicketRow>,
    /// Bumped when the ticket itself changes.
    ticket_changes: watch::Receiver<i64>,
    line: LineMoves,
    closed: watch::Receiver<bool>,
    /// The news of the standing last sent, so that nothing unchanged is
    /// sent again.
    last_sent: Option<StandingNews>,
    /// When an active token lapses.
    deadline: Option<Instant>,
    /// When a read the database failed is tried again.
    retry_at: Option<Instant>,
    keep_alive: tokio::time::Interval,
    sold_out_look: tokio::time::Interval,
    /// When to look again whether the concert sold out, sooner than
    /// `sold_out_look`: the standing last sent said seats were left on an
    /// answer a sale since may have made stale.
    sold_out_relook_at: Option<Instant>,
    /// The estimated wait last sent, while the token waits, and when.
    told_wait: Option<(i64, Instant)>,
    wait_look: tokio::time::Interval,
    /// An event to send before reading again: the expiry that followed an
    /// admission the stream had not sent yet.
    pending: Option<Event>,
    done: bool,
}

/// What woke a standing stream.
enum Wake {
    /// The ticket changed, or its deadline passed.
    Ticket,
    /// Someone ahead in the line left it.
    Line,
    KeepAlive,
    /// Time to look whether the concert sold out.
    SoldOutLook,
    /// Time to look again, the standing sent having said seats were left on
    /// an answer a sale may have made stale.
    SoldOutRelook,
    /// Time to look whether the estimated wait sent still holds.
    WaitLook,
}

impl StandingStream {
    /// The token's standing now, remembered as sent; the ticket is read
    /// again when it changed, the line shared with the concert's other
    /// watchers.
    async fn read(&mut self, ticket_changed: bool) -> Result<Event, ApiError> {
        let ticket = match self.ticket.take() {
            Some(ticket) if !ticket_changed => ticket,
            _ => {
                let read = queue_tickets::find_ticket(&self.app.pool, self.ticket_id);
                crate::db::answered_within(crate::db::SHORT_READ_WITHIN, read)
                    .await?
                    .ok_or(ApiError::TokenInvalid)?
            }
        };
        let lapsed = ticket.status_at(crate::clock::now()) == TicketStatus::Expired;
        self.deadline = ticket.expires_at.map(instant_of);
        // The stream ends with the recorded expiry, or, should the scheduler
        // not record it in time, a grace after the deadline.
        self.done = ticket.recorded_status() == TicketStatus::Expired
            || (lapsed
                && self
                    .deadline
                    .is_some_and(|deadline| Instant::now() >= deadline + EXPIRY_GRACE));
        if self.done {
            self.settle_sold_out(ticket.concert_id).await;
        }
        // Any move from here on is one this standing may not include.
        self.line.sent();
        let moved_at = self.line.moved_at();
        let standing = queue::watched_standing(&self.app, &ticket, moved_at).await?;
        let body = token_body(&self.app, ticket.clone(), standing).await?;
        self.ticket = Some(ticket);
        let data = serde_json::to_string(&body).map_err(|error| {
            ApiError::Unavailable(format!("cannot serialize the standing: {error}"))
        })?;
        self.last_sent = Some(body.news());
        self.told_wait = body.wait_told().map(|wait| (wait, Instant::now()));
        self.look_again_when_stale();
        // The feed bumps a watch before it moves its own position past the
        // change: the watch's value is the change's position.
        let position = self
            .app
            .live
            .position()
            .max(*self.ticket_changes.borrow())
            .max(moved_at);
        let event = Event::default()
            .event("standing")
            .id(position.to_string())
            .data(data);
        // The token is over: a browser's EventSource, which reconnects when
        // a stream ends, would otherwise ask again every few seconds.
        Ok(if self.done {
            event.retry(RECONNECT_AFTER_EXPIRY)
        } else {
            event
        })
    }

    /// Before the token's last word: a sale seen a moment ago (often its
    /// holder's own payment, which ends the token) may have sold the concert
    /// out, and this instance's memory of seats left still answers for up
    /// to `LEFT_FRESH_AFTER_SALE`; waited out, the last standing says what
    /// the look after it finds. The buyer of a concert's last seat was told
    /// `sold_out: false`, then nothing more.
    async fn settle_sold_out(&self, concert_id: Uuid) {
        let look_again = self.app.live.sold_out().look_again_at(concert_id);
        if let Some(at) = look_again.map(Instant::from_std) {
            tokio::time::sleep_until(at.min(Instant::now() + SOLD_OUT_SETTLE_MOST)).await;
        }
    }

    /// Whether the last standing sent said the concert is sold out.
    fn told_sold_out(&self) -> bool {
        matches!(self.last_sent, Some((_, _, _, true)))
    }

    /// Looks again whether the concert sold out once the answer the last
    /// standing sent stops being given, when a sale may have made it stale:
    /// a token admitted by the last sale was told seats were left, then
    /// nothing until the next `SOLD_OUT_LOOK`.
    fn look_again_when_stale(&mut self) {
        self.sold_out_relook_at = match &self.ticket {
            Some(ticket) if !self.told_sold_out() => (self.app.live.sold_out())
                .look_again_at(ticket.concert_id)
                .map(Instant::from_std),
            _ => None,
        };
    }

    /// Whether the token's concert has sold out since the last standing
    /// sent: no change in the log wakes the stream when its last date
    /// begins.
    async fn sold_out_since_sent(&self) -> bool {
        let Some(ticket) = &self.ticket else {
            return false;
        };
        let now = crate::clock::now();
        !self.told_sold_out()
            && self
                .app
                .live
                .sold_out()
                .of(&self.app.pool, ticket.concert_id, now)
                .await
                .unwrap_or(false)
    }

    /// Whether the estimated wait now differs from the one sent, counted
    /// down since, by enough to send: the estimate rides with every change
    /// of place, but a line that stands still changes no place, and its
    /// first was shown "any moment now" by a page counting down a wait that
    /// had long grown (a probe: told 2 s, admitted 100 s later).
    async fn wait_drifted(&self) -> bool {
        let (Some(ticket), Some((told, told_at))) = (&self.ticket, self.told_wait) else {
            return false;
        };
        let counted_down = (told - told_at.elapsed().as_secs() as i64).max(0);
        match queue::watched_standing(&self.app, ticket, self.line.moved_at()).await {
            Ok(standing) => drifted(counted_down, standing.estimated_wait_seconds),
            Err(_) => false,
        }
    }

    /// The token's admission as a standing, when the last one sent said it
    /// waited and it is now spent before its deadline (its holder paid
    /// within moments of the admission, before this stream read it): the
    /// contract sends every change of status, and the stream went from
    /// `waiting` straight to `expired`. Sent without an `id`: it stands for
    /// no position of the log on its own.
    async fn missed_admission(&self, before: &Option<StandingNews>) -> Option<Event> {
        let waited = before
            .as_ref()
            .is_some_and(|(status, ..)| status == "waiting");
        let ticket = self.ticket.as_ref()?;
        let now = crate::clock::now();
        if !(waited && ticket.spent_before_deadline(now)) {
            return None;
        }
        let mut admitted = ticket.clone();
        admitted.status = TicketStatus::Active.as_str().to_string();
        let standing = queue::watched_standing(&self.app, &admitted, self.line.moved_at())
            .await
            .ok()?;
        let body = token_body(&self.app, admitted, standing).await.ok()?;
        let data = serde_json::to_string(&body).ok()?;
        Some(Event::default().event("standing").data(data))
    }

    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if let Some(event) = self.pending.take() {
            return Some((Ok(event), self));
        }
        loop {
            if self.done {
                return None;
            }
            // At the deadline, and again after the grace (the stream then ends).
            let wake_at = self.deadline.map(|deadline| {
                if Instant::now() < deadline {
                    deadline
                } else {
                    deadline + EXPIRY_GRACE
                }
            });
            let lapsed = sleep_until_if(wake_at);
            let retry = sleep_until_if(self.retry_at);
            let told_sold_out = self.told_sold_out();
            let sold_out_relook = sleep_until_if(self.sold_out_relook_at);
            let waiting = self.told_wait.is_some();
            let (closed, ticket, line, keep_alive, sold_out_look, wait_look, permit) = (
                &mut self.closed,
                &mut self.ticket_changes,
                &mut self.line,
                &mut self.keep_alive,
                &mut self.sold_out_look,
                &mut self.wait_look,
                &mut self.permit,
            );
            let wake = tokio::select! {
                _ = closed.wait_for(|closed| *closed) => return None,
                _ = keep_alive.tick() => Wake::KeepAlive,
                _ = sold_out_look.tick(), if !told_sold_out => Wake::SoldOutLook,
                _ = sold_out_relook => Wake::SoldOutRelook,
                _ = wait_look.tick(), if waiting => Wake::WaitLook,
                _ = permit.comment_due() => Wake::KeepAlive,
                _ = lapsed => Wake::Ticket,
                _ = retry => Wake::Ticket,
                changed = ticket.changed() => {
                    changed.ok()?;
                    Wake::Ticket
                }
                due = line.due() => {
                    due?;
                    Wake::Line
                }
            };
            let wait_drifted = matches!(wake, Wake::WaitLook);
            let ticket_changed = match wake {
                Wake::KeepAlive => return Some((Ok(Event::default().comment("")), self)),
                Wake::SoldOutRelook => {
                    // Once per standing sent: that look came after the sales
                    // this instance had seen, so it saw the last of them.
                    // Looking again whenever a later sale cut the answer
                    // short would wake every stream each 0.1 s of a sale.
                    self.sold_out_relook_at = None;
                    if self.sold_out_since_sent().await {
                        false
                    } else {
                        continue;
                    }
                }
                Wake::SoldOutLook if self.sold_out_since_sent().await => false,
                Wake::SoldOutLook => continue,
                Wake::WaitLook if self.wait_drifted().await => false,
                Wake::WaitLook => continue,
                Wake::Ticket => true,
                Wake::Line => false,
            };
            let before = self.last_sent.clone();
            let event = match self.read(ticket_changed).await {
                Ok(event) => event,
                // The database out of reach: the stream stays open (its
                // comments go on) and reads again in a moment. Ended, it
                // told its client the token was over (the contract ends a
                // stream only then), though its token lived on.
                Err(ApiError::Unavailable(_)) => {
                    self.retry_at = Some(Instant::now() + READ_RETRY);
                    continue;
                }
                Err(_) => return None,
            };
            self.retry_at = None;
            // A standing is sent when its news changed, never twice alike:
            // a client reads each event as news. (One read ahead of the feed
            // then keeps the id it was read under, which its client may
            // reconnect with safely.) The one exception is the token's last
            // word: the recorded expiry of a token already shown lapsed by
            // the clock, whose id covers the expiry and which tells the
            // client not to reconnect.
            if self.last_sent != before || (ticket_changed && self.done) || wait_drifted {
                if let Some(admission) = self.missed_admission(&before).await {
                    self.pending = Some(event);
                    return Some((Ok(admission), self));
                }
                return Some((Ok(event), self));
            }
        }
    }
}

/// Whether an estimated wait of `estimate` s is news to a client counting
/// down one that reads `counted_down` s now: a change of a quarter, and of
/// `WAIT_DRIFT_MIN_SECS` at least, so that a wait that shrinks and grows by
/// a second at each look is not sent each time; or, once the countdown ran
/// out ("any moment now"), a wait of `WAIT_OVERDUE_MIN_SECS` (a probe's
/// page showed 0 for 12 s of a 20 s wait).
fn drifted(counted_down: i64, estimate: i64) -> bool {
    let least = if counted_down == 0 {
        WAIT_OVERDUE_MIN_SECS
    } else {
        (counted_down / 4).max(WAIT_DRIFT_MIN_SECS)
    };
    (estimate - counted_down).abs() >= least
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_estimate_is_sent_again_when_it_drifted_by_a_quarter_and_five_seconds_or_ran_out() {
        // Counted down to "any moment now" while the line stood still.
        assert!(drifted(0, 7));
        assert!(drifted(0, 2));
        assert!(!drifted(0, 1));
        assert!(!drifted(3, 7));
        assert!(!drifted(30, 35 - 1));
        assert!(drifted(30, 22));
        assert!(!drifted(600, 700));
        assert!(drifted(600, 400));
    }
}
