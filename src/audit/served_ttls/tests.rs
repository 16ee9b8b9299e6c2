use super::*;
use crate::audit::fixtures::{logged, rules};

/// A hold of a date whose beginning is not known.
const HOLD: Lasting = Lasting::Hold { date_begins: None };

#[test]
fn a_hold_or_admission_lasting_a_ttl_served_before_it_has_no_violation() {
    let ttls = served(vec![(0, 300, 600), (10, 60, 30)]);
    let mut found = Vec::new();

    // Before position 10 only the first pair was served; after it, either.
    ttls.check(
        HOLD,
        &logged(5, "Seat/s", "SeatHeld"),
        at(0),
        at(300),
        &mut found,
    );
    ttls.check(
        HOLD,
        &logged(11, "Seat/s", "SeatHeld"),
        at(0),
        at(300),
        &mut found,
    );
    ttls.check(
        HOLD,
        &logged(12, "Seat/s", "SeatHeld"),
        at(0),
        at(60),
        &mut found,
    );
    ttls.check(
        Lasting::Admission,
        &logged(13, "QueueTicket/t", "TicketAdmitted"),
        at(0),
        at(30),
        &mut found,
    );

    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_hold_or_admission_lasting_another_time_is_named() {
    let ttls = served(vec![(0, 300, 600), (10, 60, 30)]);
    let mut found = Vec::new();

    // The second pair was not served yet at position 5.
    ttls.check(
        HOLD,
        &logged(5, "Seat/s", "SeatHeld"),
        at(0),
        at(60),
        &mut found,
    );
    ttls.check(
        Lasting::Admission,
        &logged(20, "QueueTicket/t", "TicketAdmitted"),
        at(0),
        at(3600),
        &mut found,
    );
    ttls.check(
        HOLD,
        &logged(21, "Seat/s", "SeatHeld"),
        at(0),
        at(300) + TimeDelta::milliseconds(500),
        &mut found,
    );

    assert_eq!(
        rules(&found),
        [
            "a hold lasts a CONCERT_HOLD_TTL_SECS the service ran with",
            "an admission lasts a CONCERT_QUEUE_ACTIVE_TTL_SECS the service ran with",
            "a hold lasts a CONCERT_HOLD_TTL_SECS the service ran with",
        ]
    );
    assert!(
        found[0]
            .detail
            .ends_with(": 60 s, where the service ran with 300 s"),
        "{}",
        found[0].detail
    );
    assert!(
        found[1]
            .detail
            .ends_with(": 3600 s, where the service ran with 600 s or 30 s"),
        "{}",
        found[1].detail
    );
    assert!(
        found[2].detail.contains(": 300.5 s,"),
        "{}",
        found[2].detail
    );
}

#[test]
fn the_log_before_the_first_record_is_not_checked() {
    let ttls = served(vec![(40, 300, 600)]);
    let mut found = Vec::new();

    ttls.check(
        HOLD,
        &logged(40, "Seat/s", "SeatHeld"),
        at(0),
        at(5),
        &mut found,
    );
    ttls.check(
        Lasting::Admission,
        &logged(3, "QueueTicket/t", "TicketAdmitted"),
        at(0),
        at(5),
        &mut found,
    );

    assert!(found.is_empty(), "{found:?}");
    assert_eq!(ServedTtls::served(Vec::new()), None);
    assert_eq!(
        ttls.to_string(),
        "CONCERT_HOLD_TTL_SECS=300 and CONCERT_QUEUE_ACTIVE_TTL_SECS=600 after position 40"
    );
}

fn served(changes: Vec<(i64, u32, u32)>) -> ServedTtls {
    let changes = changes
        .into_iter()
        .map(|(from, hold_secs, active_secs)| {
            (
                from,
                Ttls {
                    hold_secs,
                    active_secs,
                },
            )
        })
        .collect();
    ServedTtls::served(changes).unwrap()
}

fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000) + TimeDelta::seconds(seconds)
}

#[test]
fn a_hold_cut_short_by_its_date_beginning_has_no_violation_and_one_ending_elsewhere_has() {
    let ttls = served(vec![(0, 300, 600)]);
    let hold = |begins: i64, end: i64| {
        let mut found = Vec::new();
        let date_begins = Some(at(begins));
        let row = logged(5, "Seat/s", "SeatHeld");
        ttls.check(
            Lasting::Hold { date_begins },
            &row,
            at(0),
            at(end),
            &mut found,
        );
        found.len()
    };

    assert_eq!(hold(40, 40), 0, "ends as its date begins");
    assert_eq!(hold(40, 300), 0, "a whole TTL");
    assert_eq!(
        hold(40, 39),
        1,
        "ends before its date begins and lasts no TTL"
    );
    assert_eq!(
        hold(400, 400),
        1,
        "ends as its date begins but lasts longer than a TTL"
    );
}
