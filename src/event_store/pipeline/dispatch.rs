//! Forming batches: a few run at once, so one batch's commit (its flush to
//! disk) overlaps the next one's load and decisions, but a stream is in at
//! most one running batch, and its commands keep their order.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::decide::Job;
use super::{Pipelined, Worker, MAX_BATCH};

/// Batches of one aggregate type running at once.
pub const BATCHES_IN_FLIGHT: usize = 2;

/// A finished batch: its streams, free again, and the commands to decide again.
struct Finished<A: Pipelined> {
    streams: Vec<String>,
    carried: Vec<Job<A>>,
}

/// Feeds `worker` batches from `queue` until the queue closes and the last
/// batch has finished.
pub async fn dispatch<A: Pipelined>(
    worker: Arc<Worker<A>>,
    mut queue: mpsc::UnboundedReceiver<Job<A>>,
) {
    let (finish, mut finished) = mpsc::unbounded_channel::<Finished<A>>();
    // Commands not yet in a batch, oldest first: carried over from a lost
    // race, or waiting for their stream's running batch.
    let mut waiting: VecDeque<Job<A>> = VecDeque::new();
    let mut in_flight: HashSet<String> = HashSet::new();
    let mut running = 0;
    let mut open = true;
    loop {
        while let Ok(done) = finished.try_recv() {
            running -= 1;
            release(&mut in_flight, &mut waiting, done);
        }
        if running == BATCHES_IN_FLIGHT {
            let done = finished
                .recv()
                .await
                .expect("the dispatcher holds a sender");
            running -= 1;
            release(&mut in_flight, &mut waiting, done);
            continue;
        }
        let batch = gather(&mut waiting, &mut queue, &in_flight);
        if batch.is_empty() {
            if !open && running == 0 && waiting.is_empty() {
                return;
            }
            tokio::select! {
                job = queue.recv(), if open => match job {
                    Some(job) => waiting.push_back(job),
                    None => open = false,
                },
                Some(done) = finished.recv() => {
                    running -= 1;
                    release(&mut in_flight, &mut waiting, done);
                }
            }
            continue;
        }
        let streams: Vec<String> = batch
            .iter()
            .map(|job| job.aggregate_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        in_flight.extend(streams.iter().cloned());
        running += 1;
        let (worker, finish) = (worker.clone(), finish.clone());
        tokio::spawn(async move {
            let carried = worker.run_batch(batch).await;
            let _ = finish.send(Finished { streams, carried });
        });
    }
}

/// The next batch: waiting commands whose stream is free, then new ones;
/// a command whose stream is running (or has an older command waiting) waits.
fn gather<A: Pipelined>(
    waiting: &mut VecDeque<Job<A>>,
    queue: &mut mpsc::UnboundedReceiver<Job<A>>,
    in_flight: &HashSet<String>,
) -> Vec<Job<A>> {
    let mut batch = Vec::new();
    let mut held_back: HashSet<String> = HashSet::new();
    let mut still_waiting = VecDeque::with_capacity(waiting.len());
    for job in waiting.drain(..) {
        if batch.len() < MAX_BATCH
            && !in_flight.contains(&job.aggregate_id)
            && !held_back.contains(&job.aggregate_id)
        {
            batch.push(job);
        } else {
            held_back.insert(job.aggregate_id.clone());
            still_waiting.push_back(job);
        }
    }
    while batch.len() < MAX_BATCH {
        let Ok(job) = queue.try_recv() else { break };
        if in_flight.contains(&job.aggregate_id) || held_back.contains(&job.aggregate_id) {
            held_back.insert(job.aggregate_id.clone());
            still_waiting.push_back(job);
        } else {
            batch.push(job);
        }
    }
    *waiting = still_waiting;
    batch
}

/// A batch finished: its streams are free, and its carried commands go
/// ahead of every newer command (none of their streams' can be older).
fn release<A: Pipelined>(
    in_flight: &mut HashSet<String>,
    waiting: &mut VecDeque<Job<A>>,
    done: Finished<A>,
) {
    for stream in &done.streams {
        in_flight.remove(stream);
    }
    for job in done.carried.into_iter().rev() {
        waiting.push_front(job);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tokio::sync::oneshot;

    use super::*;
    use crate::aggregates::{Seat, SeatCommand};
    use crate::ids::ReservationId;

    fn job(stream: &str) -> Job<Seat> {
        Job {
            aggregate_id: stream.to_string(),
            command: SeatCommand::ReleaseHold {
                reservation_id: ReservationId::new(),
            },
            metadata: Value::Null,
            lost_races: 0,
            answer: oneshot::channel().0,
        }
    }

    fn streams(jobs: &[Job<Seat>]) -> Vec<&str> {
        jobs.iter().map(|job| job.aggregate_id.as_str()).collect()
    }

    #[test]
    fn a_running_stream_waits_and_so_do_its_newer_commands() {
        let (send, mut queue) = mpsc::unbounded_channel();
        let mut waiting = VecDeque::from([job("a"), job("b")]);
        for stream in ["b", "c", "a", "d"] {
            send.send(job(stream)).unwrap();
        }
        let in_flight = HashSet::from(["a".to_string()]);

        let batch = gather(&mut waiting, &mut queue, &in_flight);

        assert_eq!(streams(&batch), ["b", "b", "c", "d"]);
        assert_eq!(streams(waiting.make_contiguous()), ["a", "a"]);
    }

    #[test]
    fn carried_commands_go_ahead_of_newer_ones_when_their_batch_ends() {
        let mut waiting = VecDeque::from([job("a")]);
        let mut in_flight = HashSet::from(["a".to_string()]);
        let done = Finished {
            streams: vec!["a".to_string()],
            carried: vec![job("a"), job("a")],
        };
        let carried: Vec<_> = done.carried.iter().map(|j| j.command.clone()).collect();

        release(&mut in_flight, &mut waiting, done);

        assert!(in_flight.is_empty());
        let order: Vec<_> = waiting.iter().map(|j| j.command.clone()).collect();
        assert_eq!(order[..2], carried[..]);
        assert_eq!(waiting.len(), 3);
    }
}
