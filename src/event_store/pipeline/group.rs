//! Commands sent together: a batch takes all of them or none, so they are
//! stored in one commit or not at all. A lone command is a group of one.

use super::decide::Job;
use super::Pipelined;
use crate::batching::Queued;
use cqrs_es::Aggregate;

/// Commands a batch takes at once, in the order they were sent.
pub struct Group<A: Aggregate>(pub Vec<Job<A>>);

impl<A: Pipelined> Queued for Group<A> {
    const SHARE_A_BATCH: bool = true;

    fn streams(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|job| job.aggregate_id.as_str())
    }

    /// Dropped only when nobody waits for any of its answers.
    fn abandoned(&self) -> bool {
        self.0.iter().all(Job::abandoned)
    }
}
