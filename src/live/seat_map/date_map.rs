//! One date's seat map and its subscribers: the seats as the feed keeps
//! them, the batches remembered for `Last-Event-ID`, the shared snapshot,
//! and the broadcast channel each batch goes out on.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Bytes;
use sqlx::PgPool;
use tokio::sync::{broadcast, OnceCell};
use uuid::Uuid;

use super::frames::{self, SeatBatch, SeatChange};
use super::rewind::{self, OwnCommit};
use super::seats::Seats;
use super::{DateInfo, MapError};
use crate::live::changes::SeatStatus;
use crate::live::lock;
use crate::projections::available_seats::FreeSeatRow;

/// Batches of changes remembered per date for `Last-Event-ID`.
const REMEMBERED: usize = 256;
/// Batches a subscriber may fall behind before it is sent a new snapshot.
const BACKLOG: usize = 1024;

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

/// One date's map and its subscribers.
pub struct DateMap {
    date_id: Uuid,
    pub(super) info: OnceCell<DateInfo>,
    pub(super) state: Mutex<MapState>,
    pub(super) sender: broadcast::Sender<Arc<SeatBatch>>,
}

#[derive(Default)]
pub(super) struct MapState {
    /// Empty until loaded.
    pub(super) seats: Seats,
    pub(super) loaded: bool,
    /// Changes that arrived while the map was being read.
    pub(super) pending: Vec<(Origin, Uuid, i64, SeatStatus)>,
    pub(super) remembered: VecDeque<Arc<SeatBatch>>,
    /// Every batch after this position is in `remembered`.
    pub(super) floor: i64,
    /// The position of the last batch from the log applied.
    pub(super) applied: i64,
    /// The last snapshot encoded and its position: shared by every
    /// subscriber that starts before the next change, so 10,000 starting
    /// together cost one encoding and one buffer.
    pub(super) snapshot: Option<(i64, Bytes)>,
    /// Since when nobody has watched or listed the map (as the sweeps saw it).
    pub(super) unwatched_since: Option<Instant>,
}

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// This instance's commit, told before its answer.
    Own,
    /// The log, through the feed.
    Log,
}

impl DateMap {
    pub(super) fn new(date_id: Uuid) -> Self {
        Self {
            date_id,
            info: OnceCell::new(),
            state: Mutex::new(MapState::default()),
            sender: broadcast::channel(BACKLOG).0,
        }
    }

    /// Reads the date's seats from the read model, put back to
    /// `floor`, the position the feed had handed to the maps when this one
    /// joined them (`rewind`; unknown before the feed starts).
    pub(super) async fn load(
        &self,
        pool: &PgPool,
        floor: Option<i64>,
        own: Vec<OwnCommit>,
    ) -> Result<DateInfo, MapError> {
        let (info, mut seats) = Seats::read(pool, self.date_id)
            .await?
            .ok_or(MapError::UnknownDate)?;
        if let Some(floor) = floor {
            let own: Vec<OwnCommit> = own
                .into_iter()
                .filter(|commit| commit.date_id.is_none_or(|date_id| date_id == self.date_id))
                .collect();
            rewind::rewind(&mut seats, pool, floor, &own).await?;
        }
        let mut state = lock(&self.state);
        state.seats = seats;
        // The read may already show some of these; applying them again in
        // order leaves each seat as the last one says.
        for (origin, seat_id, sequence, status) in std::mem::take(&mut state.pending) {
            match origin {
                Origin::Own => state.seats.set_own(seat_id, sequence, status),
                Origin::Log => state.seats.set(seat_id, sequence, status),
            }
        }
        // Unknown, no `Last-Event-ID` is replayed: a snapshot is sent.
        state.floor = floor.unwrap_or(i64::MAX);
        state.snapshot = None;
        state.loaded = true;
        Ok(info)
    }

    /// The number of free seats, which counts as a look at the map.
    pub(super) fn free_count(&self) -> usize {
        let mut state = lock(&self.state);
        state.unwatched_since = None;
        state.seats.free_count()
    }

    /// Free seats from the map, which counts as looked at.
    pub(super) fn free_seats(&self, after_seat_no: i32, limit: usize) -> Vec<FreeSeatRow> {
        let mut state = lock(&self.state);
        state.unwatched_since = None;
        state.seats.free_after(after_seat_no, limit)
    }

    pub(super) fn apply(&self, position: i64, changes: Vec<(SeatChange, i64)>) {
        let batch = Arc::new(SeatBatch::encode(position, &changes));
        let mut state = lock(&self.state);
        state.snapshot = None;
        state.applied = state.applied.max(position);
        for (seat, sequence) in &changes {
            if state.loaded {
                state.seats.set(seat.seat_id, *sequence, seat.status);
            } else {
                state
                    .pending
                    .push((Origin::Log, seat.seat_id, *sequence, seat.status));
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
        let mut state = lock(&self.state);
        let receiver = self.sender.subscribe();
        let info = *self.info.get().expect("subscribe follows load");
        // The map may hold a batch whose position the feed has not stored
        // yet (it hands a batch to the maps, then moves past it): a snapshot
        // claiming less than it shows would be replayed that batch again.
        let position = match state.floor {
            i64::MAX => position,
            floor => position.max(floor),
        }
        .max(state.applied);
        let start = match last_event_id {
            Some(seen) if seen >= state.floor && seen <= position => Start::Replay(
                state
                    .remembered
                    .iter()
                    .filter(|batch| batch.position > seen)
                    .cloned()
                    .collect(),
            ),
            _ => match &state.snapshot {
                Some((at, snapshot)) if *at == position => Start::Snapshot(snapshot.clone()),
                _ => {
                    let snapshot = frames::snapshot(
                        self.date_id,
                        info.total_seats,
                        &state.seats.letters_from_log(),
                        position,
                    );
                    state.snapshot = Some((position, snapshot.clone()));
                    Start::Snapshot(snapshot)
                }
            },
        };
        Subscription {
            info,
            start,
            receiver,
            map: self.clone(),
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::money::Won;
    use chrono::{DateTime, Utc};

    pub(in crate::live::seat_map) fn loaded_map(seats: &str) -> Arc<DateMap> {
        let map = Arc::new(DateMap::new(Uuid::nil()));
        map.info
            .set(DateInfo {
                concert_id: Uuid::nil(),
                total_seats: seats.len() as i32,
                starts_at: DateTime::<Utc>::MAX_UTC,
            })
            .unwrap();
        let ids = (1..=seats.len()).map(|no| seat_id(no as i32)).collect();
        let prices = vec![Won(100); seats.len()];
        let mut state = lock(&map.state);
        state.seats = Seats::new(ids, prices, seats.as_bytes().to_vec());
        state.loaded = true;
        drop(state);
        map
    }

    pub(in crate::live::seat_map) fn seat_id(seat_no: i32) -> Uuid {
        Uuid::from_u128(seat_no as u128)
    }

    /// A change of `seat_no`, the `sequence`th of its stream.
    pub(in crate::live::seat_map) fn change(
        seat_no: i32,
        sequence: i64,
        status: SeatStatus,
    ) -> (SeatChange, i64) {
        let seat = SeatChange {
            seat_id: seat_id(seat_no),
            seat_no,
            status,
        };
        (seat, sequence)
    }

    pub(in crate::live::seat_map) fn snapshot_frame(subscription: Subscription) -> Bytes {
        match subscription.start {
            Start::Snapshot(frame) => frame,
            Start::Replay(_) => panic!("expected a snapshot"),
        }
    }

    pub(in crate::live::seat_map) fn snapshot_of(subscription: Subscription) -> String {
        String::from_utf8(snapshot_frame(subscription).to_vec()).unwrap()
    }

    #[test]
    fn a_change_updates_the_snapshot_and_reaches_subscribers() {
        let map = loaded_map("FFFF");
        let mut receiver = map.subscribe(0, None).receiver;

        map.apply(
            7,
            vec![
                change(2, 1, SeatStatus::Held),
                change(4, 2, SeatStatus::Sold),
            ],
        );

        let batch = receiver.try_recv().unwrap();
        assert_eq!(batch.position, 7);
        let text = std::str::from_utf8(&batch.frame).unwrap();
        assert!(text.starts_with("event: seats\nid: 7\ndata: {"));
        assert!(text.contains(r#""status":"held""#));
        let compact = std::str::from_utf8(&batch.compact).unwrap();
        assert_eq!(compact, "event: seat-changes\nid: 7\ndata: \"2H,4S\"\n\n");
        assert!(snapshot_of(map.subscribe(7, None)).contains(r#""seats":"FHFS""#));
    }

    #[test]
    fn a_snapshot_taken_before_the_feed_moves_past_a_batch_claims_that_batch() {
        let map = loaded_map("FFFF");
        map.apply(4, vec![change(1, 1, SeatStatus::Held)]);

        // The feed still says 3: it moves its position after the maps.
        let snapshot = snapshot_of(map.subscribe(3, None));

        assert!(snapshot.contains("id: 4\n"), "{snapshot}");
        assert!(snapshot.contains(r#""seats":"HFFF""#), "{snapshot}");
    }

    #[test]
    fn subscribers_starting_between_two_changes_share_one_snapshot() {
        let map = loaded_map("FF");
        let first = snapshot_frame(map.subscribe(3, None));
        let second = snapshot_frame(map.subscribe(3, None));
        assert_eq!(first.as_ptr(), second.as_ptr(), "one buffer");

        map.apply(4, vec![change(1, 1, SeatStatus::Held)]);
        let third = snapshot_frame(map.subscribe(4, None));
        assert_ne!(first.as_ptr(), third.as_ptr());
        assert!(std::str::from_utf8(&third)
            .unwrap()
            .contains(r#""seats":"HF""#));
    }

    #[test]
    fn a_known_last_event_id_replays_what_came_after_it() {
        let map = loaded_map("FFFF");
        map.apply(3, vec![change(1, 1, SeatStatus::Held)]);
        map.apply(5, vec![change(1, 2, SeatStatus::Free)]);

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
            map.apply(position, vec![change(1, position, SeatStatus::Held)]);
        }

        snapshot_of(map.subscribe(300, Some(2)));
        snapshot_of(map.subscribe(300, Some(301)));
    }

    #[test]
    fn changes_during_the_load_are_applied_once_it_is_read() {
        let map = Arc::new(DateMap::new(Uuid::nil()));
        map.apply(4, vec![change(3, 2, SeatStatus::Sold)]);

        assert_eq!(
            lock(&map.state).pending,
            vec![(Origin::Log, seat_id(3), 2, SeatStatus::Sold)]
        );
    }
}
