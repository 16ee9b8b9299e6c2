//! A date's seat map: a snapshot, then each hold, expiry and sale, written
//! as the feed encoded them once for every subscriber.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use bytes::BytesMut;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{instant_of, keep_alive_timer, last_event_id, sleep_until_if};
use crate::api::auth::ActiveToken;
use crate::api::error::{ApiError, Problem};
use crate::api::extract::{Path, Query};
use crate::live::seat_map::{DateMap, SeatBatch, Start};
use crate::live::stream_permits::{StreamPermit, STREAMS_PER_TOKEN};
use crate::projections::queue_tickets::{self, TicketStatus};
use crate::state::AppState;

/// Most batches a subscriber that fell behind is sent in one write.
const COALESCE_MOST: usize = 64;
/// How long a reconnect waits for this instance's feed to reach the
/// `Last-Event-ID` it brings (another instance's, a few milliseconds ahead):
/// the feed reads the log at least once a second. Past it, a snapshot.
const CATCH_UP_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// How a seat stream sends changes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(super) enum ChangeFormat {
    /// `event: seats` as the contract says (the default).
    #[default]
    Full,
    /// `event: seat-changes`, `data: "2H,17S"`: a change in about 4 bytes.
    Compact,
}

#[derive(Debug, Deserialize, IntoParams)]
pub(super) struct SeatStreamQuery {
    /// `full` (the default): `event: seats` as API.md says; `compact`:
    /// `event: seat-changes`, data `"2H,17S"` (seat numbers and F/H/S).
    #[serde(default)]
    #[param(inline)]
    changes: ChangeFormat,
}

/// `event: snapshot`, then `event: seats` (or, with `?changes=compact`,
/// `event: seat-changes`) for every hold, expiry and sale of the date, until
/// the token lapses or is spent, or the service stops.
#[utoipa::path(get, path = "/api/v1/concerts/{concert_id}/dates/{date_id}/seats/events", tag = "live",
    operation_id = "seat_events", security(("queue_token" = [])),
    params(("concert_id" = Uuid, Path), ("date_id" = Uuid, Path), SeatStreamQuery,
        ("Last-Event-ID" = Option<i64>, Header, description = "the last `id:` received: the changes since, or a fresh snapshot")),
    responses(
        (status = 200, content_type = "text/event-stream", body = String,
            description = "`event: snapshot` with data `{\"date_id\", \"total_seats\", \"seats\"}` (one character per seat_no: F, H or S), \
                           then `event: seats` with data `{\"changes\": [{\"seat_id\", \"seat_no\", \"status\"}]}` for every hold, expiry and sale; \
                           each with `id:` the log position it includes"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json",
            description = "rate_limited: the token has as many event streams open as it may"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub(super) async fn seat_events(
    State(app): State<AppState>,
    Path((concert_id, date_id)): Path<(Uuid, Uuid)>,
    Query(query): Query<SeatStreamQuery>,
    ActiveToken(ticket): ActiveToken,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if ticket.concert_id != concert_id {
        return Err(ApiError::TokenNotActive("the token is for another concert"));
    }
    let permit = app
        .live
        .open_stream(ticket.ticket_id)
        .await
        .ok_or(ApiError::TooManyStreams(STREAMS_PER_TOKEN))?;
    let feed = app.live.clone();
    let seen = last_event_id(&headers);
    if let Some(seen) = seen {
        feed.reach(seen, CATCH_UP_WITHIN).await;
    }
    let subscription = feed
        .seat_maps()
        .subscribe(&app.pool, date_id, || feed.position(), seen)
        .await?;
    if subscription.info.concert_id != concert_id {
        return Err(ApiError::NotFound("date"));
    }
    let stream = SeatStream {
        permit,
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
        // A client back with nothing missed got nothing until the first
        // keep-alive, 10 s on: a page reconnecting after a restart took the
        // silence for a proxy holding streams back. A comment says at once
        // that the stream flows.
        Start::Replay(batches) if batches.is_empty() => {
            VecDeque::from([Bytes::from_static(b":\n\n")])
        }
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
    /// Its place among the token's streams, given back when it ends; a
    /// roll call of them asks it for comments.
    permit: StreamPermit,
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
            let lapsed = sleep_until_if(self.deadline);
            let received = tokio::select! {
                _ = self.closed.wait_for(|closed| *closed) => return None,
                _ = lapsed => return None,
                changed = self.ticket_changed.changed() => {
                    changed.ok()?;
                    Wait::TicketChanged
                }
                _ = self.keep_alive.tick() => Wait::KeepAlive,
                _ = self.permit.comment_due() => Wait::KeepAlive,
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

    /// Whether the stream's ticket is still active, as stored; a failed or
    /// unanswered read keeps the stream (its deadline still ends it).
    async fn ticket_still_active(&self) -> bool {
        let read = queue_tickets::find_ticket(&self.pool, self.ticket_id);
        match crate::db::answered_within(crate::db::SHORT_READ_WITHIN, read).await {
            Ok(Some(ticket)) => ticket.status_at(crate::clock::now()) == TicketStatus::Active,
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
