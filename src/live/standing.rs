//! Who watches which queue ticket: a watch per ticket (its own admission or
//! expiry) and per concert (the line moved: someone ahead left it). The feed
//! bumps them with the log position; a stream that wakes reads its standing
//! again, at most once a second for moves of the line.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;
use uuid::Uuid;

use super::changes::{ChangeKind, LogChange};
use super::lock;

/// The watches of tickets and concerts that someone follows.
#[derive(Default)]
pub struct Standings {
    tickets: Mutex<HashMap<Uuid, watch::Sender<i64>>>,
    concerts: Mutex<HashMap<Uuid, watch::Sender<i64>>>,
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

    /// Forgets the watches nobody holds any more.
    pub(super) fn sweep(&self) {
        lock(&self.tickets).retain(|_, sender| sender.receiver_count() > 0);
        lock(&self.concerts).retain(|_, sender| sender.receiver_count() > 0);
    }
}

fn subscribe(watches: &Mutex<HashMap<Uuid, watch::Sender<i64>>>, id: Uuid) -> watch::Receiver<i64> {
    lock(watches)
        .entry(id)
        .or_insert_with(|| watch::Sender::new(0))
        .subscribe()
}
