//! How many event streams each queue token has open on this instance. A
//! token may open a few (the booking page's two, a second tab, a reconnect
//! before the old socket is seen gone), not thousands: each stream holds a
//! connection, a file descriptor and its state for as long as its token
//! lives, and a waiting token may live for hours.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

/// Streams one queue token may have open at once on one instance.
pub const STREAMS_PER_TOKEN: usize = 8;

/// The open streams of each token.
#[derive(Debug, Default)]
pub struct StreamPermits {
    open: Mutex<HashMap<Uuid, usize>>,
}

/// One open stream of a token; dropping it closes its place.
#[derive(Debug)]
pub struct StreamPermit {
    permits: Arc<StreamPermits>,
    ticket_id: Uuid,
}

impl StreamPermits {
    /// A place for one more stream of `ticket_id`, unless it has all of its own.
    pub fn open(self: &Arc<Self>, ticket_id: Uuid) -> Option<StreamPermit> {
        let mut open = self.open.lock().expect("not poisoned");
        let count = open.entry(ticket_id).or_default();
        if *count >= STREAMS_PER_TOKEN {
            return None;
        }
        *count += 1;
        Some(StreamPermit {
            permits: self.clone(),
            ticket_id,
        })
    }

    /// Streams `ticket_id` has open now.
    #[cfg(test)]
    fn count(&self, ticket_id: Uuid) -> usize {
        let open = self.open.lock().expect("not poisoned");
        open.get(&ticket_id).copied().unwrap_or(0)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.permits.open.lock().expect("not poisoned");
        if let Some(count) = open.get_mut(&self.ticket_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ticket_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_has_its_places_back_as_its_streams_close() {
        let permits = Arc::new(StreamPermits::default());
        let (token, other) = (Uuid::new_v4(), Uuid::new_v4());
        let mut held: Vec<StreamPermit> = (0..STREAMS_PER_TOKEN)
            .map(|_| permits.open(token).expect("a place"))
            .collect();
        assert!(permits.open(token).is_none());
        // Another token is not held back by this one.
        assert!(permits.open(other).is_some());
        held.pop();
        assert_eq!(permits.count(token), STREAMS_PER_TOKEN - 1);
        assert!(permits.open(token).is_some());
        drop(held);
        assert_eq!(permits.count(token), 0);
        assert!(permits.open.lock().unwrap().get(&token).is_none());
    }
}
