//! The seat maps of the dates someone watches, kept in memory: built from the
//! read model once per date (one query), then kept current from the feed.
//! Each change is serialized once and shared by every subscriber of the date;
//! the last few batches are kept so that a reconnect with `Last-Event-ID`
//! gets what it missed instead of a new snapshot.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde::Serialize;
use sqlx::PgPool;
use tokio::sync::{broadcast, OnceCell};
use uuid::Uuid;

use super::changes::{ChangeKind, LogChange, SeatStatus};
use super::lock;

/// Batches of changes remembered per date for `Last-Event-ID`.
const REMEMBERED: usize = 256;
/// Batches a subscriber may fall behind before it is sent a new snapshot.
const BACKLOG: usize = 1024;
/// How long a date's map is kept once nobody watches it: long enough for a
/// reconnect to resume with `Last-Event-ID`, short enough that dates nobody
/// watches cost no memory.
const KEEP_UNWATCHED: Duration = Duration::from_secs(60);

/// One seat's new status, as `event: seats` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SeatChange {
    pub seat_id: Uuid,
    pub seat_no: i32,
    pub status: SeatStatus,
}

/// The changes of one date in one read of the log: one `event: seats`.
#[derive(Debug)]
pub struct SeatBatch {
    /// The position of the last event it includes.
    pub position: i64,
    /// The whole Server-Sent Event, `data: {"changes": [...]}`, encoded once:
    /// each subscriber's share of a batch is a reference count and a write.
    pub frame: Bytes,
}

/// One Server-Sent Event as sent on the wire (the data is one JSON line).
fn frame(event: &str, position: i64, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\nid: {position}\ndata: {data}\n\n"))
}

/// A date's concert and size, known once its map is loaded.
#[derive(Debug, Clone, Copy)]
pub struct DateInfo {
    pub concert_id: Uuid,
    pub total_seats: i32,
}

/// What a new subscriber is sent first.
pub enum Start {
    /// `event: snapshot`, encoded.
    Snapshot(Bytes),
    /// The batches after the client's `Last-Event-ID`.
    Replay(Vec<Arc<SeatBatch>>),
}

/// A subscription to one date's map.
pub struct Subscription {
    pub info: DateInfo,
    pub start: Start,
    pub receiver: broadcast::Receiver<Arc<SeatBatch>>,
    pub map: Arc<DateMap>,
}

/// Every watched date's map.
#[derive(Default)]
pub struct SeatMaps {
    maps: Mutex<HashMap<Uuid, Arc<DateMap>>>,
}

/// One date's map and its subscribers.
pub struct DateMap {
    date_id: Uuid,
    info: OnceCell<DateInfo>,
    state: Mutex<MapState>,
    sender: broadcast::Sender<Arc<SeatBatch>>,
}

#[derive(Default)]
struct MapState {
    /// One letter per seat_no from 1; empty until loaded.
    seats: Vec<u8>,
    loaded: bool,
    /// Changes that arrived while the map was being read.
    pending: Vec<(i32, SeatStatus)>,
    remembered: VecDeque<Arc<SeatBatch>>,
    /// Every batch after this position is in `remembered`.
    floor: i64,
    /// Since when nobody has watched the map (as the sweeps saw it).
    unwatched_since: Option<Instant>,
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
        loop {
            let map = lock(&self.maps)
                .entry(date_id)
                .or_insert_with(|| Arc::new(DateMap::new(date_id)))
                .clone();
            let loaded = map
                .info
                .get_or_try_init(|| map.load(pool, position()))
                .await;
            let mut maps = lock(&self.maps);
            let current = maps
                .get(&date_id)
                .is_some_and(|held| Arc::ptr_eq(held, &map));
            match loaded {
                // Under the registry's lock, so a sweep cannot forget the map
                // between this check and the subscription.
                Ok(_) if current => return Ok(map.subscribe(position(), last_event_id)),
                // Swept meanwhile: the feed no longer updates it. Again.
                Ok(_) => continue,
                Err(error) => {
                    // Forget a date that does not exist (or failed to load),
                    // so that made-up ids take no memory and a failure is retried.
                    if current {
                        maps.remove(&date_id);
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Applies a read of the log to the maps of watched dates and sends each
    /// date's changes to its subscribers.
    pub(super) fn apply(&self, changes: &[LogChange]) {
        let mut by_date: HashMap<Uuid, (i64, Vec<SeatChange>)> = HashMap::new();
        {
            let maps = lock(&self.maps);
            for change in changes {
                if let ChangeKind::Seat {
                    date_id,
                    seat_id,
                    seat_no,
                    status,
                } = change.kind
                {
                    if maps.contains_key(&date_id) {
                        let entry = by_date.entry(date_id).or_default();
                        entry.0 = change.position;
                        entry.1.push(SeatChange {
                            seat_id,
                            seat_no,
                            status,
                        });
                    }
                }
            }
        }
        for (date_id, (position, seats)) in by_date {
            let map = lock(&self.maps).get(&date_id).cloned();
            if let Some(map) = map {
                map.apply(position, seats);
            }
        }
    }

    /// How many dates are watched, and their subscribers.
    pub fn watched(&self) -> (usize, usize) {
        let maps = lock(&self.maps);
        let subscribers = maps.values().map(|map| map.sender.receiver_count()).sum();
        (maps.len(), subscribers)
    }

    /// Forgets the loaded maps nobody has watched for `KEEP_UNWATCHED`.
    pub(super) fn sweep(&self) {
        let now = Instant::now();
        lock(&self.maps).retain(|_, map| {
            let mut state = lock(&map.state);
            if !state.loaded || map.sender.receiver_count() > 0 {
                state.unwatched_since = None;
                return true;
            }
            let since = *state.unwatched_since.get_or_insert(now);
            now.duration_since(since) < KEEP_UNWATCHED
        });
    }
}

impl DateMap {
    fn new(date_id: Uuid) -> Self {
        Self {
            date_id,
            info: OnceCell::new(),
            state: Mutex::new(MapState::default()),
            sender: broadcast::channel(BACKLOG).0,
        }
    }

    /// Reads the date's seats from the read model: one row, one letter a seat.
    async fn load(&self, pool: &PgPool, floor: i64) -> Result<DateInfo, MapError> {
        let row: Option<(Uuid, i32, Option<String>)> = sqlx::query_as(
            "select d.concert_id, d.total_seats,
                    (select string_agg(case s.status when 'free' then 'F' when 'held' then 'H' else 'S' end,
                                       '' order by s.seat_no)
                     from seats s where s.date_id = d.date_id)
             from concert_dates d where d.date_id = $1",
        )
        .bind(self.date_id)
        .fetch_optional(pool)
        .await?;
        let (concert_id, total_seats, letters) = row.ok_or(MapError::UnknownDate)?;
        let mut state = lock(&self.state);
        state.seats = letters.unwrap_or_default().into_bytes();
        // The read may already show some of these; setting a status twice
        // leaves it the same.
        for (seat_no, status) in std::mem::take(&mut state.pending) {
            set(&mut state.seats, seat_no, status);
        }
        state.floor = floor;
        state.loaded = true;
        Ok(DateInfo {
            concert_id,
            total_seats,
        })
    }

    fn apply(&self, position: i64, seats: Vec<SeatChange>) {
        let data = serde_json::json!({ "changes": seats }).to_string();
        let batch = Arc::new(SeatBatch {
            position,
            frame: frame("seats", position, &data),
        });
        let mut state = lock(&self.state);
        for change in &seats {
            if state.loaded {
                set(&mut state.seats, change.seat_no, change.status);
            } else {
                state.pending.push((change.seat_no, change.status));
            }
        }
        state.remembered.push_back(batch.clone());
        if state.remembered.len() > REMEMBERED {
            if let Some(forgotten) = state.remembered.pop_front() {
                state.floor = forgotten.position;
            }
        }
        // Sent under the lock, so a subscriber's start and its receiver agree.
        let _ = self.sender.send(batch);
    }

    /// The start for a client and a receiver of what follows, taken together.
    pub fn subscribe(self: &Arc<Self>, position: i64, last_event_id: Option<i64>) -> Subscription {
        let state = lock(&self.state);
        let receiver = self.sender.subscribe();
        let info = *self.info.get().expect("subscribe follows load");
        let start = match last_event_id {
            Some(seen) if seen >= state.floor && seen <= position => Start::Replay(
                state
                    .remembered
                    .iter()
                    .filter(|batch| batch.position > seen)
                    .cloned()
                    .collect(),
            ),
            _ => {
                let data = serde_json::json!({
                    "date_id": self.date_id,
                    "total_seats": info.total_seats,
                    "seats": String::from_utf8_lossy(&state.seats),
                });
                Start::Snapshot(frame("snapshot", position, &data.to_string()))
            }
        };
        Subscription {
            info,
            start,
            receiver,
            map: self.clone(),
        }
    }
}

fn set(seats: &mut [u8], seat_no: i32, status: SeatStatus) {
    if let Some(letter) = usize::try_from(seat_no - 1)
        .ok()
        .and_then(|index| seats.get_mut(index))
    {
        *letter = status.letter();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded_map(seats: &str) -> Arc<DateMap> {
        let map = Arc::new(DateMap::new(Uuid::nil()));
        map.info
            .set(DateInfo {
                concert_id: Uuid::nil(),
                total_seats: seats.len() as i32,
            })
            .unwrap();
        let mut state = lock(&map.state);
        state.seats = seats.as_bytes().to_vec();
        state.loaded = true;
        drop(state);
        map
    }

    fn change(seat_no: i32, status: SeatStatus) -> SeatChange {
        SeatChange {
            seat_id: Uuid::nil(),
            seat_no,
            status,
        }
    }

    fn snapshot_of(subscription: Subscription) -> String {
        match subscription.start {
            Start::Snapshot(frame) => String::from_utf8(frame.to_vec()).unwrap(),
            Start::Replay(_) => panic!("expected a snapshot"),
        }
    }

    #[test]
    fn a_change_updates_the_snapshot_and_reaches_subscribers() {
        let map = loaded_map("FFFF");
        let mut receiver = map.subscribe(0, None).receiver;

        map.apply(
            7,
            vec![change(2, SeatStatus::Held), change(4, SeatStatus::Sold)],
        );

        let batch = receiver.try_recv().unwrap();
        assert_eq!(batch.position, 7);
        let text = std::str::from_utf8(&batch.frame).unwrap();
        assert!(text.starts_with("event: seats\nid: 7\ndata: {"));
        assert!(text.contains(r#""status":"held""#));
        assert!(snapshot_of(map.subscribe(7, None)).contains(r#""seats":"FHFS""#));
    }

    #[test]
    fn a_known_last_event_id_replays_what_came_after_it() {
        let map = loaded_map("FFFF");
        map.apply(3, vec![change(1, SeatStatus::Held)]);
        map.apply(5, vec![change(1, SeatStatus::Free)]);

        let Start::Replay(batches) = map.subscribe(5, Some(3)).start else {
            panic!("expected a replay");
        };
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].position, 5);
    }

    #[test]
    fn a_forgotten_or_future_last_event_id_gets_a_snapshot() {
        let map = loaded_map("FF");
        for position in 1..=(REMEMBERED as i64 + 10) {
            map.apply(position, vec![change(1, SeatStatus::Held)]);
        }

        snapshot_of(map.subscribe(300, Some(2)));
        snapshot_of(map.subscribe(300, Some(301)));
    }

    #[test]
    fn a_map_nobody_watches_is_forgotten_after_a_while() {
        let maps = SeatMaps::default();
        let map = loaded_map("FF");
        lock(&maps.maps).insert(Uuid::nil(), map.clone());
        let receiver = map.subscribe(0, None).receiver;

        maps.sweep();
        assert_eq!(maps.watched(), (1, 1));
        drop(receiver);
        maps.sweep();
        assert_eq!(maps.watched(), (1, 0), "kept for a reconnect");
        lock(&map.state).unwatched_since = Some(Instant::now() - KEEP_UNWATCHED);
        maps.sweep();
        assert_eq!(maps.watched(), (0, 0));
    }

    #[test]
    fn changes_during_the_load_are_applied_once_it_is_read() {
        let map = Arc::new(DateMap::new(Uuid::nil()));
        map.apply(4, vec![change(3, SeatStatus::Sold)]);

        assert_eq!(lock(&map.state).pending, vec![(3, SeatStatus::Sold)]);
    }
}
