//! Queue tickets as the seat listing checks them, kept in memory: each read
//! once from the read model, then forgotten as soon as the ticket changes —
//! at once for this instance's own commits, through the feed for the others'.

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

    /// The ticket changed: the next `get` reads it again.
    pub fn forget(&self, ticket_id: Uuid) {
        let mut shard = lock(self.shard(ticket_id));
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

    #[test]
    fn a_forgotten_ticket_is_gone_and_marks_its_shard() {
        let tickets = Tickets::default();
        let id = Uuid::new_v4();
        let row = TicketRow {
            ticket_id: id,
            concert_id: Uuid::nil(),
            user_id: Uuid::nil(),
            entry_no: 1,
            status: "active".into(),
            expires_at: None,
        };
        lock(tickets.shard(id)).rows.insert(id, row);

        assert_eq!(tickets.peek(id).map(|row| row.ticket_id), Some(id));
        tickets.forget(id);

        assert!(tickets.peek(id).is_none());
        let shard = lock(tickets.shard(id));
        assert!(shard.rows.is_empty());
        assert_eq!(shard.forgotten, 1);
    }
}
