//! The seat maps of the dates someone watches or lists, kept in memory: the
//! registry of each date's map (`date_map`), the feed's changes and this
//! instance's own commits handed to them. A map is built from the read
//! model once per date (one query, then a look by key at the seats whose
//! events the feed has not brought yet: `rewind`) and kept current from
//! then on (`seats`). Each change is serialized once (`frames`) and shared
//! by every subscriber of the date; the last few batches are kept so that a
//! reconnect with `Last-Event-ID` gets what it missed instead of a new
//! snapshot.

mod date_map;
mod frames;
mod registry;
mod rewind;
mod seats;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use self::date_map::Origin;
pub use self::date_map::{DateMap, Start, Subscription};
pub use self::frames::{SeatBatch, SeatChange};
use self::registry::Registry;
use self::rewind::OwnCommit;
use super::changes::{ChangeKind, LogChange, SeatStatus};
use super::lock;
use crate::projections::available_seats::FreeSeatRow;

/// How long a date's map is kept once nobody watches or lists it: long
/// enough for a reconnect to resume with `Last-Event-ID`, short enough that
/// dates nobody looks at cost no memory.
const KEEP_UNWATCHED: Duration = Duration::from_secs(60);
/// How long this instance's own seat commits are kept for maps read for the
/// first time: well past the feed's lag while listings are served from
/// memory (at most 2 s), and at most this many of them.
const OWN_KEPT: Duration = Duration::from_secs(10);
const OWN_KEPT_MOST: usize = 65_536;

/// A date's concert, size and start, known once its map is loaded.
#[derive(Debug, Clone, Copy)]
pub struct DateInfo {
    pub concert_id: Uuid,
    pub total_seats: i32,
    pub starts_at: DateTime<Utc>,
}

/// Every watched date's map.
pub struct SeatMaps {
    maps: Mutex<Registry>,
    /// The last position whose changes the feed has handed to the maps,
    /// negative until it starts. Written and read under `maps`' lock: a map
    /// added to `maps` gets every later change, so its first read is put
    /// back to this position and no change falls between the two.
    handed_upto: AtomicI64,
    /// This instance's own seat commits of the last `OWN_KEPT`, oldest first.
    recent_own: Mutex<VecDeque<(Instant, OwnCommit)>>,
}

impl Default for SeatMaps {
    fn default() -> Self {
        Self {
            maps: Mutex::default(),
            handed_upto: AtomicI64::new(-1),
            recent_own: Mutex::default(),
        }
    }
}

/// Why a date's map could not be had.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("no such date")]
    UnknownDate,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl SeatMaps {
    /// Subscribes to `date_id`'s map, loading it first if nobody watches it
    /// yet. `position` is the feed's position now; `last_event_id` the
    /// client's, when it reconnects.
    pub async fn subscribe(
        &self,
        pool: &PgPool,
        date_id: Uuid,
        position: impl Fn() -> i64,
        last_event_id: Option<i64>,
    ) -> Result<Subscription, MapError> {
        self.with_map(pool, date_id, |map| {
            map.subscribe(position(), last_event_id)
        })
        .await
    }

    /// Up to `limit` free seats of `date_id` numbered above `after_seat_no`,
    /// with the date's concert, from the map (loaded first if need be).
    pub async fn free_seats(
        &self,
        pool: &PgPool,
        date_id: Uuid,
        after_seat_no: i32,
        limit: usize,
    ) -> Result<(DateInfo, Vec<FreeSeatRow>), MapError> {
        self.with_map(pool, date_id, |map| {
            let info = *map.info.get().expect("with_map loads first");
            (info, map.free_seats(after_seat_no, limit))
        })
        .await
    }

    /// How many seats of `date_id` are free, from the map (loaded first if
    /// need be).
    pub async fn free_count(&self, pool: &PgPool, date_id: Uuid) -> Result<usize, MapError> {
        self.with_map(pool, date_id, |map| map.free_count()).await
    }

    /// Runs `then` on `date_id`'s loaded map, under the registry's lock so
    /// that a sweep cannot forget the map between the load and `then`.
    async fn with_map<T>(
        &self,
        pool: &PgPool,
        date_id: Uuid,
        then: impl FnOnce(&Arc<DateMap>) -> T,
    ) -> Result<T, MapError> {
        loop {
            let (map, floor) = self.join(date_id);
            let loaded = map
                .info
                .get_or_try_init(|| map.load(pool, floor, self.own_commits_kept()))
                .await;
            let mut maps = lock(&self.maps);
            let current = maps
                .dates
                .get(&date_id)
                .is_some_and(|held| Arc::ptr_eq(held, &map));
            match loaded {
                Ok(info) if current => {
                    maps.file(date_id, *info);
                    return Ok(then(&map));
                }
                // Swept meanwhile: the feed no longer updates it. Again.
                Ok(_) => continue,
                Err(error) => {
                    // Forget a date that does not exist (or failed to load),
                    // so that made-up ids take no memory and a failure is retried.
                    if current {
                        maps.dates.remove(&date_id);
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Whether `seat_id` shows as held or sold in a loaded map of one of
    /// `concert_id`'s dates; `None` when none has the seat (nothing is
    /// loaded for this).
    pub fn taken(&self, seat_id: Uuid, concert_id: Uuid) -> Option<bool> {
        let maps = lock(&self.maps).of_concert(concert_id);
        maps.iter().find_map(|map| {
            let letter = lock(&map.state).seats.letter_of(seat_id)?;
            Some(letter != SeatStatus::Free.letter())
        })
    }

    /// This instance's own commit of a seat change, applied before the
    /// command is answered so that its sender lists what it just did. The
    /// log's copy follows through the feed and changes nothing then. `date_id`
    /// is known for a hold; otherwise the seat is looked for in every map.
    pub fn committed(
        &self,
        date_id: Option<Uuid>,
        seat_id: Uuid,
        sequence: i64,
        status: SeatStatus,
    ) {
        self.keep_own(OwnCommit {
            date_id,
            seat_id,
            sequence,
            status,
        });
        let maps: Vec<Arc<DateMap>> = {
            let maps = lock(&self.maps);
            match date_id {
                Some(date_id) => maps.dates.get(&date_id).cloned().into_iter().collect(),
                None => maps.dates.values().cloned().collect(),
            }
        };
        for map in maps {
            let mut state = lock(&map.state);
            if !state.loaded {
                state.pending.push((Origin::Own, seat_id, sequence, status));
            } else if state.seats.contains(seat_id) {
                // Snapshots show it once the log brings it: they stay as they are.
                state.seats.set_own(seat_id, sequence, status);
                return;
            }
        }
    }

    /// Applies a read of the log to the maps of watched dates and sends each
    /// date's changes to its subscribers.
    pub(super) fn apply(&self, changes: &[LogChange]) {
        let mut by_date: HashMap<Uuid, (i64, Vec<(SeatChange, i64)>)> = HashMap::new();
        {
            let maps = lock(&self.maps);
            if let Some(last) = changes.last() {
                self.handed_upto.store(last.position, Ordering::Relaxed);
            }
            for change in changes {
                if let ChangeKind::Seat {
                    date_id,
                    seat_id,
                    seat_no,
                    sequence,
                    status,
                } = change.kind
                {
                    if maps.dates.contains_key(&date_id) {
                        let entry = by_date.entry(date_id).or_default();
                        entry.0 = change.position;
                        let seat = SeatChange {
                            seat_id,
                            seat_no,
                            status,
                        };
                        entry.1.push((seat, sequence));
                    }
                }
            }
        }
        for (date_id, (position, seats)) in by_date {
            let map = lock(&self.maps).dates.get(&date_id).cloned();
            if let Some(map) = map {
                map.apply(position, seats);
            }
        }
    }

    /// `date_id`'s map, added to the maps if need be, and the position up to
    /// which the feed handed out changes before the map was there to take
    /// them: what a first read of the map is put back to (`None` before the
    /// feed starts).
    fn join(&self, date_id: Uuid) -> (Arc<DateMap>, Option<i64>) {
        let mut maps = lock(&self.maps);
        let map = maps
            .dates
            .entry(date_id)
            .or_insert_with(|| Arc::new(DateMap::new(date_id)))
            .clone();
        let handed_upto = self.handed_upto.load(Ordering::Relaxed);
        (map, (handed_upto >= 0).then_some(handed_upto))
    }

    /// The feed starts at `position`: every change up to it is in the read
    /// models, and every later one is handed to the maps.
    pub(super) fn start_at(&self, position: i64) {
        let _maps = lock(&self.maps);
        self.handed_upto.store(position, Ordering::Relaxed);
    }

    fn keep_own(&self, commit: OwnCommit) {
        let now = Instant::now();
        let mut recent = lock(&self.recent_own);
        while recent.front().is_some_and(|(at, _)| {
            now.duration_since(*at) > OWN_KEPT || recent.len() >= OWN_KEPT_MOST
        }) {
            recent.pop_front();
        }
        recent.push_back((now, commit));
    }

    fn own_commits_kept(&self) -> Vec<OwnCommit> {
        lock(&self.recent_own)
            .iter()
            .map(|(_, commit)| *commit)
            .collect()
    }

    /// How many dates are watched, and their subscribers.
    pub fn watched(&self) -> (usize, usize) {
        let maps = lock(&self.maps);
        let subscribers = maps
            .dates
            .values()
            .map(|map| map.sender.receiver_count())
            .sum();
        (maps.dates.len(), subscribers)
    }

    /// Forgets the loaded maps nobody has watched or listed for
    /// `KEEP_UNWATCHED`, and at once the unloaded maps no request is loading:
    /// a request cancelled mid-load (its client hung up, its time ran out)
    /// left its map here unloaded for good, so made-up date ids sent by a
    /// client that hangs up grew the memory without bound.
    pub(super) fn sweep(&self) {
        let now = Instant::now();
        lock(&self.maps).retain(|map| {
            let mut state = lock(&map.state);
            if !state.loaded {
                // A loader holds the map from `join`, under this same lock,
                // until it has its answer; the registry holds the other one.
                return Arc::strong_count(map) > 1;
            }
            if map.sender.receiver_count() > 0 {
                state.unwatched_since = None;
                return true;
            }
            let since = *state.unwatched_since.get_or_insert(now);
            now.duration_since(since) < KEEP_UNWATCHED
        });
    }
}

#[cfg(test)]
mod tests;
