//! Commands sent together: a batch takes all of them or none, so they are
//! stored in one commit or not at all (unless a value of the batch is one the
//! store refuses: each stream is then stored alone). A lone command is a
//! group of one.

use std::collections::HashMap;

use cqrs_es::Aggregate;

use super::decide::Job;
use super::Pipelined;
use crate::batching::Queued;

/// Commands a batch takes at once, in the order they were sent.
pub struct Group<A: Aggregate>(pub Vec<Job<A>>);

impl<A: Aggregate> Group<A> {
    /// The commands a batch carried over (to decide again after a lost
    /// race), each with the others of its group.
    pub fn regroup(jobs: Vec<Job<A>>) -> Vec<Self> {
        let mut groups: Vec<Self> = Vec::new();
        let mut at: HashMap<u64, usize> = HashMap::new();
        for job in jobs {
            match at.get(&job.group) {
                Some(&index) => groups[index].0.push(job),
                None => {
                    at.insert(job.group, groups.len());
                    groups.push(Group(vec![job]));
                }
            }
        }
        groups
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::{ExpiryReason, QueueTicket, QueueTicketCommand};

    fn job(stream: &str, group: u64) -> Job<QueueTicket> {
        let command = QueueTicketCommand::Expire {
            reason: ExpiryReason::Timeout,
            now: chrono::Utc::now(),
        };
        Job {
            aggregate_id: stream.to_string(),
            command,
            metadata: serde_json::Value::Null,
            lost_races: 0,
            answer: tokio::sync::oneshot::channel().0,
            done_when_abandoned: true,
            group,
        }
    }

    #[test]
    fn carried_commands_stay_with_their_group_in_order() {
        let carried = vec![job("a", 1), job("b", 2), job("c", 1)];

        let groups = Group::regroup(carried);

        let streams: Vec<Vec<&str>> = groups
            .iter()
            .map(|group| {
                group
                    .0
                    .iter()
                    .map(|job| job.aggregate_id.as_str())
                    .collect()
            })
            .collect();
        assert_eq!(streams, [vec!["a", "c"], vec!["b"]]);
    }
}
