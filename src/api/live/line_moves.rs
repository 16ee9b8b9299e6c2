//! Moves of a concert's line, as one standing stream sends them: at most
//! one a `coalesce` period, and none lost.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// One watcher's view of its concert's line.
pub(super) struct LineMoves {
    line: watch::Receiver<i64>,
    coalesce: Duration,
    /// A move was seen and is not sent yet.
    pending: bool,
    /// The earliest a move may be sent.
    next_send: Instant,
}

impl LineMoves {
    pub(super) fn new(line: watch::Receiver<i64>, coalesce: Duration) -> Self {
        LineMoves {
            line,
            coalesce,
            pending: false,
            next_send: Instant::now(),
        }
    }

    /// The position of the line's last move.
    pub(super) fn moved_at(&self) -> i64 {
        *self.line.borrow()
    }

    /// Resolves when a move is due to be sent; `None` once the line is gone.
    /// Cancel-safe: a move seen before this is dropped (a keep-alive or the
    /// ticket won the race while it waited out the coalescing) stays
    /// pending for the next call. Marking the change as seen inside a
    /// dropped future lost it, and the stream showed the old place until
    /// the line moved again.
    pub(super) async fn due(&mut self) -> Option<()> {
        if !self.pending {
            self.line.changed().await.ok()?;
            self.pending = true;
        }
        tokio::time::sleep_until(self.next_send).await;
        Some(())
    }

    /// Records that a standing is being read now, so it includes the line
    /// as it is: only a later move is pending, and it waits out the
    /// coalescing. Called before the read, so no move falls in between.
    pub(super) fn sent(&mut self) {
        self.line.mark_unchanged();
        self.pending = false;
        self.next_send = Instant::now() + self.coalesce;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COALESCE: Duration = Duration::from_millis(300);

    async fn due_within(moves: &mut LineMoves, limit: Duration) -> bool {
        tokio::time::timeout(limit, moves.due()).await.is_ok()
    }

    #[tokio::test]
    async fn a_move_seen_while_a_wait_was_dropped_is_still_sent() {
        let (mover, line) = watch::channel(0);
        let mut moves = LineMoves::new(line, COALESCE);
        mover.send(1).unwrap();
        assert!(
            due_within(&mut moves, Duration::from_millis(50)).await,
            "the first move at once"
        );
        moves.sent();
        // A second move within the coalescing: its wait is dropped half-way,
        // as when a keep-alive wins the stream's select.
        mover.send(2).unwrap();
        assert!(
            !due_within(&mut moves, COALESCE / 3).await,
            "sent before the coalescing ended"
        );
        assert!(due_within(&mut moves, COALESCE).await, "the move was lost");
        moves.sent();
        assert_eq!(moves.moved_at(), 2);
        // Nothing more to send.
        assert!(!due_within(&mut moves, COALESCE * 2).await);
    }

    #[tokio::test]
    async fn a_standing_sent_for_another_reason_covers_the_moves_before_it() {
        let (mover, line) = watch::channel(0);
        let mut moves = LineMoves::new(line, COALESCE);
        mover.send(1).unwrap();
        moves.sent(); // the ticket changed: its standing included the line
        assert!(!due_within(&mut moves, COALESCE * 2).await);
        mover.send(2).unwrap();
        assert!(due_within(&mut moves, COALESCE * 2).await);
    }

    #[tokio::test]
    async fn a_move_is_due_until_a_standing_is_read() {
        let (mover, line) = watch::channel(0);
        let mut moves = LineMoves::new(line, COALESCE);
        mover.send(1).unwrap();
        assert!(due_within(&mut moves, Duration::from_millis(50)).await);
        // The stream's read failed before it could send: the move stays due.
        assert!(due_within(&mut moves, Duration::from_millis(50)).await);
    }
}
