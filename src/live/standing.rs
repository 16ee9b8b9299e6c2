//! Who watches which queue ticket: a watch per ticket (its own admission or
//! expiry) and per concert (the line moved: someone ahead left it). The feed
//! bumps them with the log position; a stream that wakes works its standing
//! out again, at most once a second for moves of the line, from the
//! concert's line as last read (`Standings::line`): one read of the line per
//! move, however many watch it.

use std::collections::HashMap;
use std::future::Future;
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

/// The watches of tickets and concerts that someone follows.
#[derive(Default)]
pub struct Standings {
    tickets: Mutex<HashMap<Uuid, watch::Sender<i64>>>,
    concerts: Mutex<HashMap<Uuid, watch::Sender<i64>>>,
    /// The last read of each watched concert's line; its lock is held while
    /// one watcher reads it, so the others wait for that read.
    lines: Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<Option<Line>>>>>,
}

/// A concert's line as read once for all its watchers.
#[derive(Clone)]
pub struct Line {
    /// The move of the line (the line watch's value) that it shows, or later.
    moved_at: i64,
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
        let slot = lock(&self.lines).entry(concert_id).or_default().clone();
        let mut last = slot.lock().await;
        let fresh_since = crate::clock::now() - LINE_FRESH;
        if let Some(line) = last
            .as_ref()
            .filter(|line| line.moved_at >= moved_at && line.read_at > fresh_since)
        {
            return Ok(line.clone());
        }
        // The read starts after the move was published, so it shows it.
        let (row, read_at) = read().await?;
        let line = Line {
            moved_at,
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
