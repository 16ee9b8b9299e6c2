use super::*;
use crate::aggregates::stored::load;
use chrono::Duration;
use cqrs_es::test::TestFramework;

type TicketTest = TestFramework<QueueTicket>;

#[test]
fn entering_puts_the_ticket_in_the_queue() {
    TicketTest::with(())
        .given_no_previous_events()
        .when(enter())
        .then_expect_events(vec![entered()]);
}

#[test]
fn a_ticket_enters_once() {
    TicketTest::with(())
        .given(vec![entered()])
        .when(enter())
        .then_expect_error(QueueTicketError::AlreadyEntered);
    TicketTest::with(())
        .given(vec![entered(), admitted()])
        .when(enter())
        .then_expect_error(QueueTicketError::AlreadyEntered);
}

#[test]
fn an_expired_ticket_cannot_enter_again() {
    TicketTest::with(())
        .given(vec![entered(), expired(ExpiryReason::Paid, 10)])
        .when(enter())
        .then_expect_error(QueueTicketError::Expired);
}

#[test]
fn a_waiting_ticket_is_admitted() {
    TicketTest::with(())
        .given(vec![entered()])
        .when(admit())
        .then_expect_events(vec![admitted()]);
}

#[test]
fn admitting_an_active_ticket_changes_nothing() {
    TicketTest::with(())
        .given(vec![entered(), admitted()])
        .when(admit())
        .then_expect_events(vec![]);
}

#[test]
fn an_expired_ticket_is_never_admitted_again() {
    TicketTest::with(())
        .given(vec![
            entered(),
            admitted(),
            expired(ExpiryReason::Timeout, 600),
        ])
        .when(admit())
        .then_expect_error(QueueTicketError::Expired);
}

#[test]
fn a_ticket_never_entered_cannot_be_admitted_or_expired() {
    TicketTest::with(())
        .given_no_previous_events()
        .when(admit())
        .then_expect_error(QueueTicketError::NotEntered);
    TicketTest::with(())
        .given_no_previous_events()
        .when(expire(ExpiryReason::Paid, 0))
        .then_expect_error(QueueTicketError::NotEntered);
}

#[test]
fn an_admission_must_end_after_it_starts() {
    TicketTest::with(())
        .given(vec![entered()])
        .when(QueueTicketCommand::Admit {
            now: at(10),
            until: at(10),
        })
        .then_expect_error(QueueTicketError::AdmissionEndsBeforeItStarts);
}

#[test]
fn an_active_ticket_times_out_at_its_deadline() {
    TicketTest::with(())
        .given(vec![entered(), admitted()])
        .when(expire(ExpiryReason::Timeout, 600))
        .then_expect_events(vec![expired(ExpiryReason::Timeout, 600)]);
}

#[test]
fn an_active_ticket_does_not_time_out_early() {
    TicketTest::with(())
        .given(vec![entered(), admitted()])
        .when(expire(ExpiryReason::Timeout, 599))
        .then_expect_error(QueueTicketError::NotDue { until: at(600) });
}

#[test]
fn paying_expires_the_ticket_at_once() {
    TicketTest::with(())
        .given(vec![entered(), admitted()])
        .when(expire(ExpiryReason::Paid, 30))
        .then_expect_events(vec![expired(ExpiryReason::Paid, 30)]);
}

#[test]
fn expiring_an_expired_ticket_changes_nothing() {
    TicketTest::with(())
        .given(vec![entered(), expired(ExpiryReason::Paid, 30)])
        .when(expire(ExpiryReason::Timeout, 900))
        .then_expect_events(vec![]);
}

#[test]
fn a_stored_queue_entered_still_loads() {
    let payload = r#"{"QueueEntered":{"concert_id":"00000000-0000-0000-0000-000000000001","user_id":"00000000-0000-0000-0000-000000000002","entry_no":7,"entered_at":"2024-10-04T00:00:00Z"}}"#;

    let event: QueueTicketEvent = load("QueueEntered", "1", payload);

    assert_eq!(event, entered());
}

#[test]
fn a_stored_ticket_admitted_still_loads() {
    let payload = r#"{"TicketAdmitted":{"admitted_at":"2024-10-04T00:00:00Z","expires_at":"2024-10-04T00:10:00Z"}}"#;

    let event: QueueTicketEvent = load("TicketAdmitted", "1", payload);

    assert_eq!(event, admitted());
}

#[test]
fn a_stored_ticket_expired_still_loads_with_either_reason() {
    let timeout = r#"{"TicketExpired":{"reason":"timeout","expired_at":"2024-10-04T00:10:00Z"}}"#;
    let paid = r#"{"TicketExpired":{"reason":"paid","expired_at":"2024-10-04T00:00:30.5Z"}}"#;

    let timed_out: QueueTicketEvent = load("TicketExpired", "1", timeout);
    let paid_for: QueueTicketEvent = load("TicketExpired", "1", paid);

    assert_eq!(timed_out, expired(ExpiryReason::Timeout, 600));
    assert_eq!(
        paid_for,
        QueueTicketEvent::TicketExpired {
            reason: ExpiryReason::Paid,
            expired_at: at(30) + Duration::milliseconds(500),
        }
    );
}

const CONCERT: ConcertId = ConcertId(uuid::Uuid::from_u128(1));
const USER: UserId = UserId(uuid::Uuid::from_u128(2));

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(seconds)
}

fn enter() -> QueueTicketCommand {
    QueueTicketCommand::EnterQueue {
        concert_id: CONCERT,
        user_id: USER,
        entry_no: 7,
        now: at(0),
    }
}

fn entered() -> QueueTicketEvent {
    QueueTicketEvent::QueueEntered {
        concert_id: CONCERT,
        user_id: USER,
        entry_no: 7,
        entered_at: at(0),
    }
}

fn admit() -> QueueTicketCommand {
    QueueTicketCommand::Admit {
        now: at(0),
        until: at(600),
    }
}

fn admitted() -> QueueTicketEvent {
    QueueTicketEvent::TicketAdmitted {
        admitted_at: at(0),
        expires_at: at(600),
    }
}

fn expire(reason: ExpiryReason, now: i64) -> QueueTicketCommand {
    QueueTicketCommand::Expire {
        reason,
        now: at(now),
    }
}

fn expired(reason: ExpiryReason, now: i64) -> QueueTicketEvent {
    QueueTicketEvent::TicketExpired {
        reason,
        expired_at: at(now),
    }
}
