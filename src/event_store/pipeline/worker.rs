//! Running one batch of a pipeline: load its streams in one query, decide
//! every command on its stream's state, store what was decided in one
//! transaction, and answer each command as its stream's commit went.

use std::collections::HashMap;

use cqrs_es::{Aggregate, AggregateError};
use sqlx::{Connection, PgPool};

use super::append::{append, AppendError, Unstorable};
use super::decide::{decide, Decided, Job, Verdict};
use super::group::Group;
use super::load::load_streams;
use super::{failure, Lane, Pipelined, LOST_RACES_ALLOWED};
use crate::batching;
use crate::db::Leased;

pub(super) struct Worker<A: Aggregate> {
    pub(super) pool: PgPool,
    pub(super) lane: Lane<A>,
}

impl<A: Pipelined> batching::Batches<Group<A>> for Worker<A> {
    async fn run_batch(&self, groups: Vec<Group<A>>) -> Vec<Group<A>> {
        let jobs = groups.into_iter().flat_map(|group| group.0).collect();
        Group::regroup(self.run_jobs(jobs).await)
    }
}

impl<A: Pipelined> Worker<A> {
    async fn run_jobs(&self, jobs: Vec<Job<A>>) -> Vec<Job<A>> {
        metrics::histogram!("concert_pipeline_batch_size", "aggregate" => A::TYPE)
            .record(jobs.len() as f64);
        let streams = by_stream(jobs);
        let mut conn = match Leased::acquire(&self.pool).await {
            Ok(conn) => conn,
            Err(error) => {
                fail_all(streams.into_iter().flat_map(|(_, jobs)| jobs), &error);
                return Vec::new();
            }
        };
        let ids: Vec<&str> = streams.iter().map(|(id, _)| id.as_str()).collect();
        let mut loaded = match load_streams::<A>(&mut conn, &ids).await {
            Ok(loaded) => loaded,
            Err(error) => {
                fail_all(streams.into_iter().flat_map(|(_, jobs)| jobs), &error);
                return Vec::new();
            }
        };
        let mut carried = Vec::new();
        let mut writing = Vec::new();
        for (aggregate_id, jobs) in streams {
            let state = loaded.remove(&aggregate_id).unwrap_or_default();
            let mut decided = decide(aggregate_id, state, jobs, &()).await;
            if decided.events.is_empty() {
                // Nothing to store: every verdict stands on the stored state.
                answer_all(decided.verdicts);
                carried.append(&mut decided.deferred);
            } else {
                writing.push(decided);
            }
        }
        if writing.is_empty() {
            conn.release();
            return carried;
        }
        let outcome = self.commit(&mut conn, &writing).await;
        conn.finish(outcome.is_ok()).await;
        if writing.len() > 1 && outcome.as_ref().is_err_and(AppendError::is_unstorable) {
            // A value the store refuses (a data exception) fails the whole
            // transaction, whichever command holds it: each stream is
            // stored alone, so that only its own commands are refused.
            for decided in writing {
                let outcome = self.commit_alone(&decided).await;
                self.settle(decided, &outcome, &mut carried);
            }
            return carried;
        }
        for decided in writing {
            self.settle(decided, &outcome, &mut carried);
        }
        carried
    }

    /// Answers the commands of `decided` as its commit went.
    fn settle(
        &self,
        decided: Decided<A>,
        outcome: &Result<std::collections::HashSet<String>, AppendError>,
        carried: &mut Vec<Job<A>>,
    ) {
        match outcome {
            Ok(lost) if lost.contains(&decided.aggregate_id) => {
                metrics::counter!("concert_pipeline_lost_races_total", "aggregate" => A::TYPE)
                    .increment(1);
                decide_again(decided, carried);
            }
            Ok(_) => {
                self.lane.committed(&decided);
                answer_all(decided.verdicts);
                carried.extend(decided.deferred);
            }
            Err(error) if error.is_race() => decide_again(decided, carried),
            Err(error) if error.is_unstorable() => {
                // The accepted commands of the stream are refused for what
                // they hold; a command refused on the state they left, and
                // those not decided yet, are decided again without them.
                tracing::warn!(aggregate = A::TYPE, aggregate_id = %decided.aggregate_id, %error,
                    "the store refused a value of a command; its commands are refused");
                metrics::counter!("concert_pipeline_unstorable_total", "aggregate" => A::TYPE)
                    .increment(1);
                for (job, verdict) in decided.verdicts {
                    if verdict.is_err() {
                        carried.push(job);
                        continue;
                    }
                    let refused = Unstorable(error.to_string());
                    let _ = job
                        .answer
                        .send(Err(AggregateError::UnexpectedError(Box::new(refused))));
                }
                carried.extend(decided.deferred);
            }
            Err(error) => fail_all(
                decided
                    .verdicts
                    .into_iter()
                    .map(|(job, _)| job)
                    .chain(decided.deferred),
                error,
            ),
        }
    }

    /// Stores one stream of a batch in a transaction of its own.
    async fn commit_alone(
        &self,
        decided: &Decided<A>,
    ) -> Result<std::collections::HashSet<String>, AppendError> {
        let mut conn = Leased::acquire(&self.pool).await?;
        let outcome = self.commit(&mut conn, std::slice::from_ref(decided)).await;
        conn.finish(outcome.is_ok()).await;
        outcome
    }

    async fn commit(
        &self,
        conn: &mut sqlx::PgConnection,
        writing: &[Decided<A>],
    ) -> Result<std::collections::HashSet<String>, AppendError> {
        let mut tx = conn.begin().await?;
        let streams: Vec<&Decided<A>> = writing.iter().collect();
        let lost = append(
            &mut tx,
            &streams,
            &self.lane.projector,
            self.lane.snapshot_every,
        )
        .await?;
        tx.commit().await?;
        Ok(lost)
    }
}

/// The jobs grouped by stream, streams in the order of their first command.
fn by_stream<A: Aggregate>(jobs: Vec<Job<A>>) -> Vec<(String, Vec<Job<A>>)> {
    let mut index: HashMap<String, usize> = HashMap::with_capacity(jobs.len());
    let mut streams: Vec<(String, Vec<Job<A>>)> = Vec::new();
    for job in jobs {
        match index.get(&job.aggregate_id) {
            Some(&at) => streams[at].1.push(job),
            None => {
                index.insert(job.aggregate_id.clone(), streams.len());
                streams.push((job.aggregate_id.clone(), vec![job]));
            }
        }
    }
    streams
}

/// A stream lost the race: its commands, in order, go to the next batch.
fn decide_again<A: Aggregate>(decided: Decided<A>, carried: &mut Vec<Job<A>>) {
    for (mut job, _) in decided.verdicts {
        job.lost_races += 1;
        if job.lost_races >= LOST_RACES_ALLOWED {
            let _ = job.answer.send(Err(AggregateError::AggregateConflict));
        } else {
            carried.push(job);
        }
    }
    carried.extend(decided.deferred);
}

fn answer_all<A: Aggregate>(verdicts: Vec<Verdict<A>>) {
    for (job, verdict) in verdicts {
        // A sender that stopped waiting (its request timed out) is not an error.
        let _ = job.answer.send(verdict.map_err(AggregateError::UserError));
    }
}

fn fail_all<A: Aggregate>(jobs: impl IntoIterator<Item = Job<A>>, cause: &dyn std::fmt::Display) {
    let message = cause.to_string();
    for job in jobs {
        let _ = job.answer.send(Err(failure(&message)));
    }
}
