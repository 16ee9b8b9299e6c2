//! When a connection served by hyper has nothing to do. hyper closes an idle
//! HTTP/1.1 connection itself (its head read timeout), but an HTTP/2 one only
//! once a ping goes unanswered: a client that answers pings and asks nothing
//! held its connection, and its place under `CONCERT_MAX_CONNECTIONS`, for
//! ever. A connection with no request in flight and no answer being sent for
//! the request timeout is now closed gracefully (HTTP/2: GOAWAY).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// What one connection is doing.
#[derive(Debug, Clone)]
pub struct Activity(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Requests in flight, their answers' bodies included (an event stream
    /// counts for as long as it streams).
    open: AtomicUsize,
    /// When the last request ended, or the connection began.
    quiet_since: Mutex<Instant>,
}

/// One request in flight; dropped when its answer has been sent (or dropped).
#[derive(Debug)]
pub struct InFlight(Activity);

impl Default for Activity {
    fn default() -> Self {
        Self(Arc::new(Inner {
            open: AtomicUsize::new(0),
            quiet_since: Mutex::new(Instant::now()),
        }))
    }
}

impl Activity {
    /// A request begins.
    pub fn begin(&self) -> InFlight {
        self.0.open.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Resolves once the connection has had nothing in flight for `quiet`.
    pub async fn idle_for(&self, quiet: Duration) {
        loop {
            let wake = if self.0.open.load(Ordering::Acquire) == 0 {
                let since = *self.0.quiet_since.lock().expect("not poisoned");
                if since.elapsed() >= quiet {
                    return;
                }
                since + quiet
            } else {
                Instant::now() + quiet
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let inner = &self.0 .0;
        // The time first: a look between the two sees a request still open.
        *inner.quiet_since.lock().expect("not poisoned") = Instant::now();
        inner.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_is_idle_once_nothing_was_in_flight_for_the_whole_time() {
        let activity = Activity::default();
        let quiet = Duration::from_millis(100);
        let request = activity.begin();
        // A request in flight (a long event stream) keeps it busy.
        let idle = tokio::time::timeout(quiet * 3, activity.idle_for(quiet)).await;
        assert!(idle.is_err());
        drop(request);
        let ended = Instant::now();
        activity.idle_for(quiet).await;
        assert!(ended.elapsed() >= quiet);
    }
}
