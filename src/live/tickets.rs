//! Queue tickets as the listings check them, kept in memory: each read once
//! from the read model, then forgotten as soon as the ticket changes — at
//! once for this instance's own commits, through the feed for the others'.
//! The feed's later copy of a change already forgotten is known by its
//! sequence and forgets nothing again.

use std::collections::HashMap;
use std::sync::Mutex;

use sqlx::PgPool;
use uuid::Uuid;

use super::lock;
use crate::projections::queue_tickets::{self, TicketRow};

/// Tickets are spread over this many locks.
const SHARDS: usize = 64;
/// A shard that grows past this is emptied: memory stays bounded, and a
/// forgotten ticket is only read again.
const MOST_PER_SHARD: usize = 4096;

pub struct Tickets {
    shards: Vec<Mutex<Shard>>,
}

#[derive(Default)]
struct Shard {
    rows: HashMap<Uuid, TicketRow>,
    /// The sequence of the last change forgotten, per ticket: a row read
    /// after it shows that change already.
    changed_at: HashMap<Uuid, i64>,
    /// Counts the tickets forgotten: a read that overlapped one of them
    /// may be older than the change, so it is not kept.
    forgotten: u64,
}

impl Default for Tickets {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Tickets {
    /// The ticket `ticket_id`, from memory or else from the read model.
    pub async fn get(&self, pool: &PgPool, ticket_id: Uuid) -> sqlx::Result<Option<TicketRow>> {
        let shard = self.shard(ticket_id);
        let forgotten = {
            let shard = lock(shard);
            if let Some(row) = shard.rows.get(&ticket_id) {
                return Ok(Some(row.clone()));
            }
            shard.forgotten
        };
        let row = queue_tickets::find_ticket(pool, ticket_id).await?;
        if let Some(row) = &row {
            let mut shard = lock(shard);
            if shard.forgotten == forgotten {
                if shard.rows.len() >= MOST_PER_SHARD {
                    shard.rows.clear();
                }
                shard.rows.insert(ticket_id, row.clone());
            }
        }
        Ok(row)
    }

    /// The ticket `ticket_id` if it is in memory; nothing is read.
    pub fn peek(&self, ticket_id: Uuid) -> Option<TicketRow> {
        lock(self.shard(ticket_id)).rows.get(&ticket_id).cloned()
    }

    /// The ticket changed (its stream's event `sequence`): the next `get`
    /// reads it again, unless this change was already forgotten.
    pub fn forget(&self, ticket_id: Uuid, sequence: i64) {
        let mut shard = lock(self.shard(ticket_id));
        let known = shard.changed_at.get(&ticket_id).copied().unwrap_or(0);
        if sequence <= known {
            return;
        }
        if shard.changed_at.len() >= MOST_PER_SHARD {
            // A change seen again is then only forgotten once more.
            shard.changed_at.clear();
        }
        shard.changed_at.insert(ticket_id, sequence);
        shard.rows.remove(&ticket_id);
        shard.forgotten += 1;
    }

    fn shard(&self, ticket_id: Uuid) -> &Mutex<Shard> {
        &self.shards[(ticket_id.as_u128() % SHARDS as u128) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ticket_id: Uuid) -> TicketRow {
        TicketRow {
            ticket_id,
            concert_id: Uuid::nil(),
            user_id: Uuid::nil(),
            entry_no: 1,
            status: "active".into(),
            expires_at: None,
        }
    }

    #[test]
    fn a_forgotten_ticket_is_gone_and_marks_its_shard() {
        let tickets = Tickets::default();
        let id = Uuid::new_v4();
        lock(tickets.shard(id)).rows.insert(id, row(id));

        assert_eq!(tickets.peek(id).map(|row| row.ticket_id), Some(id));
        tickets.forget(id, 3);

        assert!(tickets.peek(id).is_none());
        let shard = lock(tickets.shard(id));
        assert!(shard.rows.is_empty());
        assert_eq!(shard.forgotten, 1);
    }

    #[test]
    fn the_feeds_copy_of_a_change_already_forgotten_keeps_the_row_read_after_it() {
        let tickets = Tickets::default();
        let id = Uuid::new_v4();
        tickets.forget(id, 3);
        lock(tickets.shard(id)).rows.insert(id, row(id));

        tickets.forget(id, 2);
        tickets.forget(id, 3);
        assert!(tickets.peek(id).is_some(), "older or the same change");

        tickets.forget(id, 4);
        assert!(tickets.peek(id).is_none(), "a newer change");
    }
}
