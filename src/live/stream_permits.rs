//! How many event streams each queue token has open on this instance. A
//! token may open a few (the booking page's two, a second tab, a reconnect
//! before the old socket is seen gone), not thousands: each stream holds a
//! connection, a file descriptor and its state for as long as its token
//! lives, and a waiting token may live for hours.
//!
//! A stream whose client went is seen gone when a write to it fails, which
//! on a kept-alive connection is the second comment after the client left
//! (comments go every 10 s). A token that asks for a stream beyond its
//! places therefore calls the roll of its streams first: each writes a
//! comment at once and another a moment later, and those whose clients
//! went end, giving their places back. A page reloaded a few times in a
//! row had been refused its streams for about 18 s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

/// Streams one queue token may have open at once on one instance.
pub const STREAMS_PER_TOKEN: usize = 8;

/// How long a request for a stream beyond the token's places waits for the
/// roll call to free one.
const ROLL_CALL_WAIT: Duration = Duration::from_millis(800);
/// Between a roll call's two comments: the first write to a socket its
/// client closed succeeds (the peer answers it with a reset), the second
/// fails.
const SECOND_COMMENT_AFTER: Duration = Duration::from_millis(200);

/// The open streams of each token.
#[derive(Debug, Default)]
pub struct StreamPermits {
    open: Mutex<HashMap<Uuid, Places>>,
}

/// A token's places taken, and its streams' roll call.
#[derive(Debug)]
struct Places {
    taken: usize,
    roll_call: watch::Sender<()>,
}

/// One open stream of a token; dropping it closes its place.
#[derive(Debug)]
pub struct StreamPermit {
    permits: Arc<StreamPermits>,
    ticket_id: Uuid,
    roll_call: watch::Receiver<()>,
    second_comment_at: Option<Instant>,
}

impl StreamPermits {
    /// A place for one more stream of `ticket_id`, unless it has all of its own.
    pub fn open(self: &Arc<Self>, ticket_id: Uuid) -> Option<StreamPermit> {
        let mut open = self.open.lock().expect("not poisoned");
        let places = open.entry(ticket_id).or_insert_with(|| Places {
            taken: 0,
            roll_call: watch::Sender::new(()),
        });
        if places.taken >= STREAMS_PER_TOKEN {
            return None;
        }
        places.taken += 1;
        Some(StreamPermit {
            permits: self.clone(),
            ticket_id,
            roll_call: places.roll_call.subscribe(),
            second_comment_at: None,
        })
    }

    /// A place as `open` gives it; when the token has none free, after
    /// calling the roll of its streams and waiting a moment for those whose
    /// clients went to end.
    pub async fn open_after_roll_call(self: &Arc<Self>, ticket_id: Uuid) -> Option<StreamPermit> {
        if let Some(permit) = self.open(ticket_id) {
            return Some(permit);
        }
        if let Some(places) = self.open.lock().expect("not poisoned").get(&ticket_id) {
            places.roll_call.send_replace(());
        }
        let deadline = Instant::now() + ROLL_CALL_WAIT;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Some(permit) = self.open(ticket_id) {
                return Some(permit);
            }
        }
        None
    }

    /// Streams `ticket_id` has open now.
    #[cfg(test)]
    fn count(&self, ticket_id: Uuid) -> usize {
        let open = self.open.lock().expect("not poisoned");
        open.get(&ticket_id).map_or(0, |places| places.taken)
    }
}

impl StreamPermit {
    /// Ready when this stream should write a comment to learn whether its
    /// client is still there: at a roll call of its token's streams, and
    /// again a moment after. Cancel-safe (a `select!` branch).
    pub async fn comment_due(&mut self) {
        match self.second_comment_at {
            Some(at) => {
                tokio::time::sleep_until(at).await;
                self.second_comment_at = None;
            }
            None => {
                if self.roll_call.changed().await.is_err() {
                    // Its token's places are gone only with this permit.
                    std::future::pending::<()>().await;
                }
                self.second_comment_at = Some(Instant::now() + SECOND_COMMENT_AFTER);
            }
        }
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.permits.open.lock().expect("not poisoned");
        if let Some(places) = open.get_mut(&self.ticket_id) {
            places.taken -= 1;
            if places.taken == 0 {
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

    #[tokio::test]
    async fn a_token_without_a_place_calls_the_roll_and_gets_the_place_of_a_stream_that_went() {
        let permits = Arc::new(StreamPermits::default());
        let token = Uuid::new_v4();
        let mut held: Vec<StreamPermit> = (0..STREAMS_PER_TOKEN)
            .map(|_| permits.open(token).expect("a place"))
            .collect();
        // A stream whose client went: the second comment of a roll call
        // fails to write, and the stream ends.
        let mut gone = held.pop().unwrap();
        let gone_ends = tokio::spawn(async move {
            gone.comment_due().await;
            gone.comment_due().await;
        });
        assert!(permits.open(token).is_none());
        let ninth = permits.open_after_roll_call(token).await;
        assert!(ninth.is_some(), "the place of the stream that went");
        gone_ends.await.unwrap();
        // Every stream there (the others are not gone): the roll frees none.
        assert!(permits.open_after_roll_call(token).await.is_none());
        assert_eq!(permits.count(token), STREAMS_PER_TOKEN);
    }
}
