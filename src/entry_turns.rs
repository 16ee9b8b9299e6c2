//! One queue entry at a time per user and concert on an instance. Entries
//! of one user sent together (a double click, a client retrying at once)
//! each took a number before any found the user's ticket, and each number
//! counted as a place ahead of everyone behind it until it was given back: a
//! probe's answers to 20 users entering three times at once said 41 to 47
//! places ahead where 19 at most could be. Now the second waits for the
//! first, then finds its ticket. Entries through other instances still race,
//! and the ticket's stream still decides between them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;
use uuid::Uuid;

type Key = (Uuid, Uuid);

/// The entries under way on this instance, by concert and user.
#[derive(Default)]
pub struct EntryTurns {
    turns: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// The turn of one entry: the next entry of its user and concert waits
/// until it is dropped.
pub struct EntryTurn<'a> {
    turns: &'a EntryTurns,
    key: Key,
    _held: OwnedMutexGuard<()>,
}

impl EntryTurns {
    /// Waits for the entries of `user_id` into `concert_id`'s queue under
    /// way here to end, then takes the turn.
    pub async fn take(&self, concert_id: Uuid, user_id: Uuid) -> EntryTurn<'_> {
        let key = (concert_id, user_id);
        let turn = self.lock().entry(key).or_default().clone();
        EntryTurn {
            turns: self,
            key,
            _held: turn.lock_owned().await,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<tokio::sync::Mutex<()>>>> {
        self.turns
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    #[cfg(test)]
    fn under_way(&self) -> usize {
        self.lock().len()
    }
}

impl Drop for EntryTurn<'_> {
    fn drop(&mut self) {
        let mut turns = self.turns.lock();
        // Held by the map and this turn alone: nobody waits for it.
        if turns
            .get(&self.key)
            .is_some_and(|turn| Arc::strong_count(turn) <= 2)
        {
            turns.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn entries_of_one_user_and_concert_take_turns_and_others_do_not_wait() {
        let turns = EntryTurns::default();
        let (concert, user) = (Uuid::new_v4(), Uuid::new_v4());
        let first = turns.take(concert, user).await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), turns.take(concert, user));
        assert!(waiting.await.is_err(), "a second entry went ahead");
        // Another user, or another concert, goes at once.
        let other_user = turns.take(concert, Uuid::new_v4()).await;
        let other_concert = turns.take(Uuid::new_v4(), user).await;
        drop((other_user, other_concert));
        assert_eq!(turns.under_way(), 1);

        let second = async { turns.take(concert, user).await };
        let release = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(first);
        };
        let (second, ()) = tokio::join!(second, release);
        drop(second);
        assert_eq!(turns.under_way(), 0, "a finished turn is forgotten");
    }
}
