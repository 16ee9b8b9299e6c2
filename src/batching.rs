//! Forming batches of work waiting for the database: a few run at once, so
//! one batch's commit (its flush to disk) overlaps the next one's load and
//! decisions, but a stream is in at most one running batch, and its work
//! keeps its order. The command pipelines and the queue's entry numbering
//! batch this way.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::mpsc;

/// Batches of one pipeline running at once.
pub const BATCHES_IN_FLIGHT: usize = 2;
/// The most jobs one batch takes (commands sent together count as one);
/// the rest wait for the next.
pub const MAX_BATCH: usize = 1024;
/// How long a batch may run before it is given up: twice as long as any
/// request waits for its answer (at least 10 s), so reached only when a
/// connection's server stops answering without closing it (a frozen proxy,
/// a dropped network path, a database frozen that long). Waited for without
/// end, two such batches held every later command of the pipeline back for
/// good.
pub fn batch_deadline(request_timeout: Duration) -> Duration {
    (request_timeout * 2).max(Duration::from_secs(10))
}

/// A command waiting for a batch, by the streams it writes.
pub trait Queued: Send + 'static {
    /// Whether two commands on one stream may share a batch (they are then
    /// decided in turn); otherwise the second waits for the next batch.
    const SHARE_A_BATCH: bool;

    /// The streams it writes, each named uniquely across aggregate types.
    fn streams(&self) -> impl Iterator<Item = &str>;

    /// Whether whoever sent it has stopped waiting for the answer (its
    /// request timed out). Such work is dropped before a batch takes it,
    /// rather than done behind the 503 its sender was given: under a
    /// backlog, the batches go to requests still waiting.
    fn abandoned(&self) -> bool {
        false
    }
}

/// What decides and stores a batch.
pub trait Batches<J>: Send + Sync + 'static {
    /// Decides and stores `jobs`; returns the commands to decide again.
    fn run_batch(&self, jobs: Vec<J>) -> impl Future<Output = Vec<J>> + Send;
}

/// A finished batch: its streams, free again, and the commands to decide again.
struct Finished<J> {
    streams: Vec<String>,
    carried: Vec<J>,
}

/// Feeds `worker` batches from `queue` until the queue closes and the last
/// batch has finished; a batch still running after `deadline` (see
/// [`batch_deadline`]) is given up.
pub async fn dispatch<J: Queued, W: Batches<J>>(
    worker: Arc<W>,
    mut queue: mpsc::UnboundedReceiver<J>,
    deadline: Duration,
) {
    let (finish, mut finished) = mpsc::unbounded_channel::<Finished<J>>();
    // Commands not yet in a batch, oldest first: carried over from a lost
    // race, or waiting for their stream's running batch.
    let mut waiting: VecDeque<J> = VecDeque::new();
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
            .flat_map(|job| job.streams().map(str::to_string))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        in_flight.extend(streams.iter().cloned());
        running += 1;
        let (worker, finish) = (worker.clone(), finish.clone());
        tokio::spawn(async move {
            // A batch that panicked or ran past its deadline answers its
            // commands as failed (their answers are dropped: 503) and still
            // frees its streams; left in flight, they would refuse every
            // later command for good.
            let run = AssertUnwindSafe(worker.run_batch(batch)).catch_unwind();
            let carried = match tokio::time::timeout(deadline, run).await {
                Ok(Ok(carried)) => carried,
                Ok(Err(_)) => {
                    tracing::error!("a batch panicked; its commands were answered as failed");
                    Vec::new()
                }
                Err(_) => {
                    tracing::error!(
                        deadline_secs = deadline.as_secs(),
                        "a batch ran past its deadline (the database stopped answering on its connection); its commands were answered as failed"
                    );
                    Vec::new()
                }
            };
            let _ = finish.send(Finished { streams, carried });
        });
    }
}

/// The next batch: waiting commands whose streams are free, then new ones;
/// a command with a stream that is running (or has an older command
/// waiting, or, unless they share batches, is in this batch) waits.
fn gather<J: Queued>(
    waiting: &mut VecDeque<J>,
    queue: &mut mpsc::UnboundedReceiver<J>,
    in_flight: &HashSet<String>,
) -> Vec<J> {
    let mut batch = Vec::new();
    let mut taken: HashSet<String> = HashSet::new();
    let mut held_back: HashSet<String> = HashSet::new();
    let mut still_waiting = VecDeque::with_capacity(waiting.len());
    let mut place = |job: J, batch: &mut Vec<J>| {
        if job.abandoned() {
            metrics::counter!("concert_batched_work_abandoned_total").increment(1);
            return;
        }
        let free = job.streams().all(|stream| {
            !in_flight.contains(stream)
                && !held_back.contains(stream)
                && (J::SHARE_A_BATCH || !taken.contains(stream))
        });
        if free && batch.len() < MAX_BATCH {
            taken.extend(job.streams().map(str::to_string));
            batch.push(job);
        } else {
            held_back.extend(job.streams().map(str::to_string));
            still_waiting.push_back(job);
        }
    };
    for job in waiting.drain(..) {
        place(job, &mut batch);
    }
    while batch.len() < MAX_BATCH {
        let Ok(job) = queue.try_recv() else { break };
        place(job, &mut batch);
    }
    *waiting = still_waiting;
    batch
}

/// A batch finished: its streams are free, and its carried commands go
/// ahead of every newer command (none of their streams' can be older).
fn release<J>(in_flight: &mut HashSet<String>, waiting: &mut VecDeque<J>, done: Finished<J>) {
    for stream in &done.streams {
        in_flight.remove(stream);
    }
    for job in done.carried.into_iter().rev() {
        waiting.push_front(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job on one stream, which may share a batch with others of its stream.
    struct Single(&'static str, u32);

    impl Queued for Single {
        const SHARE_A_BATCH: bool = true;

        fn streams(&self) -> impl Iterator<Item = &str> {
            std::iter::once(self.0)
        }
    }

    fn streams(jobs: &[Single]) -> Vec<&str> {
        jobs.iter().map(|job| job.0).collect()
    }

    #[test]
    fn a_running_stream_waits_and_so_do_its_newer_commands() {
        let (send, mut queue) = mpsc::unbounded_channel();
        let mut waiting = VecDeque::from([Single("a", 0), Single("b", 0)]);
        for stream in ["b", "c", "a", "d"] {
            send.send(Single(stream, 0)).unwrap();
        }
        let in_flight = HashSet::from(["a".to_string()]);

        let batch = gather(&mut waiting, &mut queue, &in_flight);

        assert_eq!(streams(&batch), ["b", "b", "c", "d"]);
        assert_eq!(streams(waiting.make_contiguous()), ["a", "a"]);
    }

    /// Runs batches, recording the jobs done; a batch holding a job numbered
    /// 0 panics, or with `stuck` never finishes (its connection's server
    /// stopped answering).
    #[derive(Default)]
    struct Scripted {
        stuck: bool,
        done: std::sync::Mutex<Vec<u32>>,
    }

    impl Batches<Single> for Scripted {
        async fn run_batch(&self, jobs: Vec<Single>) -> Vec<Single> {
            if jobs.iter().any(|job| job.1 == 0) {
                assert!(self.stuck, "a batch that panics");
                std::future::pending::<()>().await;
            }
            self.done
                .lock()
                .unwrap()
                .extend(jobs.iter().map(|job| job.1));
            Vec::new()
        }
    }

    #[tokio::test]
    async fn a_batch_that_panics_frees_its_streams_for_the_next() {
        let worker = Arc::new(Scripted::default());
        let (send, queue) = mpsc::unbounded_channel();
        let dispatcher = tokio::spawn(dispatch(worker.clone(), queue, Duration::from_secs(60)));
        send.send(Single("a", 0)).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        send.send(Single("a", 1)).unwrap();
        drop(send);

        let ended = tokio::time::timeout(std::time::Duration::from_secs(5), dispatcher).await;

        assert!(ended.is_ok(), "the dispatcher never finished");
        assert_eq!(*worker.done.lock().unwrap(), [1]);
    }

    #[tokio::test]
    async fn batches_that_never_finish_are_given_up_at_their_deadline() {
        let worker = Arc::new(Scripted {
            stuck: true,
            ..Scripted::default()
        });
        let (send, queue) = mpsc::unbounded_channel();
        let deadline = Duration::from_millis(300);
        let dispatcher = tokio::spawn(dispatch(worker.clone(), queue, deadline));
        // Every batch in flight stuck, one of them on the stream used next.
        for stream in ["a", "b"] {
            send.send(Single(stream, 0)).unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        send.send(Single("a", 1)).unwrap();
        send.send(Single("c", 2)).unwrap();
        drop(send);

        let ended = tokio::time::timeout(deadline * 10, dispatcher).await;

        assert!(ended.is_ok(), "the dispatcher waited for the stuck batches");
        let mut done = worker.done.lock().unwrap().clone();
        done.sort();
        assert_eq!(done, [1, 2]);
    }

    /// A job on one stream whose sender may have stopped waiting.
    struct Sent {
        stream: &'static str,
        gone: bool,
    }

    impl Queued for Sent {
        const SHARE_A_BATCH: bool = true;

        fn streams(&self) -> impl Iterator<Item = &str> {
            std::iter::once(self.stream)
        }

        fn abandoned(&self) -> bool {
            self.gone
        }
    }

    #[test]
    fn work_nobody_waits_for_is_dropped_and_holds_nothing_back() {
        let sent = |stream, gone| Sent { stream, gone };
        let (send, mut queue) = mpsc::unbounded_channel();
        let mut waiting = VecDeque::from([sent("a", true), sent("a", false)]);
        send.send(sent("c", true)).unwrap();
        send.send(sent("d", false)).unwrap();

        let batch = gather(&mut waiting, &mut queue, &HashSet::new());

        let streams: Vec<&str> = batch.iter().map(|job| job.stream).collect();
        assert_eq!(streams, ["a", "d"]);
        assert!(waiting.is_empty());
    }

    #[test]
    fn carried_commands_go_ahead_of_newer_ones_when_their_batch_ends() {
        let mut waiting = VecDeque::from([Single("a", 3)]);
        let mut in_flight = HashSet::from(["a".to_string()]);
        let done = Finished {
            streams: vec!["a".to_string()],
            carried: vec![Single("a", 1), Single("a", 2)],
        };

        release(&mut in_flight, &mut waiting, done);

        assert!(in_flight.is_empty());
        let order: Vec<u32> = waiting.iter().map(|job| job.1).collect();
        assert_eq!(order, [1, 2, 3]);
    }

    /// A command writing several streams, none shared within a batch.
    struct Joint(Vec<String>);

    impl Queued for Joint {
        const SHARE_A_BATCH: bool = false;

        fn streams(&self) -> impl Iterator<Item = &str> {
            self.0.iter().map(String::as_str)
        }
    }

    fn joint(streams: &[&str]) -> Joint {
        Joint(streams.iter().map(|stream| stream.to_string()).collect())
    }

    #[test]
    fn commands_that_do_not_share_batches_wait_for_any_stream_taken() {
        let (send, mut queue) = mpsc::unbounded_channel();
        let mut waiting = VecDeque::new();
        for streams in [
            &["w1", "s1"][..],
            &["w2", "s1"],
            &["w1", "s3"],
            &["w4", "s4"],
            &["w5", "r"],
        ] {
            send.send(joint(streams)).unwrap();
        }
        let in_flight = HashSet::from(["r".to_string()]);

        let batch = gather(&mut waiting, &mut queue, &in_flight);

        let firsts = |jobs: &[Joint]| jobs.iter().map(|job| job.0[0].clone()).collect::<Vec<_>>();
        assert_eq!(firsts(&batch), ["w1", "w4"]);
        assert_eq!(firsts(waiting.make_contiguous()), ["w2", "w1", "w5"]);
    }
}
