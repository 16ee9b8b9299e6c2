//! Live updates: one feed per instance follows the event log and fans what
//! changed out to the Server-Sent Event streams from memory. The feed wakes
//! on a PostgreSQL notification from any instance's commit (migration 0006),
//! positions what is new and reads it once (`follower`); the seat maps of the
//! dates someone watches (`seat_map`) and the tickets' watchers (`standing`)
//! are kept current from that one read, so a subscriber costs the database
//! nothing per event, and 10,000 on a date cost it what one does.

mod changes;
mod follower;
pub mod seat_map;
pub mod standing;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

pub use changes::{LogChange, SeatStatus};
pub use follower::follow;

/// This instance's feed: shared by the follower task and every stream.
#[derive(Clone)]
pub struct Feed {
    inner: Arc<Inner>,
}

struct Inner {
    /// The last log position the feed has fanned out.
    position: AtomicI64,
    /// Turns true when the feed stops (shutdown): every stream then ends.
    closed: watch::Sender<bool>,
    seat_maps: seat_map::SeatMaps,
    standings: standing::Standings,
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
                closed: watch::Sender::new(false),
                seat_maps: seat_map::SeatMaps::default(),
                standings: standing::Standings::default(),
            }),
        }
    }

    /// The last log position fanned out: the `id` of a snapshot taken now.
    pub fn position(&self) -> i64 {
        self.inner.position.load(Ordering::Acquire)
    }

    /// Turns true when the feed has stopped; streams end then.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.inner.closed.subscribe()
    }

    /// The seat maps of watched dates.
    pub fn seat_maps(&self) -> &seat_map::SeatMaps {
        &self.inner.seat_maps
    }

    /// The watchers of queue tickets and of their concerts' queues.
    pub fn standings(&self) -> &standing::Standings {
        &self.inner.standings
    }

    /// Hands a read of the log to the seat maps and the watchers, then moves
    /// the position past it (in that order, so a snapshot's `id` never claims
    /// more than its map holds).
    fn publish(&self, changes: &[LogChange]) {
        let Some(last) = changes.last() else { return };
        self.inner.seat_maps.apply(changes);
        self.inner.standings.apply(changes);
        self.inner.position.store(last.position, Ordering::Release);
    }

    fn start_at(&self, position: i64) {
        self.inner.position.store(position, Ordering::Release);
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
