//! The Server-Sent Event routes: a queue token's standing and a date's seat
//! map, pushed from this instance's live feed (`crate::live`). They take the
//! same tokens as the JSON routes, in `Authorization: Bearer` (the pages read
//! them with `fetch` streams, which can send it). They are not in the OpenAPI
//! document: a stream that never ends is no operation to fuzz.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::BytesMut;
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::auth::{ActiveToken, QueueToken};
use super::error::ApiError;
use super::extract::{Path, Query};
use super::queue::token_body;
use crate::booking::queue;
use crate::live::seat_map::{DateMap, SeatBatch, Start};
use crate::live::standing::Watch;
use crate::projections::queue_tickets::{self, TicketRow, TicketStatus};
use crate::state::AppState;

/// API.md: a comment at least every 15 s keeps proxies from closing a
/// stream; every 10 s, whatever else is sent, leaves a margin for slow writes.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How long a standing stream waits, after its token lapsed, for the
/// scheduler to record the expiry, so that its last event carries the
/// position of `TicketExpired`.
const EXPIRY_GRACE: Duration = Duration::from_secs(3);
/// Moves of the line are sent at most this often to one stream.
const LINE_COALESCE: Duration = Duration::from_secs(1);
/// Most batches a subscriber that fell behind is sent in one write.
const COALESCE_MOST: usize = 64;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/queue/tokens/current/events", get(standing_events))
        .route(
            "/api/v1/concerts/{concert_id}/dates/{date_id}/seats/events",
            get(seat_events),
        )
}

fn sse<S>(stream: S) -> impl IntoResponse
where
    S: Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    Sse::new(stream)
}

/// A timer that ticks every `KEEP_ALIVE` from now, whatever is sent: one
/// reset by each event costs more per event, and leaves a comment line
/// further apart than the contract allows.
fn keep_alive_timer() -> tokio::time::Interval {
    let mut timer = tokio::time::interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
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
    let left = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + left
}

/// How a seat stream sends changes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChangeFormat {
    /// `event: seats` as the contract says (the default).
    #[default]
    Full,
    /// `event: seat-changes`, `data: "2H,17S"`: a change in about 4 bytes.
    Compact,
}

#[derive(Debug, Deserialize)]
struct SeatStreamQuery {
    #[serde(default)]
    changes: ChangeFormat,
}

/// `event: snapshot`, then `event: seats` (or, with `?changes=compact`,
/// `event: seat-changes`) for every hold, expiry and sale of the date, until
/// the token lapses or is spent, or the service stops.
async fn seat_events(
    State(app): State<AppState>,
    Path((concert_id, date_id)): Path<(Uuid, Uuid)>,
    Query(query): Query<SeatStreamQuery>,
    ActiveToken(ticket): ActiveToken,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if ticket.concert_id != concert_id {
        return Err(ApiError::TokenNotActive("the token is for another concert"));
    }
    let feed = app.live.clone();
    let subscription = feed
        .seat_maps()
        .subscribe(
            &app.pool,
            date_id,
            || feed.position(),
            last_event_id(&headers),
        )
        .await?;
    if subscription.info.concert_id != concert_id {
        return Err(ApiError::NotFound("date"));
    }
    let stream = SeatStream {
        // An active ticket's next change is its expiry (it lapsed, or paid).
        ticket_changed: app.live.standings().watch_ticket(ticket.ticket_id),
        ticket_id: ticket.ticket_id,
        pool: app.pool.clone(),
        ending: false,
        format: query.changes,
        pending: start_frames(subscription.start, query.changes),
        keep_alive: keep_alive_timer(),
        receiver: subscription.receiver,
        map: subscription.map,
        feed: feed.clone(),
        closed: feed.closed(),
        // An active ticket always has a deadline; without one, the stream
        // ends with the service.
        deadline: ticket.expires_at.map(instant_of),
    };
    // The frames are encoded once per batch by the feed, so the body is
    // written as they are rather than through `Sse`, which encodes per client.
    let body = Body::from_stream(futures::stream::unfold(stream, SeatStream::next));
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    ))
}

fn start_frames(start: Start, format: ChangeFormat) -> VecDeque<Bytes> {
    match start {
        Start::Snapshot(frame) => VecDeque::from([frame]),
        Start::Replay(batches) => batches
            .iter()
            .map(|batch| frame_of(batch, format))
            .collect(),
    }
}

fn frame_of(batch: &SeatBatch, format: ChangeFormat) -> Bytes {
    match format {
        ChangeFormat::Full => batch.frame.clone(),
        ChangeFormat::Compact => batch.compact.clone(),
    }
}

/// One subscriber's place in a date's changes.
struct SeatStream {
    /// Bumped when the stream's ticket changes: once it is no longer
    /// active, the stream ends after what the feed published with it.
    ticket_changed: watch::Receiver<i64>,
    ticket_id: Uuid,
    pool: sqlx::PgPool,
    ending: bool,
    format: ChangeFormat,
    pending: VecDeque<Bytes>,
    receiver: broadcast::Receiver<Arc<SeatBatch>>,
    map: Arc<DateMap>,
    feed: crate::live::Feed,
    closed: watch::Receiver<bool>,
    deadline: Option<Instant>,
    /// Ticks every `KEEP_ALIVE` whatever is sent: a timer that is never
    /// reset costs less per pushed batch than one reset by each.
    keep_alive: tokio::time::Interval,
}

/// What a seat stream's wait ended with.
enum Wait {
    Received(Result<Arc<SeatBatch>, broadcast::error::RecvError>),
    TicketChanged,
    KeepAlive,
}

impl SeatStream {
    async fn next(mut self) -> Option<(Result<Bytes, Infallible>, Self)> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some((Ok(frame), self));
            }
            if self.ending {
                return None;
            }
            let deadline = self.deadline;
            let lapsed = async move {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let received = tokio::select! {
                _ = self.closed.wait_for(|closed| *closed) => return None,
                _ = lapsed => return None,
                changed = self.ticket_changed.changed() => {
                    changed.ok()?;
                    Wait::TicketChanged
                }
                _ = self.keep_alive.tick() => Wait::KeepAlive,
                received = self.receiver.recv() => Wait::Received(received),
            };
            let received = match received {
                Wait::KeepAlive => None,
                Wait::Received(received) => Some(received),
                // Its admission, published by the feed after the stream began, changes nothing.
                Wait::TicketChanged if self.ticket_still_active().await => continue,
                Wait::TicketChanged => {
                    // The feed broadcasts seat changes before it bumps tickets:
                    // a payer's own sale is already waiting here.
                    self.ending = true;
                    match self.receiver.try_recv() {
                        Ok(batch) => Some(Ok(batch)),
                        Err(_) => return None,
                    }
                }
            };
            let frame = match received {
                None => return Some((Ok(Bytes::from_static(b":\n\n")), self)),
                Some(Ok(batch)) => self.with_waiting(frame_of(&batch, self.format))?,
                // Too far behind to catch up change by change: start afresh.
                Some(Err(broadcast::error::RecvError::Lagged(_))) => self.start_afresh()?,
                Some(Err(broadcast::error::RecvError::Closed)) => return None,
            };
            return Some((Ok(frame), self));
        }
    }

    /// Whether the stream's ticket is still active, as stored; a failed
    /// read keeps the stream (its deadline still ends it).
    async fn ticket_still_active(&self) -> bool {
        match queue_tickets::find_ticket(&self.pool, self.ticket_id).await {
            Ok(Some(ticket)) => ticket.status_at(Utc::now()) == TicketStatus::Active,
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// `first` and every batch already waiting behind it, in one write: a
    /// subscriber that fell behind catches up in one system call, not one
    /// per batch.
    fn with_waiting(&mut self, first: Bytes) -> Option<Bytes> {
        let mut frames = vec![first];
        while frames.len() < COALESCE_MOST {
            match self.receiver.try_recv() {
                Ok(batch) => frames.push(frame_of(&batch, self.format)),
                Err(broadcast::error::TryRecvError::Lagged(_)) => return self.start_afresh(),
                Err(_) => break,
            }
        }
        if frames.len() == 1 {
            return frames.pop();
        }
        let mut joined = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
        for frame in frames {
            joined.extend_from_slice(&frame);
        }
        Some(joined.freeze())
    }

    /// A new snapshot and a new receiver, for a subscriber whose backlog overflowed.
    fn start_afresh(&mut self) -> Option<Bytes> {
        let subscription = self.map.subscribe(self.feed.position(), None);
        self.receiver = subscription.receiver;
        self.pending = start_frames(subscription.start, self.format);
        self.pending.pop_front()
    }
}

/// `event: standing` at once and whenever the token's status, position or
/// expiry changes; ends once the token has expired.
async fn standing_events(
    State(app): State<AppState>,
    QueueToken(ticket): QueueToken,
) -> Result<impl IntoResponse, ApiError> {
    let watch = app
        .live
        .standings()
        .watch(ticket.ticket_id, ticket.concert_id);
    let mut stream = StandingStream {
        closed: app.live.closed(),
        ticket_id: ticket.ticket_id,
        ticket: None,
        app,
        watch,
        last_sent: None,
        deadline: None,
        next_line_read: Instant::now(),
        keep_alive: keep_alive_timer(),
        done: false,
    };
    // The first standing is read before answering, so a failure is a problem document.
    let first = stream.read(true).await?;
    let stream = futures::stream::once(async { Ok(first) })
        .chain(futures::stream::unfold(stream, StandingStream::next));
    Ok(sse(stream))
}

/// One token's watcher.
struct StandingStream {
    app: AppState,
    ticket_id: Uuid,
    /// The ticket as last read: a move of the line leaves it as it was.
    ticket: Option<TicketRow>,
    watch: Watch,
    closed: watch::Receiver<bool>,
    /// The data last sent, so that nothing unchanged is sent again.
    last_sent: Option<String>,
    /// When an active token lapses.
    deadline: Option<Instant>,
    next_line_read: Instant,
    keep_alive: tokio::time::Interval,
    done: bool,
}

/// What woke a standing stream.
enum Wake {
    /// The ticket changed, or its deadline passed.
    Ticket,
    /// Someone ahead in the line left it.
    Line,
    KeepAlive,
}

impl StandingStream {
    /// The token's standing now, remembered as sent; the ticket is read
    /// again when it changed, the line shared with the concert's other
    /// watchers.
    async fn read(&mut self, ticket_changed: bool) -> Result<Event, ApiError> {
        let ticket = match self.ticket.take() {
            Some(ticket) if !ticket_changed => ticket,
            _ => queue_tickets::find_ticket(&self.app.pool, self.ticket_id)
                .await?
                .ok_or(ApiError::TokenInvalid)?,
        };
        let lapsed = ticket.status_at(Utc::now()) == TicketStatus::Expired;
        self.deadline = ticket.expires_at.map(instant_of);
        // The stream ends with the recorded expiry, or, should the scheduler
        // not record it in time, a grace after the deadline.
        self.done = ticket.recorded_status() == TicketStatus::Expired
            || (lapsed
                && self
                    .deadline
                    .is_some_and(|deadline| Instant::now() >= deadline + EXPIRY_GRACE));
        let moved_at = *self.watch.line.borrow();
        let standing = queue::watched_standing(&self.app, &ticket, moved_at).await?;
        let body = token_body(&self.app, ticket.clone(), standing);
        self.ticket = Some(ticket);
        let data = serde_json::to_string(&body).map_err(|error| {
            ApiError::Unavailable(format!("cannot serialize the standing: {error}"))
        })?;
        self.last_sent = Some(data.clone());
        // The feed bumps a watch before it moves its own position past the
        // change: the watch's value is the change's position.
        let position = self
            .app
            .live
            .position()
            .max(*self.watch.ticket.borrow())
            .max(*self.watch.line.borrow());
        Ok(Event::default()
            .event("standing")
            .id(position.to_string())
            .data(data))
    }

    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
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
            let lapsed = async move {
                match wake_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let line_read = self.next_line_read;
            let (closed, ticket, line, keep_alive) = (
                &mut self.closed,
                &mut self.watch.ticket,
                &mut self.watch.line,
                &mut self.keep_alive,
            );
            let wake = tokio::select! {
                _ = closed.wait_for(|closed| *closed) => return None,
                _ = keep_alive.tick() => Wake::KeepAlive,
                _ = lapsed => Wake::Ticket,
                changed = ticket.changed() => {
                    changed.ok()?;
                    Wake::Ticket
                }
                changed = async {
                    let changed = line.changed().await;
                    tokio::time::sleep_until(line_read).await;
                    changed
                } => {
                    changed.ok()?;
                    self.next_line_read = Instant::now() + LINE_COALESCE;
                    Wake::Line
                }
            };
            let ticket_changed = match wake {
                Wake::KeepAlive => return Some((Ok(Event::default().comment("")), self)),
                Wake::Ticket => true,
                Wake::Line => false,
            };
            let before = self.last_sent.clone();
            // A failed read ends the stream; the client reconnects.
            let event = self.read(ticket_changed).await.ok()?;
            // A change of the ticket itself is sent even when the standing
            // already showed it (read ahead of the feed, or from the clock
            // before the expiry was recorded): its id then covers the event.
            if ticket_changed || self.last_sent != before {
                return Some((Ok(event), self));
            }
        }
    }
}
