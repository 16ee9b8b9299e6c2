//! Live updates: one feed per instance follows the event log and fans what
//! changed out to the Server-Sent Event streams from memory. The feed wakes
//! on a PostgreSQL notification from any instance's commit
//! (`event_store::commit_signal`), positions what is new and has it back from
//! that statement, reading from the log only what another instance
//! positioned (`follower`); the seat maps of the dates someone watches
//! (`seat_map`) and the tickets' watchers (`standing`) are kept current from
//! what it publishes, so a subscriber costs the database nothing per event,
//! and 10,000 on a date cost it what one does.
//!
//! The same maps, the queue tickets (`tickets`) and the concerts' dates
//! (`dates`) answer the seat and date listings without a query while the
//! feed is current (`is_current`): this instance's own commits reach them
//! before their commands are answered (`own_commits`), the other instances'
//! within the feed's lag.

mod changes;
mod dates;
mod follower;
mod own_commits;
pub mod seat_map;
pub mod sold_out;
pub mod standing;
pub mod stream_permits;
pub mod tickets;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::projections::available_dates::DateRow;

pub use changes::{LogChange, SeatStatus};
pub use follower::follow;

/// The feed is current while its last complete read of the log began at most
/// this long ago (it reads at least once a second; see `follower`). Past it,
/// the listing asks the database.
const CURRENT_WITHIN: Duration = Duration::from_secs(2);

/// This instance's feed: shared by the follower task and every stream.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    /// The last log position the feed has fanned out.
    position: AtomicI64,
    /// The same, for those waiting until it reaches a position.
    moved: watch::Sender<i64>,
    /// Turns true when the feed stops (shutdown): every stream then ends.
    closed: watch::Sender<bool>,
    seat_maps: seat_map::SeatMaps,
    standings: standing::Standings,
    tickets: tickets::Tickets,
    dates: dates::ConcertDates,
    sold_out: sold_out::SoldOut,
    stream_permits: Arc<stream_permits::StreamPermits>,
    /// When the last complete read of the log began: every commit before it
    /// has been published.
    caught_up: Mutex<Option<Instant>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

impl Feed {
    /// A feed at position 0 that nothing follows yet.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                position: AtomicI64::new(0),
                moved: watch::Sender::new(0),
                closed: watch::Sender::new(false),
                seat_maps: seat_map::SeatMaps::default(),
                standings: standing::Standings::default(),
                tickets: tickets::Tickets::default(),
                dates: dates::ConcertDates::default(),
                sold_out: sold_out::SoldOut::default(),
                stream_permits: Arc::default(),
                caught_up: Mutex::new(None),
            }),
        }
    }

    /// The last log position fanned out: the `id` of a snapshot taken now.
    pub fn position(&self) -> i64 {
        self.inner.position.load(Ordering::Acquire)
    }

    /// Waits until the feed has fanned out `position`, for `within` at most:
    /// a client back with an id another instance gave it, which this one's
    /// feed learns of a moment later, resumes from it instead of getting a
    /// snapshot from before it.
    pub async fn reach(&self, position: i64, within: Duration) {
        let mut moved = self.inner.moved.subscribe();
        let _ = tokio::time::timeout(within, moved.wait_for(|at| *at >= position)).await;
    }

    /// Turns true when the feed has stopped; streams end then.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    /// A place for one more event stream of `ticket_id`, unless it has
    /// `stream_permits::STREAMS_PER_TOKEN` open already (after a roll call
    /// of those, which ends the ones whose clients went).
    pub async fn open_stream(&self, ticket_id: Uuid) -> Option<stream_permits::StreamPermit> {
        self.inner
            .stream_permits
            .open_after_roll_call(ticket_id)
            .await
    }

    /// The seat maps of watched dates.
    pub fn seat_maps(&self) -> &seat_map::SeatMaps {
        &self.inner.seat_maps
    }

    /// Queue tickets as the listings check them.
    pub fn tickets(&self) -> &tickets::Tickets {
        &self.inner.tickets
    }

    /// The concert's dates that start after `now` and have a free seat,
    /// earliest first, each with its free seats counted from its seat map
    /// (loaded first if nobody looks at it yet).
    pub async fn bookable_dates(
        &self,
        pool: &PgPool,
        concert_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Vec<DateRow>, seat_map::MapError> {
        let dates = self.inner.dates.of(pool, concert_id).await?;
        let mut bookable = Vec::new();
        for date in dates.iter().filter(|date| date.starts_at > now) {
            let free = match self.seat_maps().free_count(pool, date.date_id).await {
                Ok(free) => free,
                Err(seat_map::MapError::UnknownDate) => continue,
                Err(error) => return Err(error),
            };
            if free > 0 {
                bookable.push(DateRow {
                    available_seats: free as i32,
                    ..date.clone()
                });
            }
        }
        Ok(bookable)
    }

    /// Whether the feed has published every commit made more than
    /// `CURRENT_WITHIN` ago: what may be answered from its memory.
    pub fn is_current(&self) -> bool {
        lock(&self.inner.caught_up).is_some_and(|began| began.elapsed() <= CURRENT_WITHIN)
    }

    /// Which concerts have nothing left to sell.
    pub fn sold_out(&self) -> &sold_out::SoldOut {
        &self.inner.sold_out
    }

    /// The watchers of queue tickets and of their concerts' queues.
    pub fn standings(&self) -> &standing::Standings {
        &self.inner.standings
    }

    /// Hands a read of the log to the seat maps and the watchers, then moves
    /// the position past it (in that order, so a snapshot's `id` never claims
    /// more than its map holds; a map raises it to the last batch it holds,
    /// so it never claims less either).
    fn publish(&self, changes: &[LogChange]) {
        let Some(last) = changes.last() else { return };
        self.inner.seat_maps.apply(changes);
        // Before the watchers wake: a standing sent for this read must not
        // say seats are left on a read from before its sales.
        let sold = |change: &LogChange| {
            matches!(
                change.kind,
                changes::ChangeKind::Seat {
                    status: SeatStatus::Sold,
                    ..
                }
            )
        };
        if changes.iter().any(sold) {
            self.inner.sold_out.seat_sold();
        }
        self.inner.standings.apply(changes);
        for change in changes {
            if let changes::ChangeKind::Ticket {
                ticket_id,
                sequence,
                ..
            } = change.kind
            {
                self.inner.tickets.forget(ticket_id, sequence);
            }
        }
        self.inner.position.store(last.position, Ordering::Release);
        self.inner.moved.send_replace(last.position);
    }

    /// A read of the log that began at `began` has been published.
    fn caught_up(&self, began: Instant) {
        *lock(&self.inner.caught_up) = Some(began);
    }

    fn start_at(&self, position: i64) {
        self.inner.seat_maps.start_at(position);
        self.inner.position.store(position, Ordering::Release);
        self.inner.moved.send_replace(position);
    }

    fn close(&self) {
        self.inner.closed.send_replace(true);
    }
}

/// A poisoned lock only means a panic elsewhere; the maps stay usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feed_is_current_only_after_a_recent_complete_read() {
        let feed = Feed::new();
        assert!(!feed.is_current(), "a feed that never read the log");

        feed.caught_up(Instant::now());
        assert!(feed.is_current());

        feed.caught_up(Instant::now() - CURRENT_WITHIN - Duration::from_millis(1));
        assert!(!feed.is_current(), "a read begun too long ago");
    }

    #[tokio::test]
    async fn reaching_a_position_waits_for_it_and_no_longer_than_asked() {
        let feed = Feed::new();
        feed.start_at(10);
        let publisher = feed.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            publisher.start_at(12);
        });

        let waited = Instant::now();
        feed.reach(11, Duration::from_secs(5)).await;
        let took = waited.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert_eq!(feed.position(), 12);

        let waited = Instant::now();
        feed.reach(1_000, Duration::from_millis(200)).await;
        assert!(
            waited.elapsed() >= Duration::from_millis(200),
            "a position never reached"
        );
        let waited = Instant::now();
        feed.reach(5, Duration::from_secs(5)).await;
        assert!(
            waited.elapsed() < Duration::from_secs(1),
            "a position passed already"
        );
    }
}
