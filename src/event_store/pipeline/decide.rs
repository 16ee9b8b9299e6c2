//! Deciding the commands of one stream in a batch: each on the state the one
//! before it left, with the aggregate's own `handle`.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError};
use serde_json::Value;
use tokio::sync::oneshot;

use super::load::Loaded;
use super::Pipelined;
use crate::event_store::StreamEvents;

/// What a command's sender is told: the events it stored, or why not.
pub type Outcome<A> = Result<Vec<<A as Aggregate>::Event>, AggregateError<<A as Aggregate>::Error>>;

/// A decided command with its verdict: accepted with its events, or refused
/// by a rule.
pub type Verdict<A> = (
    Job<A>,
    Result<Vec<<A as Aggregate>::Event>, <A as Aggregate>::Error>,
);

/// A command waiting in the pipeline.
pub struct Job<A: Aggregate> {
    pub aggregate_id: String,
    pub command: A::Command,
    /// Stored with each of its events.
    pub metadata: Value,
    /// Batches this command has been decided in whose append it lost.
    pub lost_races: u32,
    pub answer: oneshot::Sender<Outcome<A>>,
    /// Decided even when nobody waits for the answer any more.
    pub done_when_abandoned: bool,
    /// The commands sent together share this number: carried over to the
    /// next batch, they stay together.
    pub group: u64,
}

impl<A: Aggregate> Job<A> {
    /// Whether nobody waits for its answer any more, and it need not be done.
    pub fn abandoned(&self) -> bool {
        !self.done_when_abandoned && self.answer.is_closed()
    }
}

/// One stream's part of a batch, decided and not yet stored.
pub struct Decided<A: Aggregate> {
    pub aggregate_id: String,
    /// The sequence the stream was loaded at; new events follow it.
    pub loaded_sequence: usize,
    /// The counter of the stream's stored snapshot, if it has one.
    pub snapshot: Option<usize>,
    /// The state after every accepted command of the batch.
    pub aggregate: A,
    /// The new events with their metadata, in order.
    pub events: Vec<(A::Event, Value)>,
    /// Each decided command with its verdict, in the order they came.
    pub verdicts: Vec<Verdict<A>>,
    /// Commands left for the next batch: a refused command changed the state
    /// before refusing, so the state here is no longer the log's.
    pub deferred: Vec<Job<A>>,
    /// A refused command changed `aggregate` before refusing (whether or not
    /// commands came after it).
    pub diverged: bool,
}

impl<A: Aggregate> Decided<A> {
    /// Whether `aggregate` is the state after exactly `events`: a snapshot
    /// of it may be stored.
    pub fn state_is_exact(&self) -> bool {
        !self.diverged
    }

    /// The sequence of the last new event.
    pub fn last_sequence(&self) -> usize {
        self.loaded_sequence + self.events.len()
    }

    /// The new events with their sequence numbers, as the read models take them.
    pub fn stored(&self) -> StreamEvents<A> {
        StreamEvents {
            aggregate_id: self.aggregate_id.clone(),
            events: (self.loaded_sequence as i64 + 1..)
                .zip(self.events.iter().map(|(event, _)| event.clone()))
                .collect(),
        }
    }
}

/// Decides `jobs`, all for one stream, in order on `loaded`.
pub async fn decide<A>(
    aggregate_id: String,
    loaded: Loaded<A>,
    jobs: Vec<Job<A>>,
    services: &A::Services,
) -> Decided<A>
where
    A: Aggregate,
    A::Command: Clone,
{
    let mut decided = Decided {
        aggregate_id,
        loaded_sequence: loaded.sequence,
        snapshot: loaded.snapshot,
        aggregate: loaded.aggregate,
        events: Vec::new(),
        verdicts: Vec::with_capacity(jobs.len()),
        deferred: Vec::new(),
        diverged: false,
    };
    let mut jobs = jobs.into_iter();
    while let Some(job) = jobs.next() {
        let sink = EventSink::default();
        let verdict = decided
            .aggregate
            .handle(job.command.clone(), services, &sink)
            .await;
        let events = sink.collect().await;
        let changed_then_refused = verdict.is_err() && !events.is_empty();
        let verdict = verdict.map(|()| {
            decided.events.extend(
                events
                    .iter()
                    .map(|event| (event.clone(), job.metadata.clone())),
            );
            events
        });
        decided.verdicts.push((job, verdict));
        if changed_then_refused {
            decided.diverged = true;
            decided.deferred.extend(jobs);
            break;
        }
    }
    decided
}

/// Decides `command` alone on `loaded`: its events, or the rule that refused it.
pub async fn decide_alone<A: Pipelined>(
    aggregate_id: String,
    loaded: Loaded<A>,
    command: A::Command,
    metadata: &Value,
) -> Result<Decided<A>, A::Error> {
    let mut aggregate = loaded.aggregate;
    let sink = EventSink::default();
    aggregate.handle(command, &(), &sink).await?;
    let events = sink.collect().await;
    Ok(Decided {
        aggregate_id,
        loaded_sequence: loaded.sequence,
        snapshot: loaded.snapshot,
        aggregate,
        events: events
            .into_iter()
            .map(|event| (event, metadata.clone()))
            .collect(),
        verdicts: Vec::new(),
        deferred: Vec::new(),
        diverged: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::DomainEvent;
    use serde::{Deserialize, Serialize};

    /// A count whose `AddThenRefuse` writes its event and then refuses, as
    /// no aggregate of the service does today.
    #[derive(Debug, Default, Serialize, Deserialize)]
    struct Counter(u32);

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Added;

    impl DomainEvent for Added {
        fn event_type(&self) -> String {
            "Added".to_string()
        }

        fn event_version(&self) -> String {
            "1".to_string()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("refused")]
    struct Refused;

    #[derive(Debug, Clone)]
    enum Count {
        Add,
        AddThenRefuse,
    }

    impl Aggregate for Counter {
        const TYPE: &'static str = "Counter";
        type Command = Count;
        type Event = Added;
        type Error = Refused;
        type Services = ();

        async fn handle(
            &mut self,
            command: Count,
            _services: &(),
            sink: &EventSink<Self>,
        ) -> Result<(), Refused> {
            sink.write(Added, self).await;
            match command {
                Count::Add => Ok(()),
                Count::AddThenRefuse => Err(Refused),
            }
        }

        fn apply(&mut self, _event: Added) {
            self.0 += 1;
        }
    }

    fn job(command: Count) -> Job<Counter> {
        let (answer, _) = oneshot::channel();
        Job {
            aggregate_id: "c".to_string(),
            command,
            metadata: Value::Null,
            lost_races: 0,
            answer,
            done_when_abandoned: false,
            group: 0,
        }
    }

    async fn decided(commands: Vec<Count>) -> Decided<Counter> {
        let jobs = commands.into_iter().map(job).collect();
        decide("c".to_string(), Loaded::default(), jobs, &()).await
    }

    #[tokio::test]
    async fn the_state_after_accepted_commands_is_exact() {
        let decided = decided(vec![Count::Add, Count::Add]).await;
        assert_eq!(decided.events.len(), 2);
        assert!(decided.state_is_exact());
    }

    #[tokio::test]
    async fn a_last_command_that_changed_the_state_and_refused_leaves_it_inexact() {
        // Nothing is deferred after it, yet the state counts its event,
        // which is not stored: a snapshot of it would be wrong.
        let decided = decided(vec![Count::Add, Count::AddThenRefuse]).await;
        assert_eq!(decided.events.len(), 1);
        assert!(decided.deferred.is_empty());
        assert_eq!(decided.aggregate.0, 2);
        assert!(!decided.state_is_exact());
    }
}
