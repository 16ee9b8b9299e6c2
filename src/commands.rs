//! Sending a command: who sent it and why travel with it as event metadata.
//! The pipeline decides it together with the other commands waiting, and a
//! lost optimistic-concurrency race is decided again there on fresh state.

use std::collections::HashMap;

use cqrs_es::AggregateError;
use uuid::Uuid;

use crate::aggregates::{QueueTicketCommand, SeatCommand, WalletCommand};
use crate::event_store::{
    PaymentOutcome, PaymentPipeline, PaymentSteps, Pipeline, Pipelined, Step,
};
use crate::telemetry::{CommandOutcome, PAYMENT};

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
            // When the command was decided, written as the API writes times
            // (events stored before this wrote `+00:00` and nanoseconds).
            (
                "recorded_at".to_string(),
                crate::clock::rfc3339(crate::clock::now()),
            ),
        ])
    }
}

/// Executes `command` on one aggregate and answers once it is stored (or
/// refused). When another writer committed first, the command is decided
/// again on the new state (which may now refuse it).
pub async fn execute<A>(
    pipeline: &Pipeline<A>,
    aggregate_id: &str,
    command: A::Command,
    context: &CommandContext,
) -> Result<(), AggregateError<A::Error>>
where
    A: Pipelined,
    A::Command: AsRef<str>,
{
    execute_for_events(pipeline, aggregate_id, command, context)
        .await
        .map(drop)
}

/// `execute`, answering with the events the command stored (none when it
/// changed nothing): what the state became, without reading it back.
pub async fn execute_for_events<A>(
    pipeline: &Pipeline<A>,
    aggregate_id: &str,
    command: A::Command,
    context: &CommandContext,
) -> Result<Vec<A::Event>, AggregateError<A::Error>>
where
    A: Pipelined,
    // `as_ref` gives the variant name (`HoldSeat`), recorded as the event's `command`.
    A::Command: AsRef<str>,
{
    let metadata = context.metadata(command.as_ref());
    let outcome = pipeline.execute(aggregate_id, command, metadata).await;
    count_outcome(A::TYPE, &outcome);
    outcome
}

/// Executes `commands` (stream, command) of one aggregate type together: they
/// are stored in one commit or not at all, though a stream another writer
/// appended to first is decided again on its own. Answers each, in order.
pub async fn execute_together<A>(
    pipeline: &Pipeline<A>,
    commands: Vec<(String, A::Command)>,
    context: &CommandContext,
) -> Vec<Result<(), AggregateError<A::Error>>>
where
    A: Pipelined,
    A::Command: AsRef<str>,
{
    let commands = commands
        .into_iter()
        .map(|(aggregate_id, command)| {
            let metadata = context.metadata(command.as_ref());
            (aggregate_id, command, metadata)
        })
        .collect();
    let outcomes = pipeline.execute_together(commands).await;
    for outcome in &outcomes {
        count_outcome(A::TYPE, outcome);
    }
    outcomes
        .into_iter()
        .map(|outcome| outcome.map(drop))
        .collect()
}

/// Executes the commands of one payment together: the wallet's `debit`, the
/// seat's `sale` and, when given, the ticket's `spend`, each as (stream,
/// command). Every one is stored or none is; answers with their events.
pub async fn execute_payment(
    pipeline: &PaymentPipeline,
    debit: (String, WalletCommand),
    sale: (String, SeatCommand),
    spend: Option<(String, QueueTicketCommand)>,
    context: &CommandContext,
) -> PaymentOutcome {
    let steps = PaymentSteps {
        debit: context.step(debit),
        sale: context.step(sale),
        spend: spend.map(|spend| context.step(spend)),
    };
    let outcome = pipeline.execute(steps).await;
    count_outcome(PAYMENT, &outcome);
    outcome
}

impl CommandContext {
    fn step<C: AsRef<str>>(&self, (aggregate_id, command): (String, C)) -> Step<C> {
        Step {
            metadata: self.metadata(command.as_ref()),
            aggregate_id,
            command,
        }
    }
}

/// Counts a command of `aggregate` by how it went (`concert_commands_total`).
fn count_outcome<T, E: std::error::Error>(
    aggregate: &'static str,
    outcome: &Result<T, AggregateError<E>>,
) {
    let counted = match outcome {
        Ok(_) => CommandOutcome::Ok,
        Err(AggregateError::UserError(_)) => CommandOutcome::Rejected,
        Err(AggregateError::AggregateConflict) => CommandOutcome::Conflict,
        Err(_) => CommandOutcome::Error,
    };
    counted.count(aggregate);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregates::{
        ConcertCommand, ExpiryReason, QueueTicketCommand, SeatCommand, WalletCommand,
    };
    use crate::ids::{ChargeId, ConcertId, DateId, PaymentId, ReservationId, SeatId, UserId};
    use crate::money::Won;
    use chrono::{DateTime, Utc};

    #[test]
    fn the_recorded_command_is_its_variant_name() {
        let release = SeatCommand::ReleaseHold {
            reservation_id: ReservationId::new(),
        };

        let metadata = CommandContext::scheduler().metadata(release.as_ref());

        assert_eq!(metadata["command"], "ReleaseHold");
        assert_eq!(metadata["actor"], "scheduler");
    }

    #[test]
    fn every_command_has_a_fixed_name() {
        let (reservation_id, payment_id, now) = (ReservationId::new(), PaymentId::new(), NOW);
        let names = [
            name(ConcertCommand::ScheduleConcert {
                title: "Gala".to_string(),
                dates: vec![],
            }),
            name(SeatCommand::HoldSeat {
                reservation_id,
                user_id: UserId::new(),
                date_id: DateId::new(),
                seat_no: 1,
                price: Won(1),
                now,
                until: now,
            }),
            name(SeatCommand::ExpireHold {
                reservation_id,
                now,
            }),
            name(SeatCommand::ReleaseHold { reservation_id }),
            name(SeatCommand::ConfirmSeat {
                reservation_id,
                payment_id,
                ticket_id: None,
                now,
            }),
            name(WalletCommand::Charge {
                charge_id: ChargeId::new(),
                amount: Won(1),
            }),
            name(WalletCommand::Pay {
                payment_id,
                reservation_id,
                seat_id: SeatId::new(),
                amount: Won(1),
                now,
            }),
            name(WalletCommand::Refund { payment_id }),
            name(QueueTicketCommand::EnterQueue {
                concert_id: ConcertId::new(),
                user_id: UserId::new(),
                entry_no: 1,
                now,
            }),
            name(QueueTicketCommand::Admit { now, until: now }),
            name(QueueTicketCommand::Expire {
                reason: ExpiryReason::Paid,
                now,
            }),
        ];

        assert_eq!(
            names,
            [
                "ScheduleConcert",
                "HoldSeat",
                "ExpireHold",
                "ReleaseHold",
                "ConfirmSeat",
                "Charge",
                "Pay",
                "Refund",
                "EnterQueue",
                "Admit",
                "Expire",
            ]
        );
    }

    const NOW: DateTime<Utc> = DateTime::<Utc>::UNIX_EPOCH;

    fn name(command: impl AsRef<str>) -> String {
        command.as_ref().to_string()
    }
}
