//! Who watches which queue ticket: a watch per ticket (its own admission or
//! expiry) and per concert (the line moved: someone ahead left it). The feed
//! bumps them with the log position; a stream that wakes works its standing
//! out again, at most once a second for moves of the line, from the
//! concert's line as last read (`Standings::line`): one read of the line per
//! move, however many watch it. A look at a token's place
//! (`GET /queue/tokens/current`) is answered from the same read.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use uuid::Uuid;

use super::changes::{ChangeKind, LogChange};
use super::lock;
use crate::projections::queue_line::LineRow;

/// How long a read of a line serves its watchers when the line does not
/// move: the admission rate behind the estimated wait slides with time.
const LINE_FRESH: chrono::TimeDelta = chrono::TimeDelta::seconds(1);
/// How long the moves of a concert's line are followed after its last
/// look: clients that poll their place keep its read in memory meanwhile.
const LOOKED_AT_KEPT: std::time::Duration = std::time::Duration::from_secs(60);

/// The watches of tickets and concerts that someone follows.
#[derive(Default)]
pub struct Standings {
    tickets: Mutex<HashMap<Uuid, watch::Sender<i64>>>,
    concerts: Mutex<HashMap<Uuid, watch::Sender<i64>>>,
    /// The last read of each watched concert's line; its lock is held while
    /// one watcher reads it, so the others wait for that read.
    lines: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Option<Line>>>>>,
    /// Concerts whose line someone looked at lately, without a stream: the
    /// line watch each keeps counts the moves their next look must show.
    looked_at: Mutex<HashMap<Uuid, LookedAt>>,
    /// Counts this instance's own commits that moved a line (an admission
    /// or an expiry) as they commit: a read of a line from before one is
    /// not shared after it, though the feed has not brought it yet.
    own_moves: AtomicU64,
}

struct LookedAt {
    line: watch::Receiver<i64>,
    last: std::time::Instant,
}

/// A concert's line as read once for all its watchers.
#[derive(Clone)]
pub struct Line {
    /// The move of the line (the line watch's value) that it shows, or later.
    moved_at: i64,
    /// The count of own moves when its read began: it shows them all.
    own_moves: u64,
    pub row: Arc<LineRow>,
    pub read_at: DateTime<Utc>,
}

/// What a standing stream waits on.
pub struct Watch {
    /// Bumped when the ticket itself changes.
    pub ticket: watch::Receiver<i64>,
    /// Bumped when a ticket of the concert is admitted or expires.
    pub line: watch::Receiver<i64>,
}

impl Standings {
    /// Starts watching `ticket_id` of `concert_id`.
    pub fn watch(&self, ticket_id: Uuid, concert_id: Uuid) -> Watch {
        Watch {
            ticket: subscribe(&self.tickets, ticket_id),
            line: subscribe(&self.concerts, concert_id),
        }
    }

    /// Starts watching `ticket_id` alone: bumped with the position of each
    /// change of the ticket.
    pub fn watch_ticket(&self, ticket_id: Uuid) -> watch::Receiver<i64> {
        subscribe(&self.tickets, ticket_id)
    }

    /// The last move of `concert_id`'s line (a value of its line watch) for
    /// a look at a place in it, which `line` then shows. The first look
    /// starts following the line's moves, for `LOOKED_AT_KEPT` after the last.
    pub fn looked_at(&self, concert_id: Uuid) -> i64 {
        let mut looked_at = lock(&self.looked_at);
        let looked = looked_at.entry(concert_id).or_insert_with(|| LookedAt {
            line: subscribe(&self.concerts, concert_id),
            last: std::time::Instant::now(),
        });
        looked.last = std::time::Instant::now();
        let moved_at = *looked.line.borrow();
        moved_at
    }

    /// The line of `concert_id` showing its move `moved_at` (a value of the
    /// line watch) or a later one: the last read when it is that recent and
    /// younger than `LINE_FRESH`, or else a new one by `read`, which the
    /// watchers that ask meanwhile share.
    pub async fn line<E, Read>(
        &self,
        concert_id: Uuid,
        moved_at: i64,
        read: impl FnOnce() -> Read,
    ) -> Result<Line, E>
    where
        Read: Future<Output = Result<(LineRow, DateTime<Utc>), E>>,
    {
        // The own moves made before this call, which the line must show: a
        // read begun while this call waited for another's shows them too.
        let own_moves = self.own_moves.load(Ordering::Acquire);
        let slot = lock(&self.lines).entry(concert_id).or_default().clone();
        let mut last = slot.lock().await;
        let fresh_since = crate::clock::now() - LINE_FRESH;
        if let Some(line) = last.as_ref().filter(|line| {
            line.moved_at >= moved_at && line.own_moves >= own_moves && line.read_at > fresh_since
        }) {
            return Ok(line.clone());
        }
        // The read starts after the move was published, so it shows it.
        let own_moves = self.own_moves.load(Ordering::Acquire);
        let (row, read_at) = read().await?;
        let line = Line {
            moved_at,
            own_moves,
            row: Arc::new(row),
            read_at,
        };
        *last = Some(line.clone());
        Ok(line)
    }

    pub(super) fn apply(&self, changes: &[LogChange]) {
        let tickets = lock(&self.tickets);
        let concerts = lock(&self.concerts);
        for change in changes {
            if let ChangeKind::Ticket {
                ticket_id,
                concert_id,
                entered,
                ..
            } = change.kind
            {
                if let Some(sender) = tickets.get(&ticket_id) {
                    sender.send_replace(change.position);
                }
                // A new entry joins behind everyone: nobody's place moves.
                if !entered {
                    if let Some(sender) = concerts.get(&concert_id) {
                        sender.send_replace(change.position);
                    }
                }
            }
        }
    }

    /// This instance committed an admission or an expiry: the lines read
    /// before it are read again at their next look.
    pub(super) fn moved_here(&self) {
        self.own_moves.fetch_add(1, Ordering::AcqRel);
    }

    /// The line of `concert_id` moved with no event in the log (a number
    /// released as unused): its last read is dropped, once any read under
    /// way has ended, and its watchers are woken to read it again.
    pub async fn line_changed(&self, concert_id: Uuid) {
        let slot = lock(&self.lines).get(&concert_id).cloned();
        if let Some(slot) = slot {
            *slot.lock().await = None;
        }
        if let Some(sender) = lock(&self.concerts).get(&concert_id) {
            sender.send_modify(|_| {});
        }
    }

    /// Every watched line may have moved unseen (announcements missed while
    /// the listener reconnected).
    pub async fn every_line_changed(&self) {
        let concerts: Vec<Uuid> = lock(&self.concerts).keys().copied().collect();
        for concert_id in concerts {
            self.line_changed(concert_id).await;
        }
    }

    /// Forgets the watches nobody holds any more.
    pub(super) fn sweep(&self) {
        lock(&self.looked_at).retain(|_, looked| looked.last.elapsed() < LOOKED_AT_KEPT);
        lock(&self.tickets).retain(|_, sender| sender.receiver_count() > 0);
        let mut concerts = lock(&self.concerts);
        concerts.retain(|_, sender| sender.receiver_count() > 0);
        lock(&self.lines).retain(|concert_id, _| concerts.contains_key(concert_id));
    }
}

fn subscribe(watches: &Mutex<HashMap<Uuid, watch::Sender<i64>>>, id: Uuid) -> watch::Receiver<i64> {
    lock(watches)
        .entry(id)
        .or_insert_with(|| watch::Sender::new(0))
        .subscribe()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::projections::queue_pace::RecentAdmissions;

    fn line_with(left_waiting: i64) -> LineRow {
        LineRow {
            left_waiting,
            unused_entries: Vec::new(),
            admissions: RecentAdmissions::NONE,
        }
    }

    /// Asks for the line as of `moved_at`, counting the reads it takes.
    async fn ask(standings: &Standings, reads: &AtomicUsize, moved_at: i64) -> Line {
        let concert_id = Uuid::nil();
        standings
            .line(concert_id, moved_at, || async {
                let read = reads.fetch_add(1, Ordering::SeqCst) as i64;
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, ()>((line_with(read), Utc::now()))
            })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn watchers_of_one_move_share_one_read_and_a_later_move_reads_again() {
        let standings = Standings::default();
        let reads = AtomicUsize::new(0);
        let lines = futures::future::join_all((0..100).map(|_| ask(&standings, &reads, 5))).await;
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert!(lines.iter().all(|line| line.row.left_waiting == 0));

        // A watcher still at an earlier move takes the newer read.
        assert_eq!(ask(&standings, &reads, 3).await.row.left_waiting, 0);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        assert_eq!(ask(&standings, &reads, 6).await.row.left_waiting, 1);
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    fn ticket_change(concert_id: Uuid, position: i64, entered: bool) -> LogChange {
        LogChange {
            position,
            kind: ChangeKind::Ticket {
                ticket_id: Uuid::new_v4(),
                concert_id,
                sequence: 1,
                entered,
            },
        }
    }

    #[test]
    fn a_look_follows_the_moves_of_its_line_from_the_first_look_on() {
        let standings = Standings::default();
        let concert_id = Uuid::new_v4();
        // Nobody looked yet: a move is not followed, and the first look reads.
        standings.apply(&[ticket_change(concert_id, 3, false)]);
        assert_eq!(standings.looked_at(concert_id), 0);
        standings.apply(&[ticket_change(concert_id, 7, false)]);
        assert_eq!(standings.looked_at(concert_id), 7);
        // A new entry joins behind everyone; another concert is not this one.
        standings.apply(&[
            ticket_change(concert_id, 8, true),
            ticket_change(Uuid::new_v4(), 9, false),
        ]);
        assert_eq!(standings.looked_at(concert_id), 7);
        // Kept while looked at; a sweep forgets a line nobody looked at lately.
        standings.sweep();
        assert_eq!(standings.looked_at(concert_id), 7);
        if let Some(long_ago) = std::time::Instant::now().checked_sub(LOOKED_AT_KEPT) {
            lock(&standings.looked_at)
                .get_mut(&concert_id)
                .unwrap()
                .last = long_ago;
            standings.sweep();
            assert!(lock(&standings.concerts).is_empty());
        }
    }

    #[tokio::test]
    async fn a_read_from_before_an_own_move_is_not_shared() {
        let standings = Standings::default();
        let reads = AtomicUsize::new(0);
        assert_eq!(ask(&standings, &reads, 1).await.row.left_waiting, 0);
        assert_eq!(ask(&standings, &reads, 1).await.row.left_waiting, 0);
        standings.moved_here();
        assert_eq!(ask(&standings, &reads, 1).await.row.left_waiting, 1);
        assert_eq!(reads.load(Ordering::SeqCst), 2);

        // Watchers waiting on one read share it, though own moves go on
        // meanwhile: it began after each of them asked.
        let moving = async {
            for _ in 0..10 {
                standings.moved_here();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        let asking = futures::future::join_all((0..20).map(|_| ask(&standings, &reads, 1)));
        let (_, lines) = tokio::join!(moving, asking);
        assert!(lines.iter().all(|line| line.row.left_waiting == 2));
        assert_eq!(reads.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_read_older_than_a_second_is_not_shared() {
        let standings = Standings::default();
        let old = Utc::now() - chrono::TimeDelta::seconds(2);
        let stale = standings
            .line(Uuid::nil(), 1, || async {
                Ok::<_, ()>((line_with(7), old))
            })
            .await
            .unwrap();
        assert_eq!(stale.row.left_waiting, 7);
        let reads = AtomicUsize::new(0);
        assert_eq!(ask(&standings, &reads, 1).await.row.left_waiting, 0);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_read_is_not_kept() {
        let standings = Standings::default();
        let failed = standings
            .line(Uuid::nil(), 1, || async {
                Err::<(LineRow, DateTime<Utc>), _>("down")
            })
            .await;
        assert_eq!(failed.err(), Some("down"));
        let reads = AtomicUsize::new(0);
        ask(&standings, &reads, 1).await;
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }
}
