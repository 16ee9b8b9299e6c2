//! Sending a command: who sent it and why travel with it as event metadata,
//! and a lost optimistic-concurrency race is retried on fresh state.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;
use std::time::Duration;

use cqrs_es::{Aggregate, AggregateError};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::event_store::Cqrs;

/// How often a command that lost a race is retried on the newer state.
const CONFLICT_ATTEMPTS: u32 = 10;
/// Stripes of the in-process lock that queues commands to one aggregate.
const STRIPES: usize = 1024;

/// Who issues a command and on behalf of which request; stored on every event.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// One per HTTP request or scheduler run.
    pub correlation_id: Uuid,
    /// `user:<id>`, `admin` or `scheduler`.
    pub actor: String,
}

impl CommandContext {
    /// A context for work the service does by itself.
    pub fn scheduler() -> Self {
        Self {
            correlation_id: Uuid::now_v7(),
            actor: "scheduler".to_string(),
        }
    }

    fn metadata(&self, command: &str) -> HashMap<String, String> {
        HashMap::from([
            (
                "correlation_id".to_string(),
                self.correlation_id.to_string(),
            ),
            ("causation_id".to_string(), Uuid::now_v7().to_string()),
            ("command".to_string(), command.to_string()),
            ("actor".to_string(), self.actor.clone()),
            ("recorded_at".to_string(), chrono::Utc::now().to_rfc3339()),
        ])
    }
}

/// Executes `command` on one aggregate. When another writer committed first,
/// the command is decided again on the new state (which may now refuse it).
pub async fn execute<A>(
    cqrs: &Cqrs<A>,
    aggregate_id: &str,
    command: A::Command,
    context: &CommandContext,
) -> Result<(), AggregateError<A::Error>>
where
    A: Aggregate,
    A::Command: Clone + std::fmt::Debug,
{
    let name = command_name(&command);
    // Commands to one aggregate from this process take turns instead of racing
    // to the database and retrying; the store's optimistic lock still settles
    // races between processes.
    let _turn = stripe(A::TYPE, aggregate_id).lock().await;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = cqrs
            .execute_with_metadata(aggregate_id, command.clone(), context.metadata(&name))
            .await;
        metrics::counter!("concert_commands_total", "aggregate" => A::TYPE, "outcome" => outcome_label(&outcome))
            .increment(1);
        match outcome {
            Err(AggregateError::AggregateConflict) if attempt < CONFLICT_ATTEMPTS => {
                let jitter = rand::random::<u64>() % (5 * u64::from(attempt));
                tokio::time::sleep(Duration::from_millis(jitter)).await;
            }
            other => return other,
        }
    }
}

fn stripe(aggregate_type: &str, aggregate_id: &str) -> &'static Mutex<()> {
    static LOCKS: OnceLock<Vec<Mutex<()>>> = OnceLock::new();
    let locks = LOCKS.get_or_init(|| (0..STRIPES).map(|_| Mutex::new(())).collect());
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (aggregate_type, aggregate_id).hash(&mut hasher);
    &locks[hasher.finish() as usize % STRIPES]
}

fn outcome_label<E: std::error::Error>(outcome: &Result<(), AggregateError<E>>) -> &'static str {
    match outcome {
        Ok(()) => "ok",
        Err(AggregateError::UserError(_)) => "rejected",
        Err(AggregateError::AggregateConflict) => "conflict",
        Err(_) => "error",
    }
}

/// The variant name of a command, e.g. `HoldSeat`.
fn command_name(command: &impl std::fmt::Debug) -> String {
    let text = format!("{command:?}");
    text.split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_string()
}
